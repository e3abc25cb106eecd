// A walk gives its snapshot's copies back when its result is built: Node
// frees a Buffer over memory the addon mapped only from its event loop, and
// a loop of walks that never yielded held every copy (ten walks of a heap of
// a million chunks: over a GiB).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..', '..');

describe('walkHeap() in a loop that never yields', () => {
  it("holds none of its walks' copies: the resident set grows by less than two copies of [heap] over eight walks", () => {
    // In a child: the heap it grows stays grown, and its resident set is its own.
    const script = `
      const h = require(${JSON.stringify(ROOT)});
      const { kept } = h.runPlan(Array.from({ length: 200000 }, () => ({ op: 'malloc', size: 100 })), { keep: true });
      const resident = () => Number(require('node:fs').readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
      const first = h.walkHeap();
      const before = resident();
      const walks = [];
      for (let i = 0; i < 8; i++) walks.push(h.walkHeap());
      const grew = resident() - before;
      const heap = h.maps().find((r) => r.kind === 'heap');
      const ours = walks.map((w) => w.totals.ours.count);
      for (const a of kept.values()) a.free();
      console.log(JSON.stringify({ grew, heap: Number(heap.end - heap.start), ours, consistent: walks.every((w) => w.consistent), firstOurs: first.totals.ours.count }));
    `;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    const { grew, heap, ours, consistent, firstOurs } = JSON.parse(child.stdout);
    // Each walk is whole: its own 200,000 blocks among its chunks (one may lie in a thread heap: a chunk another thread freed into this one's tcache).
    expect(consistent).toBe(true);
    expect(firstOurs).toBe(200000);
    expect(ours).toEqual(Array(8).fill(200000));
    // Held, the eight copies would have added eight times [heap] (20 MiB or more).
    expect(heap).toBeGreaterThan(20 << 20);
    expect(grew).toBeLessThan(2 * heap);
  }, 120_000);
});
