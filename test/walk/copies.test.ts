// A walk gives its snapshot's copies back when its result is built: Node
// frees a Buffer over memory the addon mapped only from its event loop, and
// a loop of walks that never yielded held every copy (ten walks of a heap of
// a million chunks: over a GiB).
import { describe, expect, it } from 'vitest';
import { inQuietChild } from '../helpers/quiet-child';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { NO_PYTHON, PYTHON } from '../helpers/target';

// The walks run in children: no live heap of this process is read.
heapRoomNotNeeded();

describe('walkHeap() in a loop that never yields', () => {
  it("holds none of its walks' copies: the resident set grows by less than two copies of [heap] over eight walks", () => {
    // In a quiet child whose break can grow: the heap it grows stays grown,
    // its resident set is its own, and every block lies in [heap], walked.
    const seen = inQuietChild<{ grew: number; heap: number; ours: number[]; consistent: boolean }>(`
      const { kept } = h.runPlan(Array.from({ length: 200000 }, () => ({ op: 'malloc', size: 100 })), { keep: true });
      const resident = () => Number(require('node:fs').readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
      const walks = [h.walkHeap()];
      const before = resident();
      for (let i = 0; i < 8; i++) walks.push(h.walkHeap());
      const grew = resident() - before;
      const heap = h.maps().find((r) => r.kind === 'heap');
      const seen = { grew, heap: Number(heap.end - heap.start), ours: walks.map((w) => w.totals.ours.count), consistent: walks.every((w) => w.consistent) };
      for (const a of kept.values()) a.free();
      return seen;
    `);
    // Each walk is whole: its own 200,000 blocks among its chunks.
    expect(seen.consistent).toBe(true);
    expect(seen.ours).toEqual(Array(9).fill(200000));
    // Held, the eight copies would have added eight times [heap] (20 MiB or more).
    expect(seen.heap).toBeGreaterThan(20 << 20);
    expect(seen.grew).toBeLessThan(2 * seen.heap);
  }, 120_000);
});

describe('doctor() and heapSnapshot() in a loop that never yields', () => {
  it("hold none of their snapshots' copies: the resident set grows by less than two copies of [heap] over four of each", () => {
    // The diagnosis keeps figures, never a copy's bytes: its copies go back before it returns, as a walk's do.
    const seen = inQuietChild<{ grew: number; heap: number; chunks: number[] }>(`
      const { kept } = h.runPlan(Array.from({ length: 200000 }, () => ({ op: 'malloc', size: 100 })), { keep: true });
      const resident = () => Number(require('node:fs').readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
      const done = [h.doctor(), h.heapSnapshot()];
      const before = resident();
      for (let i = 0; i < 4; i++) done.push(h.doctor(), h.heapSnapshot());
      const grew = resident() - before;
      const heap = h.maps().find((r) => r.kind === 'heap');
      const seen = { grew, heap: Number(heap.end - heap.start), chunks: done.map((d) => { const inUse = d.arenas[0].inUse; return typeof inUse === 'number' ? inUse : inUse.bytes; }) };
      for (const a of kept.values()) a.free();
      return seen;
    `);
    // Each diagnosis saw the 200,000 blocks in use in main_arena (over 20 MiB of chunks; a snapshot counts them by class).
    expect(seen.chunks.every((inUse) => inUse > 20 << 20)).toBe(true);
    expect(seen.heap).toBeGreaterThan(20 << 20);
    expect(seen.grew).toBeLessThan(2 * seen.heap);
  }, 120_000);
});

/**
 * A quiet child's code up to a `try` whose body has `other`, attached to
 * Debian's python3 holding 40,000 blocks of a kilobyte (above pymalloc's 512
 * bytes: glibc's malloc, in [heap]), and `resident()`, the child's RSS.
 */
const ATTACHED_PYTHON = `
      const { spawn } = require('node:child_process');
      const target = spawn(${JSON.stringify(PYTHON)}, ['-c', 'import sys\\nkept = [bytes(1000) for _ in range(40000)]\\nprint("ready", flush=True)\\nsys.stdin.read()'],
        { stdio: ['pipe', 'pipe', 'inherit'], env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } });
      await new Promise((resolve, reject) => { target.stdout.once('data', resolve); target.once('exit', reject); });
      try {
        const resident = () => Number(require('node:fs').readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
        const other = h.attach(target.pid);`;

