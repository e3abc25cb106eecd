// Where does a freed chunk go, and how does it move between the bins?
// Run from the repository root: node examples/bins.mjs
// Try it with a smaller tcache: run('bins', { tunables: { 'glibc.malloc.tcache_count': 3 } }).
import { run } from 'heapscope';

const result = await run('bins');
console.log(result.question);
for (const finding of result.findings) console.log(`- ${finding}`);
for (const surprise of result.surprises) console.log(`! ${surprise}`);

console.log('\nthe bins holding test chunks after each step:');
for (const row of result.rows) {
  const bins = row.bins.filter((b) => b.ours.length > 0).map((b) => `${b.kind} ${b.index}: ${b.ours.join(' ')}`);
  console.log(`${String(row.step).padStart(2)}  ${row.action.padEnd(22)}  ${bins.join('; ')}`);
}
