// Every chunk of every arena, walked from one snapshot, each with its place,
// and where a chunk goes when it is freed.
// Run from the repository root: node examples/walk.mjs
import { malloc, walkHeap } from 'heapscope';

const mine = malloc(100);
// Free a 200-byte block inside the same native call as the snapshot, so
// nothing else can take it back out of tcache before the walk sees it.
const walk = walkHeap({ before: [{ op: 'malloc', size: 200 }, { op: 'header', step: 0 }, { op: 'free', step: 0 }] });
const { main, totals } = walk;

console.log(`[heap] ${main.start.toString(16)}..${main.end.toString(16)}: ${main.chunks.length} chunks, ` +
  (main.complete ? 'tiled exactly up to the top chunk' : `walk not complete: ${main.reason}`));
console.log(`${walk.threadHeaps.length} thread-arena heaps; every region: ` +
  Object.entries(totals.places).filter(([, t]) => t.count > 0).map(([place, t]) => `${place} ${t.count} (${t.size} B)`).join(', '));

const chunks = [main, ...walk.threadHeaps].flatMap((r) => r.chunks);
const ours = chunks.find((c) => c.allocation === mine);
console.log(`malloc(100) is the ${ours?.size}-byte chunk at 0x${ours?.address.toString(16)} (${ours?.place})`);

const freed = chunks.find((c) => c.address === (walk.steps[0].address ?? 0n) - 16n);
const size = walk.steps[1].header?.size;
console.log(`the freed 200-byte block (a ${size}-byte chunk) is in ${freed?.place} ${freed?.bin ?? ''}` +
  (freed?.owner === 'calling-thread' ? ", this thread's tcache" : ''));

for (const c of walk.checks) {
  console.log(`${c.equal ? '=' : '≠'} mallinfo2 ${c.field} ${c.mallinfo}, the walk's ${c.walk}${c.equal ? '' : ` (difference ${c.difference})`}`);
}
for (const p of walk.problems) console.log(`problem: ${p}`);
mine.free();
