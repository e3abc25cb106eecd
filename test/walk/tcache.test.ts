// The calling thread's tcache_perthread_struct, as the walk decodes it from the snapshot.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeapWalk, PlanStep, requestToChunkSize, walkHeap } from '../../lib/index';
import { tcacheFill } from '../helpers/tcache-fill';
import { SYNC_CHILD } from '../helpers/sync-child';
import { TCACHE_AT_FIRST_FREE, TCACHE_BINS, TCACHE_STRUCT_SIZES } from '../helpers/glibc-here';

const root = path.join(__dirname, '..', '..');
const mine = (walk: HeapWalk) => walk.tcaches.find((t) => t.owner === 'calling-thread');

/**
 * X then Y, of one size, freed in the native call that copies the heap,
 * after `setup`: the calling thread's bin of their size starts with Y, then
 * X. Two chunks of exactly that size freed first (tcacheFill) leave the bin
 * at least two, so X and Y are both taken from it and both fit back.
 */
function freedPair(setup: readonly PlanStep[]): void {
  const at = setup.length;
  const before = [...setup, ...tcacheFill(at, 100), ...tcacheFill(at + 3, 100)];
  const x = before.length;
  before.push(
    { op: 'malloc', size: 100 }, { op: 'header', step: x },
    { op: 'malloc', size: 100 }, { op: 'header', step: x + 2 },
    { op: 'free', step: x }, { op: 'free', step: x + 2 },
  );
  const walk = walkHeap({ before });
  const X = walk.steps[x].address!;
  const Y = walk.steps[x + 2].address!;
  const size = requestToChunkSize(100);
  expect([walk.steps[x + 1].header!.size, walk.steps[x + 3].header!.size]).toEqual([size, size]);
  const bin = mine(walk)!.bins[(size - 32) / 16];
  // The snapshot's own probe (1000 bytes) is in another bin.
  const heads = bin.chunks.map((c) => c.address + 16n);
  // The second entry is only right if its safe-linked pointer was demangled.
  expect(heads.slice(0, 2)).toEqual([Y, X]);
  const chunk = [walk.main, ...walk.threadHeaps].flatMap((h) => h.chunks).find((c) => c.address === X - 16n);
  expect(chunk).toMatchObject({ place: 'tcache', bin: (size - 32) / 16, owner: 'calling-thread' });
}

describe('tcache', () => {
  it('has 64 bins in a 0x290-byte chunk from glibc 2.30 (0x250 before; 76 in 0x300 from 2.42), every list as long as its count, of chunks of its size, each placed there', () => {
    const walk = walkHeap();
    const tcache = mine(walk);
    expect(tcache).toBeDefined();
    expect(tcache!.bins).toHaveLength(TCACHE_BINS);
    expect(TCACHE_STRUCT_SIZES).toContain(tcache!.struct.layout.chunkSize);
    expect(tcache!.complete).toBe(true);
    const chunks = new Map([walk.main, ...walk.threadHeaps].flatMap((h) => h.chunks).map((c) => [c.address, c]));
    for (const bin of tcache!.bins) {
      expect(bin.reason).toBeUndefined();
      expect(bin.chunks).toHaveLength(bin.count);
      for (const c of bin.chunks) {
        // Bins past the 64 of one size each (2.42) hold ranges of large sizes.
        if (bin.index < 64) expect(c.size).toBe(32 + 16 * bin.index);
        else expect(c.size).toBeGreaterThan(32 + 16 * 63);
        expect(chunks.get(c.address)).toMatchObject({ place: 'tcache', bin: bin.index, tcache: tcache!.address, owner: 'calling-thread' });
      }
    }
  });

  it('finds chunks freed in the same native call at the head of their bin, newest first', () => {
    freedPair([]);
  });

  it('finds them there too when a malloc that finds the bin empty would refill it, full, from a long fastbin of the size', () => {
    // 30 frees fill the bin (7 chunks by default) and put the rest in the
    // fastbin; 6 or 7 mallocs then leave the bin one chunk or none. The next
    // malloc that finds it empty takes a fastbin chunk and stashes 7 more in
    // the bin (tcache stashing). A full run failed so: 8 mallocs meant to
    // drain the bin left it full, and X and Y went to the fastbin.
    const mallocs = (n: number): PlanStep[] => Array.from({ length: n }, () => ({ op: 'malloc', size: 100 }));
    const frees = (n: number): PlanStep[] => Array.from({ length: n }, (_, step) => ({ op: 'free', step }));
    for (const left of [1, 0]) freedPair([...mallocs(30), ...frees(30), ...mallocs(7 - left)]);
  });

  it('with glibc.malloc.tcache_count=0 every bin is empty, even right after a free', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const { walkHeap } = require('heapscope');
      const w = walkHeap({ before: [{ op: 'malloc', size: 100 }, { op: 'free', step: 0 }] });
      const first = w.main.chunks[0];
      console.log(JSON.stringify({
        first: first.place,
        struct: w.tcaches.filter((t) => t.address === first.address).map((t) => ({ counts: t.bins.map((b) => b.count), complete: t.complete })),
        cached: [w.main, ...w.threadHeaps].flatMap((h) => h.chunks).filter((c) => c.place === 'tcache').length,
        tunables: process.env.GLIBC_TUNABLES,
      }));`], { ...SYNC_CHILD, cwd: root, encoding: 'utf8', env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' } });
    const seen = JSON.parse(out) as { first: string; struct: { counts: number[]; complete: boolean }[]; cached: number; tunables: string };
    // From 2.43 a tcache_count of 0 leaves the thread with glibc's static disabled struct: none is made in [heap].
    expect(seen).toEqual(TCACHE_AT_FIRST_FREE
      ? { first: 'in-use', struct: [], cached: 0, tunables: 'glibc.malloc.tcache_count=0' }
      : { first: 'tcache-struct', struct: [{ counts: new Array(TCACHE_BINS).fill(0), complete: true }], cached: 0, tunables: 'glibc.malloc.tcache_count=0' });
  });
});
