// Where is a heap object when another thread allocates it?
// Run from the repository root: node examples/arenas.mjs
import { run } from 'heapscope';

/** @param {bigint | number} n */
const hex = (n) => `0x${n.toString(16)}`;
const result = await run('arenas');
console.log(result.question);
for (const finding of result.findings) console.log(`- ${finding}`);
for (const surprise of result.surprises) console.log(`! ${surprise}`);

console.log('\nthread  request  address          size word  A bit  region');
for (const row of result.rows) {
  if (row.what !== 'chunk' || row.phase !== 'first') continue;
  console.log(
    `${row.thread.padEnd(6)}  ${String(row.request).padStart(7)}  ${hex(row.address).padEnd(15)}  ${hex(row.header.rawSize).padEnd(9)}` +
      `  ${row.header.nonMainArena ? 'yes' : 'no '}    ${row.region}`,
  );
}
console.log('\nthe worker\'s arena heap:');
for (const row of result.rows.filter((r) => r.what === 'arena-heap')) {
  console.log(`  ${row.snapshot.padEnd(13)} ${hex(row.start)}  rw-p ${String(row.rwSize).padStart(9)}  ---p ${String(row.reservedSize).padStart(9)}  total ${row.total}`);
}
