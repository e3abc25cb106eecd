// Every chunk of main_arena's heap, walked from one snapshot, and where a
// chunk goes when it is freed.
// Run from the repository root: node examples/walk.mjs
import { malloc, walkHeap } from 'heapscope';

const mine = malloc(100);
// Free a 200-byte block inside the same native call as the snapshot, so
// nothing else can take it back out of tcache before the walk sees it.
const walk = walkHeap({ before: [{ op: 'malloc', size: 200 }, { op: 'header', step: 0 }, { op: 'free', step: 0 }] });
const { main, tcache } = walk;

console.log(`[heap] ${main.start.toString(16)}..${main.end.toString(16)}: ${main.chunks.length} chunks, ` +
  (main.complete ? 'tiled exactly up to the top chunk' : `walk stopped: ${main.reason}`));
const t = main.totals;
console.log(`in use ${t.inUse.count} (${t.inUse.size} B), free ${t.free.count} (${t.free.size} B), ` +
  `in tcache ${t.tcache.count} (${t.tcache.size} B), top ${t.top} B`);

const ours = main.chunks.find((c) => c.allocation === mine);
console.log(`malloc(100) is the ${ours?.size}-byte chunk at 0x${ours?.address.toString(16)} (${ours?.state})`);

const freed = walk.steps[0].address;
const size = walk.steps[1].header?.size;
if (tcache === undefined || size === undefined) {
  console.log(`no tcache bin to look in: ${walk.tcacheReason ?? 'the header step read nothing'}`);
} else {
  const bin = tcache.bins[(size - 32) / 16];
  console.log(`the freed 200-byte block (a ${size}-byte chunk) is ${bin.entries[0] === freed ? '' : 'not '}at the head of tcache bin ${bin.index}, ` +
    `which holds ${bin.count}: ${bin.entries.map((e) => `0x${e.toString(16)}`).join(' → ')}`);
}

for (const c of walk.checks) {
  console.log(`${c.equal ? '=' : '≠'} mallinfo2 ${c.mallinfo} ${c.mallinfoValue} vs ${c.walk} ${c.walkValue}${c.exact ? '' : ' (mallinfo2 sums every arena)'}`);
}
mine.free();
