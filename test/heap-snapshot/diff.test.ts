// heapSnapshot() and diffHeapSnapshots() in a quiet child: a snapshot, a
// plan that keeps N blocks of one size (and one mmapped block), a snapshot
// again; the diff shows exactly N more chunks in use in that size class of
// main_arena, taken from the plan (the chunk size from the headers the plan
// read), nowhere else.
import { describe, expect, it } from 'vitest';
import { requestToChunkSize } from '../../lib/index';
import { inQuietChild } from '../helpers/quiet-child';

/** A size nothing else in a quiet node allocates between two snapshots, and the snapshot's probe (1000 bytes) is not. */
const REQUEST = 0x2e8;
const KEPT = 23;
/**
 * And an mmapped block of 741 pages: whatever the doctor reads a byte a
 * page for before its snapshot must not be a chunk of the class counted
 * (a 741-byte array was one of 752 bytes, as the blocks' chunks are).
 */
const BIG = 740 * 4096 - 16;

interface Counted { count: number; bytes: number }
interface Pair<T> { a: T; b: T }
interface ClassDiff { min: number; max: number | null; inUse: Pair<Counted>; free: Record<string, Pair<Counted>> }
interface ArenaDiff { kind: string; status: string; inUse: Pair<Counted>; classes: ClassDiff[]; classesSeen: number }

describe('heapSnapshot() before and after a plan that keeps blocks', () => {
  it('the diff shows exactly the kept chunks, in use, in their size class of main_arena', () => {
    const seen = inQuietChild<{
      steps: { op: string; header?: { size: number; nonMainArena: boolean; isMmapped: boolean } }[];
      arenas: ArenaDiff[]; consistent: boolean[]; markdown: string; sameProcess: boolean;
    }>(`
      const plan = [];
      for (let i = 0; i < ${KEPT}; i++) plan.push({ op: 'malloc', size: ${REQUEST} });
      for (let i = 0; i < ${KEPT}; i++) plan.push({ op: 'header', step: i });
      plan.push({ op: 'malloc', size: ${BIG} });
      const a = h.heapSnapshot();
      const kept = h.runPlan(plan, { keep: true });
      const b = h.heapSnapshot();
      const d = h.diffHeapSnapshots(a, b);
      globalThis.kept = kept;
      return { steps: kept.steps, arenas: d.arenas, consistent: [a.copy.consistent, b.copy.consistent], markdown: d.toMarkdown(), sameProcess: d.sameProcess };
    `);
    expect(seen.consistent).toEqual([true, true]);
    expect(seen.sameProcess).toBe(true);
    // N and the size classes from the plan: the mallocs it made, and the sizes their headers say. Most are the
    // request's chunk; glibc hands a free chunk up to MINSIZE − 1 bytes larger whole (nothing to split off).
    const n = seen.steps.filter((s) => s.op === 'malloc').length - 1;
    const headers = seen.steps.filter((s) => s.op === 'header').map((s) => s.header!);
    expect(headers).toHaveLength(n);
    const chunk = requestToChunkSize(REQUEST);
    const bySize = new Map<number, number>();
    for (const h of headers) {
      expect({ size: h.size, nonMainArena: h.nonMainArena, isMmapped: h.isMmapped }).toEqual({ size: expect.any(Number), nonMainArena: false, isMmapped: false });
      expect(h.size - chunk).toBeGreaterThanOrEqual(0);
      expect(h.size - chunk).toBeLessThan(32);
      bySize.set(h.size, (bySize.get(h.size) ?? 0) + 1);
    }
    const main = seen.arenas.find((a) => a.kind === 'main')!;
    expect(main.status).toBe('both');
    for (const [size, k] of bySize) {
      const cls = main.classes.find((c) => c.min === size)!;
      expect(cls).toBeDefined();
      expect(cls.max).toBe(size);
      expect({ size, more: cls.inUse.b.count - cls.inUse.a.count }).toEqual({ size, more: k });
      expect(cls.inUse.b.bytes - cls.inUse.a.bytes).toBe(k * size);
      // No other arena gained a chunk of that class.
      for (const a of seen.arenas.filter((x) => x.kind !== 'main')) {
        const other = a.classes.find((c) => c.min === size);
        if (other !== undefined) expect(other.inUse.b.count).toBe(other.inUse.a.count);
      }
    }
    const [size, most] = [...bySize].sort((x, y) => y[1] - x[1])[0];
    // The Markdown view prints the change from the two snapshots' figures.
    expect(seen.markdown).toMatch(new RegExp(`\\| ${size} B \\| [^|]+ \\| [^|]+ \\| \\+${most} \\(\\+[^)]+\\) \\|`));
  });
});
