// heapscope doctor --pid and attach(pid).doctor() on programs nobody here
// wrote: Debian's python3 allocating a pattern through ctypes, and a C
// program whose threads fragment arenas of their own and whose main thread
// raises the mmap threshold, and one whose mmapped chunk shares its map
// line with a page below it. Each prints its own mallinfo2(), which the
// diagnosis must equal field for field; the C program trims itself on
// request, and the prediction must equal what it gave back.
import { ChildProcess, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtures, NO_PYTHON, PYTHON, startTarget } from '../helpers/target';
import { attach, DOCTOR_THRESHOLDS } from '../../lib/index';
import { TOTALLED_FIELDS } from '../../lib/allocator/totals';
import { openPagemap } from '../../lib/doctor/residency';
import { MAX_SEARCHED_PAGES } from '../../lib/doctor/mmapped';
import { STATM_SLACK } from '../helpers/statm';
import { shortBytes } from '../../lib/format';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { SYNC_CHILD } from '../helpers/sync-child';
import { MMAPPED_TAIL } from '../helpers/glibc-here';

// The heaps read are other processes': this process's own room does not matter.
heapRoomNotNeeded();

const fixtures = path.join(__dirname, '..', 'fixtures');
const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-doctor-'));
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const PAGE = 4096;
const children: ChildProcess[] = [];
let programs: Record<string, string> = {};
let noCompiler: string | undefined;

beforeAll(() => {
  ({ programs, noCompiler } = buildFixtures(dir, ['doctor-threads', 'doctor-merged-chunk', 'doctor-many-regions']));
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const start = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env) => startTarget(command, args, { env, into: children });

/** test/fixtures/doctor-merged-chunk.c started with `args`: it, its own mallinfo2(), and where its two chunks are. */
async function mergedChunk(args: string[]) {
  const { child, next } = start(programs['doctor-merged-chunk'], args);
  const lines = await next(3);
  return {
    child,
    mallinfo: JSON.parse(lines[1]) as Record<string, number>,
    chunks: JSON.parse(lines[2]) as { merged: string; alone: string; refused?: boolean },
  };
}

function heapscope(args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args], { ...SYNC_CHILD, encoding: 'utf8' });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

interface JsonDoctor {
  totals: Record<string, number>;
  arenas: { kind: string; systemMem: number; inUse: number; free: number; bins: Record<string, number>; top: number; trim: { resident: number } }[];
  mmapped: { found: number; bytes: number; nMmaps: number; mmappedMem: number };
  rss: { total: number; rows: { kind: string; rss: number }[] };
  trim: { resident: number; bytes: number; ranges: { start: string; end: string; resident: number }[] };
  params: { mmapThreshold: number; raised: boolean; initial?: { mmapThreshold: number }; largeInHeap: { bytes: number } };
  advice: { rule: string; text: string }[];
  snapshot: { consistent: boolean };
}

