// How does the heap grow? 4000 × malloc(1000), with the default top pad and with glibc.malloc.top_pad=0.
// Run from the repository root: node examples/heap-growth.mjs
import { run } from 'heapscope';

for (const topPad of [undefined, 0]) {
  const result = await run('heap-growth', topPad === undefined ? {} : { tunables: { 'glibc.malloc.top_pad': topPad } });
  const label = topPad === undefined ? 'default' : `glibc.malloc.top_pad=${topPad}`;
  console.log(`${result.question} (${label})`);
  for (const finding of result.findings) console.log(`- ${finding}`);
  for (const surprise of result.surprises) console.log(`! ${surprise}`);

  // The break against the bytes requested: the first break moves and the last two (the trim).
  console.log('\n  op      n  requested        break    step  top before');
  const moves = result.rows.filter((r) => r.breakAfter !== r.breakBefore);
  for (const row of [...moves.slice(0, 4), ...moves.slice(-2)]) {
    const step = Number(row.breakAfter - row.breakBefore);
    console.log(
      `  ${row.op.padEnd(6)} ${String(row.n).padStart(4)}  ${String(row.requested).padStart(9)}  ` +
        `0x${row.breakAfter.toString(16)}  ${String(step).padStart(6)}  ${String(row.topBefore).padStart(10)}`,
    );
  }
  console.log('');
}
