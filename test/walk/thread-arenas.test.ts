// Walking thread-arena heaps: a worker thread's chunks, found from the main thread.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { walkHeap } from '../../lib/index';
import { tcacheChunkSizes } from '../../lib/allocator/layouts';
import { HERE } from '../helpers/glibc-here';
import { tcacheFill } from '../helpers/tcache-fill';

/** The sizes of tcache_perthread_struct's chunk as this release lays it out (of 2.28's and 2.29's two, the uint16_t one). */
const STRUCT_SIZES = tcacheChunkSizes(HERE, HERE.tcache.at(-1)!);

const root = path.join(__dirname, '..', '..');

/**
 * A worker that mallocs what \`body\` keeps, posts \`message\`, then blocks in
 * Atomics.wait until released: a blocked thread cannot run its isolate's
 * tasks, so nothing allocates in its arena while the main thread walks it.
 */
function blockedWorker(body: string, message: string): { worker: Worker; release: () => Promise<unknown> } {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const h = require(workerData.root);
    ${body}
    parentPort.postMessage(${message});
    Atomics.wait(workerData.gate, 0, 0);
    for (const a of kept) a.free();
    parentPort.close();
  `, { eval: true, workerData: { root, gate } });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  return {
    worker,
    release: () => {
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      return exited;
    },
  };
}

const SOURCE = 'const kept = [200, 3000, 200].map((size) => h.malloc(size));';
const MESSAGE = 'kept.map((a) => ({ address: a.address, size: a.chunk.size, a: a.chunk.nonMainArena }))';

describe('walkHeap: thread arenas', () => {
  it("finds a worker's chunks, with the A bit, in a thread-arena heap walked to its top", async () => {
    const { worker, release } = blockedWorker(SOURCE, MESSAGE);
    try {
      const chunks = await new Promise<{ address: bigint; size: number; a: boolean }[]>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(chunks.every((c) => c.a)).toBe(true);
      const walk = walkHeap();
      expect(walk.consistent, walk.inconsistency).toBe(true);
      for (const c of chunks) {
        const heap = walk.threadHeaps.find((h) => h.start <= c.address && c.address < h.end);
        expect(heap, `no walked thread heap holds ${c.address.toString(16)}`).toBeDefined();
        expect(heap!.reason).toBeUndefined();
        expect(heap!.complete).toBe(true);
        expect(heap!.heapInfo!.arPtr).toBe(heap!.arena);
        const chunk = heap!.chunks.find((k) => k.address === c.address - 16n);
        expect(chunk).toMatchObject({ size: c.size, nonMainArena: true, place: 'in-use' });
        // The arena's newest heap holds its top, the walk's last chunk.
        if (heap!.heapInfo!.address === walk.threadHeaps.find((h) => h.arena === heap!.arena)!.start) {
          expect(heap!.top?.address).toBeDefined();
          expect(heap!.top!.address + BigInt(heap!.top!.size)).toBe(heap!.end);
        }
      }
    } finally {
      await release();
    }
  });

  it('walks an arena that outgrew its first 64 MiB heap: the old heap ends in a fencepost (16 or 32 bytes), the new one at the top', async () => {
    // 800 × 100 kB: below the mmap threshold, so the worker's arena must add a heap.
    const { worker, release } = blockedWorker('const kept = Array.from({ length: 800 }, () => h.malloc(100000));', 'kept.map((a) => a.address)');
    try {
      const addresses = await new Promise<bigint[]>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      const walk = walkHeap();
      expect(walk.consistent, walk.inconsistency).toBe(true);
      const holder = (a: bigint) => walk.threadHeaps.find((h) => h.chunks.some((c) => c.address === a - 16n));
      expect(addresses.filter((a) => holder(a) === undefined)).toEqual([]);
      const heaps = [...new Set(addresses.map(holder))];
      expect(heaps.length).toBeGreaterThanOrEqual(2);
      const arena = heaps[0]!.arena;
      expect(heaps.every((h) => h!.arena === arena && h!.complete)).toBe(true);
      const first = heaps.find((h) => h!.heapInfo!.prev === 0n)!;
      const newer = heaps.find((h) => h!.heapInfo!.prev !== 0n)!;
      // 16 bytes, or 32 when the old top was 48 (test/remote/old-heap-ends.test.ts has each case).
      expect(first.chunks.at(-1)).toMatchObject({ place: 'fencepost', size: expect.toSatisfy((n: number) => n === 16 || n === 32) });
      expect(heaps.map((h) => h!.start)).toContain(newer.heapInfo!.prev);
      expect(newer.chunks.at(-1)!.place).toBe('top');
    } finally {
      await release();
    }
  });

  it("decodes a worker's own tcache and finds a chunk it just freed at the head of its bin", async () => {
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const h = require(workerData.root);
      // A chunk of exactly the size freed first (tcacheFill) leaves the bin at least one: the block is taken from it and fits back.
      const w = h.walkHeap({ before: [...workerData.fill, { op: 'malloc', size: 100 }, { op: 'header', step: 3 }, { op: 'free', step: 3 }] });
      const size = w.steps[4].header.size;
      const mine = w.tcaches.filter((t) => t.owner === 'calling-thread');
      const bin = mine[0] && mine[0].bins[(size - 32) / 16];
      const all = [w.main, ...w.threadHeaps].flatMap((x) => x.chunks);
      const struct = all.find((c) => mine[0] && c.address === mine[0].address);
      parentPort.postMessage({
        mine: mine.length, freed: w.steps[3].address, head: bin && bin.chunks[0] && bin.chunks[0].address + 16n,
        structSize: struct && struct.size, structPlace: struct && struct.place, structOwner: struct && struct.owner, steps: w.steps.length,
      });
    `, { eval: true, workerData: { root, fill: tcacheFill(0, 100) } });
    const seen = await new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await new Promise((resolve) => worker.once('exit', resolve));
    expect(seen.mine).toBe(1);
    expect(seen.head).toBe(seen.freed);
    expect(seen).toMatchObject({ structPlace: 'tcache-struct', structOwner: 'calling-thread', steps: 6 });
    // The struct is carved from whatever the worker's arena had free: a
    // remainder under MINSIZE (32) stays with it, so the chunk may be 16
    // larger; from 2.43 its request is converted twice (tcacheChunkSizes).
    expect(STRUCT_SIZES).toContain(seen.structSize);
  });

  it("leaves thread arenas out with arena: 'main'", () => {
    expect(walkHeap({ arena: 'main' }).threadHeaps).toEqual([]);
  });
});
