// attach(pid).doctor() reads the heaps' chunk headers, not their bytes
// (lib/remote/header-snapshot.ts): on quiet targets its diagnosis is the
// one the whole copy gives, and on a target that never stands still each
// copy is consistent or says why not.
import { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtures, startLines } from '../helpers/target';
import { attach } from '../../lib/index';
import { layoutFor } from '../../lib/allocator/layouts';
import { Decoded } from '../../lib/allocator/results';
import { placementProblems } from '../../lib/allocator/places';
import { takeHeaderSnapshot } from '../../lib/remote/header-snapshot';
import { DoctorData } from '../../lib/doctor/types';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Other processes are read, none of this one's heap.
heapRoomNotNeeded();

const fixtures = path.join(__dirname, '..', 'fixtures');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-headers-'));
const PYTHON = '/usr/bin/python3';
const children: ChildProcess[] = [];
let programs: Record<string, string> = {};
let noCompiler: string | undefined;

beforeAll(() => {
  ({ programs, noCompiler } = buildFixtures(dir, ['doctor-threads', 'attach-busy', 'attach-aba']));
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** What a diagnosis says of the allocator (its RSS rows read smaps at another moment). */
const figures = (d: DoctorData) => JSON.parse(JSON.stringify(
  { arenas: d.arenas.map((a) => ({ ...a, rss: undefined })), totals: d.totals, params: d.params, mmapped: d.mmapped, trim: d.trim, incomplete: d.incomplete, advice: d.advice.map((a) => a.rule) },
  (_, v) => (typeof v === 'bigint' ? v.toString() : v),
)) as unknown;

/** Never silently wrong: every chunk a bin lists is free in the walk, every free chunk is listed, no list is cut short. */
function expectNoContradiction(d: Decoded) {
  expect(placementProblems(d.state.placement)).toEqual([]);
  expect(d.state.totals.incomplete).toEqual([]);
}

describe('doctor() of another process from its chunk headers', () => {
  it('four fragmented thread arenas and a risen mmap threshold: the diagnosis of the whole copy, from one read of each heap', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child } = await startLines(programs['doctor-threads'], [], 2, { into: children });
    const target = attach(child.pid!);
    const s = takeHeaderSnapshot(child.pid!, layoutFor(target.glibc), target.libc, 1)?.s;
    expect(s).toBeDefined();
    expect(s!.consistent, s!.reason).toBe(true);
    // Libc's data and each heap's heap_info and malloc_state copied whole; the heaps themselves walked as they were read.
    expect(new Set(s!.image.memory.ranges.map((r) => r.label))).toEqual(new Set(['libc data', 'heap_info']));
    expect(s!.walks!.map((w) => w.kind)).toEqual(['heap', 'arena-heap', 'arena-heap', 'arena-heap', 'arena-heap']);
    const lean = target.doctor();
    const whole = target.doctor(target.snapshot());
    expect(lean.snapshot.consistent).toBe(true);
    expect(figures(lean)).toEqual(figures(whole));
    expect(lean.arenas.filter((a) => a.kind === 'thread').every((a) => a.freeChunks > 0)).toBe(true);
  });

  it("Debian's python3: the diagnosis of the whole copy", async ({ skip }) => {
    if (!fs.existsSync(PYTHON)) skip(`no ${PYTHON} (Debian's python3)`);
    const { child } = await startLines(PYTHON, [path.join(fixtures, 'attach-target.py')], 2, { into: children, env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } });
    const target = attach(child.pid!);
    const lean = target.doctor();
    expect(lean.snapshot.consistent, lean.snapshot.reason).toBe(true);
    expect(figures(lean)).toEqual(figures(target.doctor(target.snapshot())));
  });

  it('a process that never stands still: a copy is consistent and decodes without a contradiction, or says why it is not', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child } = await startLines(programs['attach-busy'], [], 1, { into: children });
    const target = attach(child.pid!);
    const layout = layoutFor(target.glibc);
    const copies = Array.from({ length: 20 }, () => takeHeaderSnapshot(child.pid!, layout, target.libc, 1));
    // Its threads malloc and free all the time: some copies are torn, each saying what changed.
    const torn = copies.filter((c) => c !== undefined && !c.s.consistent);
    expect(torn.length).toBeGreaterThan(0);
    for (const c of torn) expect(c!.s.reason).toMatch(/the process used malloc|mutex is held|map changed|contradicts itself/);
    for (const c of copies) if (c !== undefined && c.s.consistent) expectNoContradiction(c.d);
  });

  it('a thread that takes its tcache\'s head and gives it back, over and over: a consistent copy decodes its tcache whole', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child } = await startLines(programs['attach-aba'], [], 1, { into: children, env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' } });
    const target = attach(child.pid!);
    const layout = layoutFor(target.glibc);
    let consistent = 0;
    for (let k = 0; k < 40; k++) {
      // Between two reads of its struct the state is the same again; the chunk's link read in between was the thread's bytes.
      const c = takeHeaderSnapshot(child.pid!, layout, target.libc, 1);
      if (c === undefined || !c.s.consistent) continue;
      consistent++;
      expectNoContradiction(c.d);
      expect(c.d.state.tcaches.undecoded).toEqual([]);
      for (const t of c.d.state.tcaches.tcaches) for (const b of t.bins) expect(b.reason).toBeUndefined();
    }
    expect(consistent).toBeGreaterThan(0);
    // Copies that contradict themselves go to a whole copy after three, one attempt left for it: never more than allowed.
    for (let k = 0; k < 10; k++) {
      const spent = { copies: 0 };
      if (takeHeaderSnapshot(child.pid!, layout, target.libc, 4, spent) === undefined) expect(spent.copies).toBe(3);
      expect(target.doctor({ attempts: 4 }).snapshot.attempts).toBeLessThanOrEqual(4);
    }
  });
});
