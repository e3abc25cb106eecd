// When does malloc switch to mmap, and how does the threshold move?
// Run from the repository root: node examples/mmap-threshold.mjs
import { run } from 'heapscope';

const result = await run('mmap-threshold');
console.log(result.question);
for (const finding of result.findings) console.log(`- ${finding}`);
for (const surprise of result.surprises) console.log(`! ${surprise}`);

console.log('\nThe sweep (every request allocated before any was freed):');
console.log('   request    chunk  mmapped  top before  served by');
for (const row of result.rows) {
  if (row.kind !== 'probe' || row.phase !== 'sweep') continue;
  console.log(
    `${String(row.request).padStart(10)} ${String(row.chunkSize).padStart(8)}  ${String(row.mmapped).padEnd(7)}  ` +
      `${String(row.topBefore).padStart(10)}  ${row.servedBy}`,
  );
}