describe('doctor --pid on quiet processes: its totals are their own mallinfo2()', () => {
  it("Debian's python3, allocating a pattern through ctypes: in use = uordblks, free = fordblks, field for field", async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { child, next } = start(PYTHON, [path.join(fixtures, 'attach-target.py')], { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' });
    const mallinfo = JSON.parse((await next(2))[1]) as Record<string, number>;
    const { code, stdout, stderr } = heapscope(['doctor', '--pid', String(child.pid), '--json']);
    expect(code, stderr).toBe(0);
    const d = JSON.parse(stdout) as JsonDoctor;
    expect(d.snapshot.consistent).toBe(true);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    const sum = (f: (a: JsonDoctor['arenas'][number]) => number) => d.arenas.reduce((n, a) => n + f(a), 0);
    expect(sum((a) => a.inUse)).toBe(mallinfo.uordblks);
    expect(sum((a) => a.free)).toBe(mallinfo.fordblks);
    expect(sum((a) => a.systemMem)).toBe(mallinfo.arena);
    expect(sum((a) => a.bins.fast)).toBe(mallinfo.fsmblks);
    expect(sum((a) => a.top + a.bins.fast + a.bins.unsorted + a.bins.small + a.bins.large)).toBe(mallinfo.fordblks);
    expect(d.arenas.find((a) => a.kind === 'main')!.top).toBe(mallinfo.keepcost);
    expect([d.mmapped.nMmaps, d.mmapped.mmappedMem]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    // Every mmapped chunk is found, though pymalloc's arenas, mapped as glibc maps a chunk, merge with them into map lines they do not start.
    expect([d.mmapped.found, d.mmapped.bytes]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    // The rows of the resident table add up to the smaps total.
    expect(d.rss.rows.reduce((n, r) => n + r.rss, 0)).toBe(d.rss.total);
    const text = heapscope(['doctor', '--pid', String(child.pid)]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`Doctor: process ${child.pid}`);
    const said = text.stdout.replace(/\s+/g, ' ');
    expect(said).toContain(`uordblks ${mallinfo.uordblks}, fordblks ${mallinfo.fordblks}`);
    // Counts of one read as one: python3 has main_arena alone.
    expect(d.arenas).toHaveLength(1);
    expect(said).toContain(' 1 arena holds ');
    expect(said).not.toMatch(/\b1 mmapped chunk \([^)]*\) were |\bthe one mmapped chunk [^;]* of them\b/i);
    // And it runs one thread: the summaries of the diagnosis and of a snapshot count them in the singular too.
    expect(said).toContain('; 1 thread.');
    const target = attach(child.pid!);
    expect(inspect(target.doctor())).toMatch(/ resident, 1 arena, /);
    const snapshot = target.heapSnapshot();
    expect(inspect(snapshot)).toMatch(/: 1 arena, /);
    expect(snapshot.toMarkdown().replace(/\s+/g, ' ')).toMatch(/; 1 thread\. 1 arena: /);
  });

  it("Debian's python3 holding its objects in pymalloc's arenas: most of its memory is not glibc malloc's, and a finding says so with the table's figures", async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    // 1.5 million nested one-item tuples: pymalloc's objects, in arenas it maps itself; no large list for glibc to map.
    const script = 'import os\na = None\nfor _ in range(1500000): a = (a,)\nos.write(1, b"%d\\n" % os.getpid())\nos.read(0, 1)\n';
    const { child, next } = start(PYTHON, ['-c', script], { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' });
    await next(1);
    const d = attach(child.pid!).doctor();
    const row = (kind: string) => d.rss.rows.filter((r) => r.kind === kind).reduce((n, r) => n + r.rss, 0);
    const other = row('other-anonymous');
    const held = row('main-heap') + row('arena-heaps') + d.mmapped.resident;
    expect(other).toBeGreaterThanOrEqual(DOCTOR_THRESHOLDS.otherShare * d.rss.total);
    expect([d.mmapped.found, d.mmapped.bytes]).toEqual([d.mmapped.nMmaps, d.mmapped.mmappedMem]);
    const pct = (n: number) => `${Math.round((n / d.rss.total) * 100)} %`;
    expect(d.findings).toContain(`Most of the resident memory is not glibc malloc's: ${shortBytes(other)} (${pct(other)}) is other anonymous memory, ` +
      `neither an arena's heap nor a chunk glibc mapped on its own, against ${shortBytes(held)} (${pct(held)}) in the arenas' heaps and mmapped chunks: ` +
      'malloc_trim(0), MALLOC_ARENA_MAX and the mmap threshold act on those only.');
  });

  it('a C program with four fragmented thread arenas and a risen mmap threshold: its mallinfo2, the advice, and the trim it then makes', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child, next } = start(programs['doctor-threads'], []);
    const mallinfo = JSON.parse((await next(2))[1]) as Record<string, number>;
    const target = attach(child.pid!);
    const d = target.doctor();
    expect(d.snapshot.consistent).toBe(true);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    expect(d.arenas.map((a) => a.kind)).toEqual(['main', 'thread', 'thread', 'thread', 'thread']);
    // Its memory is the arenas': no finding says otherwise.
    expect(d.rss.rows.find((r) => r.kind === 'other-anonymous')?.rss ?? 0).toBeLessThan(DOCTOR_THRESHOLDS.otherShare * d.rss.total);
    expect(d.findings.filter((f) => f.startsWith('Most of the resident memory'))).toEqual([]);
    // Each thread kept one 4000-byte block in ten: nine in ten free, between live ones.
    for (const a of d.arenas.filter((x) => x.kind === 'thread')) expect(a.fragmentation).toBeGreaterThan(0.8);
    const threads = d.arenas.filter((a) => a.kind === 'thread');
    const free = threads.reduce((n, a) => n + a.free, 0);
    expect(free).toBeGreaterThan(DOCTOR_THRESHOLDS.arenaFree);
    expect(d.advice.map((a) => a.rule)).toContain('arena-max');
    expect(d.advice.find((a) => a.rule === 'arena-max')!.text).toMatch(/^4 thread arenas hold \d+(\.\d)? MiB free .*MALLOC_ARENA_MAX=2/);
    // The 31 MiB block freed raised the threshold to its chunk's size (from 2.43 16 bytes short of its mapping); the forty
    // 1 MiB blocks then came from [heap].
    expect(d.params.raised).toBe(true);
    expect(d.params.mmapThreshold).toBe((31 << 20) + PAGE - MMAPPED_TAIL);
    expect(d.params.initial!.mmapThreshold).toBe(128 * 1024);
    expect(d.params.largeInHeap.count).toBe(40);
    expect(d.findings).toEqual(expect.arrayContaining([expect.stringMatching(/ 40 in-use blocks of 40\.\d MiB in the arenas are at least the initial 128 KiB, the size from which malloc maps a chunk on its own when the top chunk cannot serve it\.$/)]));
    expect(d.advice.find((a) => a.rule === 'mmap-threshold')!.text).toContain('MALLOC_MMAP_THRESHOLD_=131072');
    expect(mallinfo.hblks).toBe(0);

    // Every page it would release lies wholly inside a free chunk, in the thread arenas; the blocks were written, so they are resident.
    expect(d.trim.resident).toBeGreaterThan(30 << 20);
    // Right before the trim, the ranges are read again: the snapshot's copy may have made pages resident the prediction did not count.
    const pagemap = openPagemap(child.pid!, PAGE, (e) => e);
    const now = d.trim.ranges.reduce((n, r) => n + pagemap.pages(r.start, r.end).reduce((k, p) => k + p, 0) * PAGE, 0);
    pagemap.close();
    child.stdin!.write('t');
    const trimmed = JSON.parse((await next(3))[2]) as { released: number; before: number; after: number };
    expect(trimmed.released).toBe(1);
    // Nothing else runs in it: the drop is what was resident in the ranges, within what statm can tell (STATM_SLACK).
    expect(Math.abs(trimmed.before - trimmed.after - now)).toBeLessThanOrEqual(STATM_SLACK);
    expect(now).toBeGreaterThanOrEqual(d.trim.resident);
  });

  it('an mmapped chunk that starts no map line (a page mapped right below it merged with it): found by the search past that page', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child, mallinfo, chunks } = await mergedChunk([]);
    expect(chunks.refused).toBeUndefined();
    const target = attach(child.pid!);
    // The fixture made sure the first starts no line: no walk from a line's start reaches it.
    expect(target.maps().some((r) => r.start === BigInt(chunks.merged))).toBe(false);
    const d = target.doctor();
    expect([d.mmapped.nMmaps, d.mmapped.mmappedMem]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    expect(mallinfo.hblks).toBe(2);
    expect(d.mmapped.chunks.map((c) => c.address)).toEqual([BigInt(chunks.merged), BigInt(chunks.alone)].sort((a, b) => (a < b ? -1 : 1)));
    expect(d.mmapped.bytes).toBe(mallinfo.hblkhd);
    expect(d.findings).toContain(`All 2 mmapped chunks that mp_ counts (${shortBytes(mallinfo.hblkhd)}) were found by their headers in anonymous memory; ` +
      `${shortBytes(d.mmapped.resident)} of them is resident.`);
    expect(d.rss.rows.find((r) => r.kind === 'mmapped-chunks')?.count).toBe(2);
  });
});

