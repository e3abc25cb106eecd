// attach(pid) to programs whose allocator memory the map does not name:
// one whose break cannot grow (test/fixtures/attach-blocked.c), so glibc
// grows its main_arena with mmap and the top lies in memory no map line
// names as heap; and one whose thread-arena heap shares its map line with
// the mapping right below it (attach-merged.c). The copy that misses such
// memory is torn, and the retake copies where the decode led: the top, or
// the heap from its aligned start.
import { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach, diffHeapSnapshots, readHeapSnapshot } from '../../lib/index';
import { toJSON } from '../../lib/json';
import { shortBytes } from '../../lib/format';
import { TOTALLED_FIELDS } from '../../lib/allocator/totals';
import { layoutFor } from '../../lib/allocator/layouts';
import { takeHeaderSnapshot } from '../../lib/remote/header-snapshot';
import { buildFixtures, startLines, startTarget } from '../helpers/target';
import { procMaps } from '../helpers/proc-maps';
import { TCACHE_AT_FIRST_FREE } from '../helpers/glibc-here';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Other processes are read, none of this one's heap.
heapRoomNotNeeded();

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-blocked-'));
const program = path.join(dir, 'attach-blocked');
const merged = path.join(dir, 'attach-merged');
let noCompiler: string | undefined;
const children: ChildProcess[] = [];

beforeAll(() => {
  ({ noCompiler } = buildFixtures(dir, ['attach-blocked', 'attach-merged']));
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

async function started(command = program, args: string[] = []): Promise<{ pid: number; mallinfo: Record<string, number> }> {
  const { lines } = await startLines(command, args, 2, { into: children });
  return { pid: Number(lines[0]), mallinfo: JSON.parse(lines[1]) as Record<string, number> };
}

describe('attach(pid) to a process whose main_arena is not contiguous', () => {
  it('copies the region holding the top on a retake, and decodes the top the program itself reports', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid, mallinfo } = await started();
    const target = attach(pid);
    expect(target.maps().some((r) => r.kind === 'heap')).toBe(false);
    const s = target.snapshot();
    expect(s.consistent).toBe(true);
    // The first copy could not read the top.
    expect(s.attempts).toBeGreaterThanOrEqual(2);
    const main = target.arenas(s).arenas.find((a) => a.kind === 'main')!;
    expect(main.noncontiguous).toBe(true);
    expect(Number(main.top.size)).toBe(mallinfo.keepcost);
    expect(s.image.memory.ranges.map((r) => r.label)).toContain("main_arena's memory outside [heap]");
  });

  it('has doctor say that all of main_arena lies outside [heap], where the resident-memory table cannot tell it from other anonymous memory', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid, mallinfo } = await started();
    const d = attach(pid).doctor();
    // No [heap] at all: the break could not grow from the first malloc on. The program's only arena is main_arena.
    expect(d.rss.rows.some((r) => r.kind === 'main-heap')).toBe(false);
    expect(d.arenas.map((a) => a.kind)).toEqual(['main']);
    const [main] = d.arenas;
    expect(main.systemMem).toBe(mallinfo.arena);
    expect(main.top).toBe(mallinfo.keepcost);
    expect(main.outsideHeap?.bytes).toBe(mallinfo.arena);
    const top = main.outsideHeap!.top!;
    expect(d.findings[0]).toMatch(/ of it is \[heap\] and /);
    expect(d.findings[1]).toBe(`main_arena is not contiguous (its NONCONTIGUOUS_BIT is set: sbrk failed and glibc took memory with mmap): it holds ${shortBytes(mallinfo.arena)} ` +
      `from the system (system_mem) and [heap] is not mapped, so at least ${shortBytes(mallinfo.arena)} of it, its top chunk (${shortBytes(mallinfo.keepcost)} at 0x${top.toString(16)}) among them, ` +
      'lies in anonymous memory that glibc lists nowhere: the resident-memory table counts that with other anonymous memory, not with the arenas.');
    // The top chunk: where the program's own main_arena says, in a private anonymous line.
    const line = attach(pid).maps().find((r) => r.start <= top && top < r.end)!;
    expect([line.kind, line.perms]).toEqual(['anonymous', 'rw-p']);
    expect(d.toMarkdown()).toContain(`main_arena's rss counts [heap] only: at least ${shortBytes(mallinfo.arena)} of its memory lies outside it`);
    // A snapshot file keeps it, and says so; a file without it (written before it was kept) still reads.
    const file = toJSON(attach(pid).heapSnapshot());
    const snapshot = readHeapSnapshot(file);
    expect(snapshot.arenas[0].outsideHeap).toBe(mallinfo.arena);
    expect(snapshot.toMarkdown()).toContain(`main_arena's rss counts [heap] only: at least ${shortBytes(mallinfo.arena)} of its memory lies outside it`);
    const older = JSON.parse(file) as { arenas: Record<string, unknown>[] };
    delete older.arenas[0].outsideHeap;
    const read = readHeapSnapshot(JSON.stringify(older));
    expect(Object.hasOwn(read.arenas[0], 'outsideHeap')).toBe(false);
    // A diff against such a file shows the figure on the side that has it, and none on the other.
    const diff = diffHeapSnapshots(read, snapshot);
    expect(diff.arenas[0].outsideHeap).toEqual({ a: null, b: mallinfo.arena });
    expect(diff.toMarkdown()).toContain(`| memory outside [heap] | – | ${shortBytes(mallinfo.arena)} | – |`);
    expect(diff.toMarkdown()).toContain('– where a file has no such figure');
  });
});

