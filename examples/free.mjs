// Does free give memory back to the kernel?
// Run from the repository root: node examples/free.mjs
import { run } from 'heapscope';

const result = await run('free');
console.log(result.question);
for (const finding of result.findings) console.log(`- ${finding}`);
for (const surprise of result.surprises) console.log(`! ${surprise}`);

// The run of blocks freed into the top chunk: where the break came down.
const frees = result.rows.filter((r) => r.kind === 'free-run');
const trims = frees.filter((r) => r.returned > 0);
console.log(`\n${frees.length} frees into the top; the ones that moved the break:`);
console.log('block  top it saw  returned  top after');
for (const row of trims) {
  console.log(`${String(row.block).padStart(5)}  ${String(row.mergedTop).padStart(10)}  ${String(row.returned).padStart(8)}  ${String(row.topAfter).padStart(9)}`);
}

console.log('\nmalloc_trim steps:');
for (const row of result.rows) {
  if (row.kind !== 'step' || row.op !== 'trim') continue;
  console.log(`malloc_trim(${row.pad}) → ${row.released ? 1 : 0}: RSS ${row.rssPages} pages, break 0x${row.programBreak.toString(16)}, top ${row.top} bytes`);
}