describe("doctor --pid on an mmapped chunk whose line the map reads as a library's bss", () => {
  it('finds it, and counts it as a chunk, not as library data', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child, mallinfo, chunks } = await mergedChunk(['1', 'elf']);
    expect(chunks.refused).toBeUndefined();
    const target = attach(child.pid!);
    // The first look at the map reads the object's ELF header in the program, which makes that page resident: taken first, so
    // that the diagnosis and the map read after it see the same resident pages.
    target.maps();
    const d = target.doctor();
    const regions = target.maps({ rss: true });
    // The program mapped its own file's first page right below the chunk: the chunk's line reads as that object's bss.
    const line = regions.find((r) => r.start === BigInt(chunks.merged))!;
    expect([line.kind, line.object]).toEqual(['bss', fs.realpathSync(programs['doctor-merged-chunk'])]);
    expect([d.mmapped.nMmaps, d.mmapped.mmappedMem]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    expect(d.mmapped.chunks.map((c) => c.address)).toEqual([BigInt(chunks.merged), BigInt(chunks.alone)].sort((a, b) => (a < b ? -1 : 1)));
    expect(d.findings).toContain(`All 2 mmapped chunks that mp_ counts (${shortBytes(mallinfo.hblkhd)}) were found by their headers in anonymous memory; ` +
      `${shortBytes(d.mmapped.resident)} of them is resident.`);
    // The library-data row is every data, bss and rodata line of the map less the chunk (the paused program's map does not change).
    const chunk = d.mmapped.chunks.find((c) => c.address === BigInt(chunks.merged))!;
    const libraryData = regions.filter((r) => r.kind === 'data' || r.kind === 'bss' || r.kind === 'rodata');
    expect(d.rss.rows.find((r) => r.kind === 'library-data')).toMatchObject({
      count: libraryData.length,
      size: libraryData.reduce((n, r) => n + r.size, 0) - chunk.size,
      rss: libraryData.reduce((n, r) => n + r.rss!, 0) - chunk.resident,
    });
    expect(d.rss.rows.reduce((n, r) => n + r.rss, 0)).toBe(d.rss.total);
  });
});