describe('attach(pid) to a process with no [heap] whose main_arena took 20 MB in many mappings', () => {
  it("finds mp_ though sbrk_base lies above the top, and doctor says most of the resident memory is main_arena's outside [heap]", async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid, mallinfo } = await started(program, ['big']);
    const target = attach(pid);
    const s = target.snapshot();
    expect(s.consistent).toBe(true);
    const main = target.arenas(s).arenas.find((a) => a.kind === 'main')!;
    // The kernel mapped the later pieces below the first: mp_'s sbrk_base, the first, is above the top.
    const params = target.mallocParams(s);
    expect(params.values.sbrkBase).toBeGreaterThan(main.top.address);
    // The walk has no [heap] to walk, says why, and walks the top where the copy holds it.
    const w = target.walk({ snapshot: s });
    expect(w.main.reason).toBe("this process has no [heap] region: main_arena is non-contiguous: brk() failed and glibc took main_arena's memory with mmap " +
      "(its top is walked as main_arena's top region, when copied)");
    expect(w.mainTop?.chunks.map((c) => [c.place, c.size])).toEqual([['top', mallinfo.keepcost]]);
    const d = target.doctor(s);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    expect(d.arenas[0].outsideHeap?.bytes).toBe(mallinfo.arena);
    // Against a snapshot of the program that took one mapping: main_arena's memory outside [heap], each as its program measured it.
    const small = await started();
    const diff = diffHeapSnapshots(attach(small.pid).heapSnapshot(), target.heapSnapshot());
    expect(diff.arenas[0].outsideHeap).toEqual({ a: small.mallinfo.arena, b: mallinfo.arena });
    expect(diff.toMarkdown()).toContain(`| memory outside [heap] | ${shortBytes(small.mallinfo.arena)} | ${shortBytes(mallinfo.arena)} | +${shortBytes(mallinfo.arena - small.mallinfo.arena)} |`);
    const other = d.rss.rows.find((r) => r.kind === 'other-anonymous')!.rss;
    const pct = (n: number) => `${Math.round((n / d.rss.total) * 100)} %`;
    expect(other).toBeGreaterThanOrEqual(0.5 * d.rss.total);
    expect(d.findings).toContain(`Most of the resident memory, ${shortBytes(other)} (${pct(other)}), is other anonymous memory, which holds main_arena's memory outside [heap] ` +
      `(at least ${shortBytes(mallinfo.arena)} mapped, above), against 0 B (0 %) in [heap], the thread arenas' heaps and mmapped chunks: ` +
      "malloc_trim(0), MALLOC_ARENA_MAX and the mmap threshold act on malloc's memory only.");
  });
});

/** [heap] as the kernel maps it: read here, not through heapscope. */
function heapLine(pid: number): { start: bigint; end: bigint } {
  return procMaps(pid).find((r) => r.path === '[heap]')!;
}

/** The program's own third line: where its own 4 MiB start, the break it left, and what mincore() finds resident of them. */
interface Own { own: number; break: number; resident: number }

/** attach-blocked in a mode that takes 4 MiB of the break itself: its pid, its mallinfo2() and its own line. */
async function startedOwn(mode: 'sbrk' | 'between' | 'early'): Promise<{ pid: number; mallinfo: Record<string, number>; own: Own }> {
  const { lines } = await startLines(program, [mode], 3, { into: children });
  return { pid: Number(lines[0]), mallinfo: JSON.parse(lines[1]) as Record<string, number>, own: JSON.parse(lines[2]) as Own };
}

