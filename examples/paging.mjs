// Is malloc'd memory resident before you touch it? Run from the repo root after `npx tsc -p .`:
//   node examples/paging.mjs
import { run } from 'heapscope';

const result = await run('paging');
console.log(result.question);
console.log(`(glibc ${result.environment.glibc}, page size ${result.environment.pageSize} B, ${result.environment.isolated ? 'fresh child process' : 'this process'})\n`);

// One line per measurement: resident pages of the block (mincore) and the process's RSS change.
console.log('block            moment     mmapped  resident/total  RSS change (pages)');
for (const row of result.rows) {
  const resident = row.residentPages === undefined ? '' : `${row.residentPages}/${row.totalPages}`;
  console.log(
    `${row.block.padEnd(16)} ${row.moment.padEnd(10)} ${String(row.header.isMmapped).padEnd(8)} ${resident.padStart(14)}  ${String(row.rssDeltaPages).padStart(6)}`,
  );
}

console.log('\nFindings:');
for (const finding of result.findings) console.log(`- ${finding}`);
console.log('\nSurprises:');
for (const surprise of result.surprises) console.log(`- ${surprise}`);