describe('attach(pid).walk() in a loop that never yields', () => {
  it("holds none of its snapshots' copies: the resident set grows by less than two copies of the target's [heap] over six walks", ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    // Each snapshot copies its heaps twice; held, six walks would add twelve copies.
    const seen = inQuietChild<{ grew: number; heap: number; chunks: number[]; consistent: boolean }>(`
      ${ATTACHED_PYTHON}
        const walks = [other.walk({ arena: 'main' })];
        const before = resident();
        for (let i = 0; i < 6; i++) walks.push(other.walk({ arena: 'main' }));
        const grew = resident() - before;
        const heap = other.maps().find((r) => r.kind === 'heap');
        return { grew, heap: Number(heap.end - heap.start), chunks: walks.map((w) => w.main.totals.chunks), consistent: walks.every((w) => w.consistent) };
      } finally {
        target.kill();
      }
    `);
    expect(seen.consistent).toBe(true);
    // Every walk met the 40,000 blocks: the copies it walked were whole.
    expect(seen.chunks.every((n) => n > 40000)).toBe(true);
    // 40,000 blocks of a kilobyte: over 32 MiB of [heap] (42 MiB here), copied twice a walk.
    expect(seen.heap).toBeGreaterThan(32 << 20);
    expect(seen.grew).toBeLessThan(2 * seen.heap);
  }, 120_000);

  it("and its decodes (arenas, params, bins, tcaches, chunk places, totals, vis) give back theirs, and read as a kept snapshot's do", ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    // Two of each of the seven: held, their fourteen snapshots would add twenty-eight copies.
    const seen = inQuietChild<{ grew: number; heap: number; same: boolean[] }>(`
      ${ATTACHED_PYTHON}
        const calls = [
          (s) => other.arenas(s), (s) => other.mallocParams(s), (s) => other.bins(s), (s) => other.tcaches(s),
          (s) => other.chunkPlaces(s), (s) => other.allocatorTotals(s), (s) => other.vis({ count: 64 }, s),
        ];
        // Every field read, the chunk places' chunks (made when first read) among them.
        const text = (r) => JSON.stringify(r, (k, v) => (typeof v === 'bigint' ? String(v) : v))
          + JSON.stringify(r.regions?.map((region) => region.chunks.length));
        calls.forEach((call) => call());
        const before = resident();
        const results = [];
        for (let round = 0; round < 2; round++) for (const call of calls) results.push(call());
        const grew = resident() - before;
        // The target is quiet: one kept snapshot decodes to the same figures.
        const kept = other.snapshot();
        const same = calls.map((call, i) => text(results[i]) === text(call(kept)) && text(results[calls.length + i]) === text(call(kept)));
        const heap = other.maps().find((r) => r.kind === 'heap');
        return { grew, heap: Number(heap.end - heap.start), same };
      } finally {
        target.kill();
      }
    `);
    expect(seen.same).toEqual(seen.same.map(() => true));
    expect(seen.heap).toBeGreaterThan(32 << 20);
    expect(seen.grew).toBeLessThan(2 * seen.heap);
  }, 120_000);
});

// A copy its caller gives back itself (walkHeap's, doctor()'s) is left out
// of V8's count of external memory while it lives: counted, a walk's copy of
// a big heap set V8 collecting every walk, for memory no collection frees.
// Given back or collected, it is counted again just before V8 takes its
// length off, so that the count ends where it began either way.
describe("V8's count of external memory", () => {
  it("leaves out a copy under 64 MiB given back by its caller, and ends where it began whether the copy is given back or collected", () => {
    const seen = inQuietChild<{ counted: number; left: number; released: number; collected: number; walked: number; bigLeft: number; bigReleased: number; plain: number }>(`
      const { runPlanReleasingCopies } = require(${JSON.stringify(require.resolve('../../dist/plan'))});
      const block = h.malloc(32 << 20);
      block.fill(7);
      const read = { op: 'read', address: block.address, length: 32 << 20 };
      const count = () => binding.externalMemory();
      const settle = async () => { for (let i = 0; i < 3; i++) { global.gc(); await new Promise((resolve) => setImmediate(resolve)); } };
      await settle();
      const base = count();
      let plain = h.runPlan([read]).steps;
      const counted = count() - base;
      plain = undefined;
      await settle();
      let kept = runPlanReleasingCopies([read], 0).steps;
      const left = count() - base;
      binding.releaseCopies([kept[0].bytes]);
      kept = undefined;
      await settle();
      const released = count() - base;
      // Never given back: collected, and counted again by its finalizer.
      runPlanReleasingCopies([read], 0);
      await settle();
      const collected = count() - base;
      for (let i = 0; i < 3; i++) h.walkHeap();
      await settle();
      const walked = count() - base;
      // From 64 MiB on, a copy is counted all the same (native/copies.cc).
      const big = h.malloc(64 << 20);
      big.fill(7);
      let whole = runPlanReleasingCopies([{ op: 'read', address: big.address, length: 64 << 20 }], 0).steps;
      const bigLeft = count() - base;
      binding.releaseCopies([whole[0].bytes]);
      whole = undefined;
      await settle();
      const bigReleased = count() - base;
      big.free();
      block.free();
      return { counted, left, released, collected, walked, bigLeft, bigReleased, plain: 32 << 20 };
    `, { NODE_OPTIONS: [process.env.NODE_OPTIONS, '--expose-gc'].filter(Boolean).join(' ') });
    const slack = 1 << 20;
    // A plain plan's copy is counted whole; one its caller gives back is not.
    expect(seen.counted).toBeGreaterThan(seen.plain - slack);
    expect(Math.abs(seen.left)).toBeLessThan(slack);
    for (const k of ['released', 'collected', 'walked', 'bigReleased'] as const) expect(Math.abs(seen[k]), k).toBeLessThan(slack);
    expect(seen.bigLeft).toBeGreaterThan(2 * seen.plain - slack);
  }, 120_000);
});
