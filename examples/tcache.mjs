// What does the per-thread cache hold, and when do fastbins take over?
// Run from the repository root: node examples/tcache.mjs
// Try it with a different cache size: run('tcache', { tunables: { 'glibc.malloc.tcache_count': 3 } }).
import { run } from 'heapscope';

const result = await run('tcache');
console.log(result.question);
for (const finding of result.findings) console.log(`- ${finding}`);
for (const surprise of result.surprises) console.log(`! ${surprise}`);

console.log('\nfrees of 40-byte requests, one at a time:');
console.log('chunk  size  went to   smblks  fsmblks  uordblks');
for (const row of result.rows.filter((r) => r.request === 40 && r.step === 'free')) {
  console.log(
    `${String(row.chunk).padStart(5)}  ${String(row.chunkSize).padStart(4)}  ${(row.went ?? '?').padEnd(8)}  ${String(row.mallinfo?.smblks).padStart(6)}` +
      `  ${String(row.mallinfo?.fsmblks).padStart(7)}  ${String(row.mallinfo?.uordblks).padStart(8)}`,
  );
}
const back = result.rows.filter((r) => r.request === 40 && r.step === 'remalloc');
console.log(`\nmalloc(40) × ${back.length} got back chunks: ${back.map((r) => `${r.chunk ?? '?'} (${r.from})`).join(', ')}`);