describe('doctor --pid on a chunk past more than the search reads', () => {
  it('a chunk merged above 1.1 GiB of other memory is not searched for, and the finding says how much was not', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const pages = MAX_SEARCHED_PAGES + 25_000;
    const { child, mallinfo, chunks } = await mergedChunk([String(pages)]);
    if (chunks.refused) skip(`the kernel refused ${pages} pages of private memory right below the chunk`);
    const d = attach(child.pid!).doctor();
    expect(mallinfo.hblks).toBe(2);
    expect(d.mmapped.chunks.map((c) => c.address)).not.toContain(BigInt(chunks.merged));
    expect(d.mmapped.unsearched).toBeGreaterThanOrEqual(pages * PAGE);
    const missing = d.mmapped.nMmaps - d.mmapped.found;
    expect(missing).toBeGreaterThanOrEqual(1);
    expect(d.findings.join('\n')).toContain(`${shortBytes(d.mmapped.unsearched)} of anonymous memory past mappings that are no chunk was not searched ` +
      `(the search reads at most ${MAX_SEARCHED_PAGES} pages), so the resident-memory table counts the ${missing === 1 ? 'other with whichever line holds it' : 'others with whichever lines hold them'}`);
  });
});

describe('doctor --pid on a chunk whose header is not one glibc wrote', () => {
  it('a chunk whose prev_size was overwritten is not taken, and the finding says no page start searched holds its header', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child, mallinfo, chunks } = await mergedChunk(['1', 'corrupt']);
    expect(chunks.refused).toBeUndefined();
    const d = attach(child.pid!).doctor();
    expect([d.mmapped.nMmaps, d.mmapped.mmappedMem]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    // The merged one is found by the search; the other's header says prev_size 1, which sysmalloc never writes.
    expect(d.mmapped.chunks.map((c) => c.address)).toEqual([BigInt(chunks.merged)]);
    expect(d.mmapped.unsearched).toBe(0);
    expect(d.findings).toContain(`1 mmapped chunk (${shortBytes(mallinfo.hblkhd / 2)}) was found by its header in anonymous memory, but mp_ counts 2 (${shortBytes(mallinfo.hblkhd)}): ` +
      'no page start read in the private anonymous memory searched holds its header, so the resident-memory table counts the other with whichever line holds it, which this copy cannot tell.');
  });
});