describe('attach(pid) to a process that moved the break itself, then could not grow it', () => {
  it("has doctor count main_arena's memory outside [heap] without the program's own 4 MiB, and say what [heap] holds that main_arena never took", async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid, mallinfo, own } = await startedOwn('sbrk');
    const heap = heapLine(pid);
    expect(BigInt(own.break)).toBe(heap.end);
    const target = attach(pid);
    const s = target.snapshot();
    expect(s.consistent).toBe(true);
    const d = target.doctor(s);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    expect(d.incomplete).toEqual([]);
    const [main] = d.arenas;
    expect(main.top).toBe(mallinfo.keepcost);
    // Its 4 MiB past main_arena's chunks, the first MiB written: as much resident as its own mincore() finds.
    expect(main.foreignSbrk).toEqual({ below: 0, past: 4194304, resident: own.resident });
    expect(own.resident).toBeGreaterThanOrEqual(1 << 20);
    const top = main.outsideHeap!.top!;
    const outside = mallinfo.arena - (Number(heap.end - heap.start) - 4194304);
    expect(main.outsideHeap).toEqual({ bytes: outside, top });
    expect(top < heap.start || top >= heap.end).toBe(true);
    expect(d.findings).toContain(`main_arena is not contiguous (its NONCONTIGUOUS_BIT is set: sbrk failed and glibc took memory with mmap): it holds ${shortBytes(mallinfo.arena)} ` +
      `from the system (system_mem) and [heap] is ${shortBytes(Number(heap.end - heap.start))}, 4 MiB of it never main_arena's (below), so at least ${shortBytes(outside)} of it, ` +
      `its top chunk (${shortBytes(mallinfo.keepcost)} at 0x${top.toString(16)}) among them, lies in anonymous memory that glibc lists nowhere: ` +
      'the resident-memory table counts that with other anonymous memory, not with the arenas.');
    expect(d.findings).toContain(`[heap] holds 4 MiB that main_arena never took, ${shortBytes(own.resident)} of it resident (pagemap): 4 MiB past the double fencepost that ends its chunks, ` +
      "where what follows is no chunk header (glibc's own sbrk would begin with one). Something other than malloc moved the break (sbrk, brk: what glibc calls a foreign sbrk); " +
      "the main heap row and main_arena's rss count those bytes all the same.");
    // Its 16 MiB of its own make most of the RSS other anonymous memory, which holds main_arena's memory outside [heap].
    const other = d.rss.rows.find((r) => r.kind === 'other-anonymous')!.rss;
    expect(other).toBeGreaterThanOrEqual(0.5 * d.rss.total);
    expect(d.findings.find((f) => f.startsWith('Most of the resident memory'))).toMatch(
      new RegExp(`^Most of the resident memory, .*, is other anonymous memory, which holds main_arena's memory outside \\[heap\\] \\(at least ${shortBytes(outside)} mapped, above\\), `),
    );
    // The walk: main_arena's chunks in [heap] end in the double fencepost, and the 4 MiB the program took itself follow.
    const w = target.walk({ snapshot: s });
    const chunks = w.main.chunks;
    expect(chunks.slice(-2).map((c) => [c.size, c.place])).toEqual([[16, 'fencepost'], [16, 'fencepost']]);
    expect(chunks.at(-1)!.address + 16n).toBe(BigInt(own.own));
    expect(w.main.reason).toMatch(/^main_arena's chunks in \[heap\] end in glibc's double fencepost \(0x[0-9a-f]+(, after [^)]*)?\), 4194304 bytes short of the break /);
    // Its tcache lies in [heap] and in the memory mmap gave: every list is followed, none cut off as outside the arenas.
    // From 2.43 glibc makes it at the first free, after the break was blocked: below the top in main_arena's memory
    // from mmap, among the chunks the walk says it cannot reach (above), and none is found.
    const caches = target.tcaches(s);
    expect(caches.undecoded).toEqual([]);
    if (TCACHE_AT_FIRST_FREE) {
      expect(w.main.reason).toMatch(/the chunks carved from that memory before the top are not walked/);
      expect(caches.tcaches).toEqual([]);
      return;
    }
    expect(caches.tcaches.length).toBe(1);
    expect(caches.tcaches[0].bins.filter((b) => b.reason !== undefined)).toEqual([]);
    expect(caches.tcaches[0].complete).toBe(true);
    // It freed every third of 3,000 blocks of 100 to 399 bytes: 7 of each chunk size from 112 to 416 bytes stay cached.
    expect(caches.tcaches[0].bins.reduce((n, b) => n + b.chunks.length, 0)).toBeGreaterThan(100);
  });
});

