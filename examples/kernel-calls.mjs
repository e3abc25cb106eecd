// Does malloc call the kernel (brk / mmap), or serve from memory it already holds?
// Run from the repository root: node examples/kernel-calls.mjs
import { run } from 'heapscope';

const result = await run('kernel-calls');
console.log(result.question);
for (const finding of result.findings) console.log(`- ${finding}`);
for (const surprise of result.surprises) console.log(`! ${surprise}`);

console.log('\nstep        request    chunk   top before  break moved  mapped / unmapped  verdict');
for (const row of result.rows) {
  const mapped = row.mapsChange.mapped.reduce((n, r) => n + r.size, 0);
  const unmapped = row.mapsChange.unmapped.reduce((n, r) => n + r.size, 0);
  console.log(
    `${row.role.padEnd(10)}  ${String(row.size).padStart(7)}  ${String(row.chunkSize).padStart(7)}  ` +
      `${String(row.topBefore).padStart(10)}  ${String(row.breakDelta).padStart(11)}  ` +
      `${`+${mapped} / -${unmapped}`.padStart(17)}  ${row.verdict}`,
  );
}