describe('doctor --pid on a process with more anonymous regions than one native read takes', () => {
  it('1100 of them: every header is read (in calls of 1024), and its mmapped chunk found, written whole', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child, next } = start(programs['doctor-many-regions'], []);
    const lines = await next(3);
    const mallinfo = JSON.parse(lines[1]) as Record<string, number>;
    const { chunk } = JSON.parse(lines[2]) as { chunk: string };
    const target = attach(child.pid!);
    expect(target.maps().filter((r) => r.kind === 'anonymous' && r.perms === 'rw-p').length).toBeGreaterThan(1100);
    const d = target.doctor();
    expect([d.mmapped.nMmaps, d.mmapped.mmappedMem]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    const found = d.mmapped.chunks.find((c) => c.address === BigInt(chunk));
    expect(found).toBeDefined();
    expect(found!.resident).toBe(found!.size);
    const text = heapscope(['doctor', '--pid', String(child.pid)]);
    expect(text.code, text.stderr).toBe(0);
  });
});

describe('doctor --pid refuses what it cannot read, with the codes attach uses', () => {
  it('a pid that does not exist: ERR_PROCESS_EXITED, exit 1', () => {
    const { code, stderr } = heapscope(['doctor', '--pid', '4194304']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^heapscope: ERR_PROCESS_EXITED: process 4194304 does not exist/);
  });

  it('a process with jemalloc preloaded: ERR_NOT_GLIBC_MALLOC', async ({ skip }) => {
    if (!fs.existsSync(JEMALLOC)) skip(`no ${JEMALLOC} (Debian: apt-get install libjemalloc2)`);
    const { child, next } = start(process.execPath, ['-e', 'console.log(process.pid); setInterval(() => {}, 1000)'], { ...process.env, LD_PRELOAD: JEMALLOC });
    await next(1);
    const { code, stderr } = heapscope(['doctor', '--pid', String(child.pid)]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/ERR_NOT_GLIBC_MALLOC: .*jemalloc/);
  });

  it('another user: ERR_PERMISSION', async ({ skip }) => {
    if (process.getuid?.() !== 0) skip('only root can drop to another user in a child; run the tests as root to try this path');
    const { child, next } = start(process.execPath, ['-e', 'console.log(process.pid); setInterval(() => {}, 1000)']);
    await next(1);
    const run = spawnSync(process.execPath, [CLI, 'doctor', '--pid', String(child.pid)], { ...SYNC_CHILD, encoding: 'utf8', uid: 65534, gid: 65534 });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/ERR_PERMISSION/);
  });

  it('--pid with --trim is bad usage: another process cannot be trimmed from here', () => {
    const { code, stderr } = heapscope(['doctor', '--pid', '1', '--trim']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--pid and --trim exclude each other/);
  });
});