describe('attach(pid) to a process that moved the break itself between two of glibc\'s sbrks', () => {
  it('stops the walk at the fenceposts and says why: a gap of unknown end lies before main_arena\'s top, which glibc counts in system_mem', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid, mallinfo, own } = await startedOwn('between');
    const heap = heapLine(pid);
    // glibc's own count: system_mem is all of [heap] from its first chunk, the program's 4 MiB included.
    expect(BigInt(mallinfo.arena)).toBeGreaterThan(4194304n);
    const target = attach(pid);
    const s = target.snapshot();
    expect(s.consistent).toBe(true);
    const main = target.arenas(s).arenas.find((a) => a.kind === 'main')!;
    expect(main.noncontiguous).toBe(false);
    const w = target.walk({ snapshot: s });
    expect(w.main.complete).toBe(false);
    // The pair ends where the program's own 4 MiB start; the top lies past them, in [heap].
    expect(w.main.chunks.slice(-2).map((c) => [c.size, c.place])).toEqual([[16, 'fencepost'], [16, 'fencepost']]);
    expect(w.main.chunks.at(-1)!.address + 16n).toBe(BigInt(own.own));
    expect(main.top.address).toBeGreaterThan(BigInt(own.break));
    expect(main.top.address).toBeLessThan(heap.end);
    expect(w.main.reason).toBe(`main_arena's chunks stop at glibc's double fencepost ending at 0x${own.own.toString(16)}, where what follows is no chunk header, ` +
      `yet its top lies further in [heap], at 0x${main.top.address.toString(16)}: something other than malloc moved the break between two of glibc's sbrks ` +
      "(a foreign sbrk, which glibc counts in system_mem), and where main_arena's chunks go on after that gap glibc records nowhere, " +
      `so the ${main.top.address - BigInt(own.own)} bytes up to its top are not walked`);
    // The chunks its bins list past that point: one line, not one each.
    expect(w.problems.filter((p) => p.endsWith('is no chunk of the walk'))).toEqual([]);
    expect(w.problems.filter((p) => p.endsWith(`where the walk of heap 0x${heap.start.toString(16)} stopped (its reason says why)`))).toHaveLength(1);
    // The doctor says the walk is incomplete, and claims no bytes of [heap] as never main_arena's: where the gap ends is not known.
    const d = target.doctor(s);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    expect(d.arenas[0].foreignSbrk).toBeUndefined();
    expect(d.incomplete).toContain(`the walk of heap 0x${heap.start.toString(16)}: ${w.main.reason}`);
    // Its tcache's chunks past the gap are main_arena's all the same (its only arena).
    expect(d.arenas[0].tcache).toBe(target.tcaches(s).tcaches.reduce((n, t) => n + t.bins.reduce((m, b) => m + b.chunks.reduce((k, c) => k + c.size, 0), 0), 0));
    // Its header copy cannot serve (the walk stops there in every copy): a whole copy does, at once, even with one attempt.
    for (const options of [{ attempts: 1 }, {}]) {
      const copy = target.doctor(options).snapshot;
      expect([copy.attempts, copy.consistent]).toEqual([1, true]);
    }
  });
});

describe('attach(pid) to a process whose break grew again after main_arena went non-contiguous', () => {
  it('finds main_arena with its top back in [heap], walks [heap] past the fenceposts to the top, and predicts the top malloc_trim(0) gives back', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const child = startTarget(program, ['resume'], { into: children });
    const [pidLine, info] = await child.next(2);
    const pid = Number(pidLine);
    const mallinfo = JSON.parse(info) as Record<string, number>;
    const heap = heapLine(pid);
    const target = attach(pid);
    const s = target.snapshot();
    expect(s.consistent).toBe(true);
    const main = target.arenas(s).arenas.find((a) => a.kind === 'main')!;
    expect(main.noncontiguous).toBe(true);
    expect(main.top.address + main.top.size!).toBe(heap.end);
    const w = target.walk({ snapshot: s });
    expect(w.main.complete).toBe(true);
    const fences = w.main.chunks.filter((c) => c.place === 'fencepost');
    expect(fences.map((c) => c.size)).toEqual([16, 16]);
    // Not at the end: chunks follow the pair up to the top.
    expect(fences[1].address + 16n).toBeLessThan(main.top.address);
    const d = target.doctor(s);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    expect(d.arenas[0].outsideHeap).toEqual({ bytes: mallinfo.arena - Number(heap.end - heap.start) });
    expect(d.trim.topReason).toBeUndefined();
    const fromTop = d.trim.ranges.filter((r) => r.source === 'top').reduce((n, r) => n + Number(r.end - r.start), 0);
    child.child.stdin!.write('trim\n');
    const [, , trimmed] = await child.next(3);
    expect(fromTop).toBeGreaterThan(0);
    expect(fromTop).toBe((JSON.parse(trimmed) as { released: number }).released);
  });
});

