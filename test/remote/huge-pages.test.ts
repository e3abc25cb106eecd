// attach(pid) of a process under glibc.malloc.hugetlb=2 (2.35 on), on this
// machine's glibc and each fetched release that has the tunable: glibc
// then maps all of main_arena's memory (ptmalloc_init makes its sbrk fail
// on purpose), and its chunks and heaps of huge pages where the system has
// them free, from lines the map names /anon_hugepage. Each release runs
// twice: with the huge pages the machine has free (usually none: glibc
// falls back to ordinary pages, and the arenas are mapped all the same),
// then with huge pages this file reserves for the run and gives back after;
// and this process's own doctor, in a quiet child with two worker threads.
import { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { attach } from '../../lib/index';
import { layoutFor } from '../../lib/allocator/layouts';
import { TOTALLED_FIELDS } from '../../lib/allocator/totals';
import { shortBytes } from '../../lib/format';
import { glibcVersion } from '../../lib/stats';
import { ccFlagsFor, notFetched, OTHER_GLIBCS } from '../helpers/glibcs';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { inQuietChild } from '../helpers/quiet-child';
import { buildFixtures, startTarget } from '../helpers/target';

// The heaps read are other processes': this process's own room does not matter.
heapRoomNotNeeded();

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-huge-pages-'));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A field of /proc/meminfo or /proc/PID/status in bytes (the kernel prints kB), or a count where it prints no unit. */
function procField(file: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+)( kB)?$`, 'm').exec(fs.readFileSync(file, 'utf8'));
  if (match === null) throw new Error(`${file} has no ${key}`);
  return Number(match[1]) * (match[2] === undefined ? 1 : 1024);
}

/** The system's default huge page size: what glibc.malloc.hugetlb=2 sets mp_.hp_pagesize to. */
const HUGE_PAGE = procField('/proc/meminfo', 'Hugepagesize');
const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages';
/**
 * Huge pages reserved for a target. glibc maps a thread heap twice its
 * heap_max_size first, of huge pages reserved at the mmap, and gives back
 * what lies off the boundary: 8 pages a heap for a moment, 4 kept, to 2.41;
 * 64 and 32 from 2.42 (64 MiB heaps), where 160 hold some of the six heaps
 * (the rest fall back to ordinary pages); and main_arena's 1 to 2, the
 * 4 MiB chunk's 3.
 */
const reservedFor = (glibc: string) => (layoutFor(glibc).heapMax === 'four-huge-pages' ? 48 : 160);

/** This machine's glibc, and each fetched release with glibc.malloc.hugetlb (mp_.hp_pagesize, 2.35 on). */
const RELEASES = [
  { name: 'this machine', glibc: glibcVersion(), flags: [] as string[], cannot: undefined as string | undefined },
  ...OTHER_GLIBCS.filter((g) => g.glibc !== glibcVersion()).map((g) => ({
    name: g.name, glibc: g.glibc, cannot: notFetched(g), flags: g.root === undefined ? [] : ccFlagsFor(g),
  })),
].filter((r) => hasHugePages(r.glibc));

function hasHugePages(version: string): boolean {
  try {
    return layoutFor(version).mallocPar.fields.some((f) => f.name === 'hp_pagesize');
  } catch {
    return false;
  }
}

/** test/fixtures/huge-pages.c started under glibc.malloc.hugetlb=2: its pid and its own mallinfo2(), or why it cannot be. */
async function start(release: (typeof RELEASES)[number], into: string): Promise<{ pid: number; mallinfo: Record<string, number> } | string> {
  if (release.cannot !== undefined) return release.cannot;
  const { programs, noCompiler } = buildFixtures(fs.mkdtempSync(path.join(dir, into)), ['huge-pages'], { flags: release.flags });
  if (noCompiler !== undefined) return noCompiler;
  const { child, next } = startTarget(programs['huge-pages'], [], { into: children, env: { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=2' } });
  const [, mallinfo] = await next(2);
  return { pid: child.pid!, mallinfo: JSON.parse(mallinfo) as Record<string, number> };
}

/**
 * Everything the doctor and the walk say of `pid` that hugetlb=2 changes,
 * against the target's own mallinfo2(); whether any of its memory is of huge
 * pages, and then that the resident memory counts them as the kernel does.
 */
function checkDiagnosis(pid: number, mallinfo: Record<string, number>, glibc: string): { huge: boolean } {
  const layout = layoutFor(glibc);
  const target = attach(pid);
  const d = target.doctor();
  expect(d.snapshot.consistent).toBe(true);
  expect(d.incomplete).toEqual([]);
  expect(d.arenas.map((a) => a.kind)).toEqual(['main', ...Array(6).fill('thread')]);
  // The target stands still: one retake, which copies main_arena's mapped memory and every heap the map does not show as
  // one (found one a retake, they took seven).
  expect(d.snapshot.attempts).toBeLessThanOrEqual(2);
  for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
  // The 4 MiB block, mapped on its own, is found by its header (of huge pages or not).
  expect({ found: d.mmapped.found, bytes: d.mmapped.bytes }).toEqual({ found: 1, bytes: mallinfo.hblkhd });
  // From 2.39 glibc also sets mmap_threshold to the huge page size.
  expect(d.params.hugePages).toEqual({ pageSize: HUGE_PAGE, mainArenaMapped: true, threshold: layout.hugePagesThreshold });
  if (layout.hugePagesThreshold) expect(d.params.mmapThreshold).toBe(HUGE_PAGE);
  const said = d.findings.filter((f) => f.startsWith('main_arena is not contiguous'));
  expect(said).toEqual([expect.stringContaining(`(its NONCONTIGUOUS_BIT is set: mp_.hp_pagesize is ${shortBytes(HUGE_PAGE)} (set by glibc.malloc.hugetlb), with which ptmalloc_init makes main_arena's sbrk fail on purpose`)]);
  // Each thread arena's heap, all heap_max_size glibc reserved for it (four huge pages to 2.41), is counted as that arena's, line by line.
  const heapMax = layout.heapMax === 'four-huge-pages' ? 4 * HUGE_PAGE : 64 << 20;
  const threads = d.arenas.filter((a) => a.kind === 'thread').map((a) => a.arena);
  // A line the kernel merged across a heap's bounds (its read-write part with main_arena's mapped memory right below it, in
  // 4 of 72 targets here before lines were split) is split there; the rows still add up to the whole.
  expect(d.rss.rows.filter((r) => r.kind === 'arena-heaps').map((r) => ({ arena: r.arena, size: r.size }))).toEqual(threads.map((arena) => ({ arena, size: heapMax })));
  expect(d.rss.rows.reduce((n, r) => n + r.rss, 0)).toBe(d.rss.total);
  // The walk has no [heap] and says why; of main_arena it walks the top, and each thread's heap whole (of huge pages,
  // two map lines: the kernel does not merge them as glibc makes more of the heap writable).
  const w = target.walk();
  expect(w.main.reason).toBe(`this process has no [heap] region: main_arena is non-contiguous: mp_.hp_pagesize is ${HUGE_PAGE} (set by glibc.malloc.hugetlb), ` +
    "so glibc took main_arena's memory with mmap without asking sbrk (its top is walked as main_arena's top region, when copied)");
  expect(w.mainTop?.chunks.map((c) => [c.place, c.size])).toEqual([['top', mallinfo.keepcost]]);
  expect(w.threadHeaps.map((h) => ({ arena: h.arena, complete: h.complete, top: h.chunks.at(-1)?.place }))).toEqual(threads.map((arena) => ({ arena, complete: true, top: 'top' })));
  // Memory of huge pages is anonymous memory, never a file's, and resident as the kernel counts it (smaps' Rss leaves it out).
  const regions = target.maps({ rss: true });
  const huge = regions.filter((r) => r.path === '/anon_hugepage');
  for (const r of huge) expect({ start: r.start, kind: r.kind }).toEqual({ start: r.start, kind: r.perms === '---p' ? 'reserved' : 'anonymous' });
  expect(huge.reduce((n, r) => n + r.rss!, 0)).toBe(procField(`/proc/${pid}/status`, 'HugetlbPages'));
  return { huge: huge.length > 0 };
}

/** `reserved` more huge pages for the machine while `run` runs, or why there cannot be. */
async function withHugePages(reserved: number, run: () => Promise<void>): Promise<string | undefined> {
  let before: number;
  try {
    before = Number(fs.readFileSync(NR_HUGEPAGES, 'utf8'));
    fs.writeFileSync(NR_HUGEPAGES, String(before + reserved));
  } catch (error) {
    return `huge pages cannot be reserved here (${NR_HUGEPAGES}: ${(error as NodeJS.ErrnoException).code}): that takes root`;
  }
  try {
    // The kernel gives what it can find at once and more on a later write, once it has compacted memory (it gave 10 of 24 here once).
    for (let tries = 1; tries < 4 && procField('/proc/meminfo', 'HugePages_Total') < before + reserved; tries++) fs.writeFileSync(NR_HUGEPAGES, String(before + reserved));
    const free = procField('/proc/meminfo', 'HugePages_Free');
    if (free < reserved) return `the kernel found ${free} free huge pages of the ${reserved} asked for (memory too fragmented or too short)`;
    await run();
    return undefined;
  } finally {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    fs.writeFileSync(NR_HUGEPAGES, String(before));
  }
}

for (const release of RELEASES) describe(`a process on glibc ${release.glibc} (${release.name}) under glibc.malloc.hugetlb=2`, () => {
  it('is diagnosed whole with the huge pages the machine has free: main_arena mapped, each thread heap its arena\'s, its totals its own', async ({ skip }) => {
    const started = await start(release, 'free-');
    if (typeof started === 'string') return skip(started);
    checkDiagnosis(started.pid, started.mallinfo, release.glibc);
  });

  it('is diagnosed whole with huge pages reserved for it: its memory of huge pages, its thread heaps\' too, is anonymous and counted resident', async ({ skip }) => {
    if (release.cannot !== undefined) return skip(release.cannot);
    const cannot = await withHugePages(reservedFor(release.glibc), async () => {
      const started = await start(release, 'reserved-');
      if (typeof started === 'string') return skip(started);
      const { huge } = checkDiagnosis(started.pid, started.mallinfo, release.glibc);
      expect(huge).toBe(true);
      const d = attach(started.pid).doctor();
      // The block's one page written is one huge page resident, as pagemap shows it.
      expect(d.mmapped.resident).toBe(HUGE_PAGE);
      // Thread heaps of huge pages (their heap_info where the reservation begins), where the pool held them.
      const heapMax = layoutFor(release.glibc).heapMax === 'four-huge-pages' ? BigInt(4 * HUGE_PAGE) : 64n << 20n;
      const starts = d.arenas.filter((a) => a.kind === 'thread').map((a) => a.arena & ~(heapMax - 1n));
      const lines = attach(started.pid).maps();
      expect(starts.filter((start) => lines.find((r) => r.start === start)?.path === '/anon_hugepage').length).toBeGreaterThan(0);
    });
    if (cannot !== undefined) skip(cannot);
  });
});

describe('this process under glibc.malloc.hugetlb=2', () => {
  it('is diagnosed whole with two worker threads in arenas of their own: its totals its own mallinfo2()', () => {
    // Each worker takes 4 MB in its own arena's heap, then waits: past one huge page, where the pool has them.
    const out = inQuietChild<{ consistent: boolean; incomplete: string[]; kinds: string[]; hugePages: unknown; totals: Record<string, string>; mallinfo: Record<string, string> }>(`
      const { Worker } = require('node:worker_threads');
      const shared = new Int32Array(new SharedArrayBuffer(8));
      const workers = [0, 1].map(() => new Worker(\`
        const { workerData } = require('node:worker_threads');
        const keep = [];
        for (let i = 0; i < 40; i++) keep.push(Buffer.alloc(100000, 1));
        Atomics.add(workerData, 0, 1);
        Atomics.notify(workerData, 0);
        Atomics.wait(workerData, 1, 0);
      \`, { eval: true, workerData: shared }));
      while (Atomics.load(shared, 0) < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      const d = h.doctor();
      Atomics.store(shared, 1, 1);
      Atomics.notify(shared, 1);
      await Promise.all(workers.map((w) => new Promise((resolve) => w.on('exit', resolve))));
      return { consistent: d.snapshot.consistent, incomplete: d.incomplete, kinds: d.arenas.map((a) => a.kind), hugePages: d.params.hugePages, totals: d.totals, mallinfo: d.mallinfo };
    `, { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=2' });
    expect({ consistent: out.consistent, incomplete: out.incomplete }).toEqual({ consistent: true, incomplete: [] });
    expect(out.kinds.filter((k) => k === 'thread').length).toBeGreaterThanOrEqual(2);
    expect(out.hugePages).toEqual({ pageSize: HUGE_PAGE, mainArenaMapped: true, threshold: layoutFor(glibcVersion()).hugePagesThreshold });
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: out.totals[f] }).toEqual({ field: f, value: out.mallinfo[f] });
  });

  it('predicts what malloc_trim(0) gives back with huge pages reserved: none of the free pages in huge pages, which the kernel keeps', async ({ skip }) => {
    // 200 blocks of 60000 bytes, every other one freed: free chunks with whole 4 KiB pages, in main_arena's huge pages.
    const cannot = await withHugePages(32, async () => {
      const out = inQuietChild<{ kept: number | undefined; huge: number; trimmed: { predicted: number; stillResident: number; hugePagesKept?: { before: number; after: number } } }>(`
        const steps = [];
        for (let i = 0; i < 200; i++) steps.push({ op: 'malloc', size: 60000 }, { op: 'touch', step: 2 * i });
        const { kept } = h.runPlan(steps, { keep: true });
        let i = 0;
        for (const a of kept.values()) if (i++ % 2 === 0) a.free();
        const d = h.doctor({ trim: true });
        const huge = h.maps().filter((r) => r.path === '/anon_hugepage').length;
        for (const a of kept.values()) if (!a.freed) a.free();
        return { kept: d.trim.hugePagesKept?.resident, huge, trimmed: d.trimmed };
      `, { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=2' });
      expect(out.huge).toBeGreaterThan(0);
      expect(out.kept).toBeGreaterThan(0);
      // What is predicted goes; what is left out stays, both counted by pagemap in the call that trimmed.
      expect(out.trimmed.stillResident).toBe(0);
      const kept = out.trimmed.hugePagesKept!;
      expect(kept.before).toBeGreaterThan(0);
      expect(kept.after).toBe(kept.before);
    });
    if (cannot !== undefined) skip(cannot);
  });
});
