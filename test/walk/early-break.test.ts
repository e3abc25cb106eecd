// A node whose program break was moved 4 MiB before malloc's first sbrk
// (test/fixtures/early-break.c, preloaded): [heap] starts with 4 MiB that are
// not main_arena's, and mp_.sbrk_base, where glibc's first sbrk began, lies
// past them. Every reading of this process's own main_arena starts there:
// mainHeapSnapshot() with walkSnapshot, walkHeap(), the doctor, and the bins
// experiment's search for this thread's tcache; and the layout experiment
// says that [heap] does not start with malloc's memory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { inQuietChild } from '../helpers/quiet-child';
import { buildFixtures } from '../helpers/target';

// The heap read is a child's.
heapRoomNotNeeded();

const MOVED = 4 << 20;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-early-break-'));
let preload = '';
let noCompiler: string | undefined;

beforeAll(() => {
  const built = buildFixtures(dir, ['early-break'], { shared: true });
  ({ noCompiler } = built);
  preload = built.programs['early-break'];
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Seen {
  heapStart: string;
  sbrkBase: string;
  snapshot: { start: number; end: number; ending: string; reason?: string; reached: number; count: number };
  walk: { firstChunk: string; complete: boolean; reason?: string; unequal: string[]; problems: string[]; consistent: boolean };
  doctor: { consistent: boolean; foreignSbrk?: { below: number; past: number; resident: number }; totals: Record<string, number>; mallinfo: Record<string, number> };
}

describe('this process, its break moved 4 MiB before malloc first moved it', () => {
  it('mainHeapSnapshot(), walkHeap() and the doctor start main_arena at mp_.sbrk_base, 4 MiB into [heap]', ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const seen = inQuietChild<Seen>(`
      const heap = h.maps().find((r) => r.kind === 'heap');
      const sbrkBase = h.mallocParams().values.sbrkBase;
      const s = h.mainHeapSnapshot();
      const w = h.walkSnapshot(s.bytes, s.base, s);
      const walk = h.walkHeap({ arena: 'main' });
      const d = h.doctor();
      return {
        heapStart: heap.start, sbrkBase,
        snapshot: { start: s.start, end: s.end, ending: w.ending, reason: w.reason, reached: w.reached, count: w.table.count },
        walk: { firstChunk: walk.main.firstChunk, complete: walk.main.complete, reason: walk.main.reason, unequal: walk.checks.filter((c) => !c.equal).map((c) => c.field),
          problems: walk.problems, consistent: walk.consistent },
        doctor: { consistent: d.snapshot.consistent, foreignSbrk: d.arenas[0].foreignSbrk, totals: d.totals, mallinfo: d.mallinfo },
      };
    `, { LD_PRELOAD: preload });
    const heapStart = BigInt(seen.heapStart);
    // The preload's 4 MiB: the break starts page-aligned, so glibc's first sbrk began exactly that far in.
    expect(BigInt(seen.sbrkBase) - heapStart).toBe(BigInt(MOVED));
    // The copy starts at [heap]'s start; its walk at sbrk_base, to the top at the break.
    expect(seen.snapshot.start).toBe(MOVED);
    expect(seen.snapshot).toMatchObject({ ending: 'top', reached: seen.snapshot.end });
    expect(seen.snapshot.count).toBeGreaterThan(1);
    expect(BigInt(seen.walk.firstChunk)).toBe(heapStart + BigInt(MOVED));
    expect(seen.walk).toMatchObject({ complete: true, unequal: [], problems: [], consistent: true });
    // Never touched, the 4 MiB are not resident.
    expect(seen.doctor.consistent).toBe(true);
    expect(seen.doctor.foreignSbrk).toEqual({ below: MOVED, past: 0, resident: 0 });
  });
});

describe('the bins experiment in such a process', () => {
  it("finds this thread's tcache where main_arena's chunks start, and takes its chunks with fillers first", ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    // Seven chunks of a size nothing else in a quiet node asks for, freed into this thread's tcache.
    const seen = inQuietChild<{ findings: string[]; cached: number }>(`
      const plan = [];
      for (let i = 0; i < 7; i++) plan.push({ op: 'malloc', size: 0x2e8 });
      for (let i = 0; i < 7; i++) plan.push({ op: 'free', step: i });
      h.runPlan(plan);
      const own = h.tcaches().tcaches.find((t) => t.owner === 'calling-thread');
      const cached = own.bins.reduce((n, b) => n + b.chunks.length, 0);
      const r = await h.run('bins', { isolated: false });
      return { findings: r.findings, cached };
    `, { LD_PRELOAD: preload });
    expect(seen.cached).toBeGreaterThanOrEqual(7);
    const took = seen.findings.map((f) => /fillers first took what this thread's tcache \((\d+)\)/.exec(f)).find((m) => m !== null);
    expect(took, seen.findings.join('\n')).toBeDefined();
    // The seven at least: nothing else asks for their size before the experiment's copy (node's mallocs may take others).
    expect(Number(took![1])).toBeGreaterThanOrEqual(7);
  });
});

describe('the layout experiment in such a process', () => {
  it("says that [heap] starts with 4 MiB that are not malloc's, from mp_.sbrk_base", ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const seen = inQuietChild<{ surprises: string[]; heapStart: string; sbrkBase: string }>(`
      const r = await h.run('layout', { isolated: false });
      return { surprises: r.surprises, heapStart: h.maps().find((x) => x.kind === 'heap').start, sbrkBase: h.mallocParams().values.sbrkBase };
    `, { LD_PRELOAD: preload });
    const hex = (n: string) => `0x${BigInt(n).toString(16)}`;
    expect(seen.surprises).toContain(`[heap] does not start with malloc's memory: main_arena's first sbrk began at ${hex(seen.sbrkBase)} (mp_.sbrk_base), ` +
      `4 MiB into [heap] (${hex(seen.heapStart)}). Something other than malloc moved the program break before malloc first did (sbrk or brk: ` +
      "what glibc calls a foreign sbrk), and those bytes are not malloc's.");
  });
});