describe('attach(pid) to a process that moved the break itself before malloc\'s first sbrk', () => {
  it('finds mp_ with sbrk_base 4 MiB into [heap], and walks main_arena from there: every total its own mallinfo2()', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid, mallinfo, own } = await startedOwn('early');
    const left = BigInt(own.break);
    const heap = heapLine(pid);
    expect(left - heap.start).toBe(4194304n);
    const target = attach(pid);
    const s = target.snapshot();
    expect(s.consistent).toBe(true);
    const params = target.mallocParams(s);
    expect(params.values.sbrkBase).toBe(left);
    const w = target.walk({ snapshot: s });
    expect(w.main.firstChunk).toBe(left + ((16n - (left % 16n)) % 16n));
    expect(w.main.complete).toBe(true);
    expect(w.problems).toEqual([]);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: w.mallinfoTotals[f] }).toEqual({ field: f, value: mallinfo[f] });
    // The doctor's header copy walks from the same chunk (without it, its walk contradicts itself, and a whole copy serves).
    const headers = takeHeaderSnapshot(pid, layoutFor(target.glibc), target.libc, 1);
    expect(headers?.s.consistent).toBe(true);
    const main = headers!.s.walks!.find((r) => r.kind === 'heap')!;
    expect(main.start + BigInt(main.walk.table.offsets[0])).toBe(w.main.firstChunk);
    const d = target.doctor();
    expect(d.incomplete).toEqual([]);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    expect(d.arenas[0].foreignSbrk).toEqual({ below: 4194304, past: 0, resident: own.resident });
    // Its resident memory counts the program's own: [heap], not the arenas' memory.
    expect(d.findings[0]).toMatch(/ of it is \[heap\] and /);
    expect(d.findings).toContain(`[heap] holds 4 MiB that main_arena never took, ${shortBytes(own.resident)} of it resident (pagemap): ` +
      "4 MiB below its first chunk (mp_.sbrk_base lies that far into [heap]: the break moved before malloc's first sbrk). " +
      "Something other than malloc moved the break (sbrk, brk: what glibc calls a foreign sbrk); the main heap row and main_arena's rss count those bytes all the same.");
  });
});

describe('attach(pid) to a process whose main_arena is not contiguous and whose unsorted bin holds a forged link', () => {
  it('stops retaking once no mapping could add what the list leads to, and says so', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid } = await started(program, ['forge']);
    const s = attach(pid).snapshot();
    expect(s.consistent).toBe(false);
    expect(s.reason).toMatch(/its bins reach 0x500000000000, which the copy missed, and no private anonymous read-write mapping the copy has not read holds it/);
    // Of the ten attempts attach allows: the first copy misses the top, the second the chunks below it, the third
    // finds that the forged link leads nowhere a fourth could copy.
    expect(s.attempts).toBeLessThanOrEqual(3);
  });
});

describe('attach(pid) to a process whose thread-arena heap shares its map line', () => {
  it('copies the heap the arena list leads to on a retake, and every total is the program\'s own mallinfo2()', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid, mallinfo } = await started(merged);
    const target = attach(pid);
    // The kernel merged the heap's read-write part with the page below it: no line reads as an arena heap.
    expect(target.maps().some((r) => r.kind === 'arena-heap')).toBe(false);
    const s = target.snapshot();
    expect(s.consistent).toBe(true);
    expect(s.attempts).toBeGreaterThanOrEqual(2);
    expect(target.arenas(s).arenas.map((a) => a.kind)).toEqual(['main', 'thread']);
    const { total, incomplete } = target.allocatorTotals(s);
    expect(incomplete).toEqual([]);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: total[f] }).toEqual({ field: f, value: mallinfo[f] });
  });
});
