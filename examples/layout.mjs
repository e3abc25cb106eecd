// Where do things live in a process? Run from the repo root after `npx tsc -p .`:
//   node examples/layout.mjs
import { run } from 'heapscope';

const result = await run('layout');
console.log(result.question);
console.log(`(glibc ${result.environment.glibc}, node ${result.environment.node}, ${result.environment.isolated ? 'fresh child process' : 'this process'})\n`);

// The map, low to high: each object, its region, and the gap up to it.
/** @param {bigint} v */
const hex = (v) => `0x${v.toString(16)}`.padStart(18);
for (const row of result.rows) {
  const region = row.region === undefined ? '' : `${row.region.kind.padEnd(9)} ${row.region.perms} ${row.region.path || '(anonymous)'}`;
  const gap = row.distance === undefined ? '' : `+${row.distance}`;
  console.log(`${hex(row.address)}  ${row.name.padEnd(17)} ${gap.padStart(17)}  ${region}`);
}

console.log('\nFindings:');
for (const finding of result.findings) console.log(`- ${finding}`);
console.log('\nSurprises:');
for (const surprise of result.surprises) console.log(`- ${surprise}`);
