// malloc(n): how many bytes do you really get?
// Run from the repository root: node examples/chunk-sizes.mjs
import { run } from 'heapscope';

const result = await run('chunk-sizes');
console.log(result.question);
for (const finding of result.findings) console.log(`- ${finding}`);
for (const surprise of result.surprises) console.log(`! ${surprise}`);

console.log('\nrequest  chunk  usable');
for (const row of result.rows.filter((r) => r.request % 8 === 0 && r.request <= 64)) {
  console.log(`${String(row.request).padStart(7)}  ${String(row.chunkSize).padStart(5)}  ${String(row.usableSize).padStart(6)}`);
}
