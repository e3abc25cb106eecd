// `heapscope maps|arenas|params|bins --pid` and `heapscope exec`, run as
// the command they are, on programs nobody here wrote or built for it:
// Debian's python3 allocating through ctypes, a threaded C program, a node
// with jemalloc preloaded. The quiet targets print their own mallinfo2(),
// which glibc's int_mallinfo sums from exactly what arenas, bins and params
// print (top chunks, bin lists, system_mem, mp_.n_mmaps and mmapped_mem):
// every field must come out equal.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtures, NO_PYTHON, PYTHON, startLines } from '../helpers/target';
import { procMaps } from '../helpers/proc-maps';
import { TOTALLED_FIELDS } from '../../lib/allocator/totals';
import { glibcVersion } from '../../lib/stats';
import { attach, hex } from '../../lib/index';
import { SYNC_CHILD } from '../helpers/sync-child';
import { foreignEnv } from '../helpers/foreign-env';
import { RELEASE_UNDER_TEST } from '../helpers/glibcs';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Every command runs in a node of its own, against other processes.
heapRoomNotNeeded();

const root = path.join(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const fixtures = path.join(__dirname, '..', 'fixtures');
const target = path.join(fixtures, 'attach-target.py');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-cli-pid-'));
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const children: ChildProcess[] = [];
let programs: Record<string, string> = {};
let noCompiler: string | undefined;

beforeAll(() => {
  ({ programs, noCompiler } = buildFixtures(dir, ['attach-threads', 'attach-busy']));
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function heapscope(args: string[], options: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number; stdin?: number } = {}) {
  const base = { ...process.env };
  for (const name of ['NO_COLOR', 'FORCE_COLOR', 'GLIBC_TUNABLES']) delete base[name];
  const result = spawnSync(process.execPath, [cli, ...args], {
    ...SYNC_CHILD,
    cwd: root, encoding: 'utf8', maxBuffer: 1 << 28, env: { ...base, ...options.env }, uid: options.uid, gid: options.gid,
    stdio: [options.stdin ?? 'pipe', 'pipe', 'pipe'],
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The JSON a command printed, after checking it succeeded and said nothing else. */
function json<T>(args: string[]): T {
  const { code, stdout, stderr } = heapscope(args);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return JSON.parse(stdout) as T;
}

const start = (command: string, args: string[], count: number, env: NodeJS.ProcessEnv = process.env) => startLines(command, args, count, { env, into: children });

/** The python target, in a fixed environment (its fastbin chunks must not be consolidated by what python does at start). */
function python(tunables?: string) {
  return start(PYTHON, [target], 2, { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', ...(tunables === undefined ? {} : { GLIBC_TUNABLES: tunables }) });
}

type Hex = string;
interface JsonChunk { address: Hex; size: number }
interface JsonBin { index: number; count: number; chunks: JsonChunk[] }
interface JsonArenaBins { arena: Hex; kind: string; fastbins: JsonBin[]; unsorted: JsonBin[]; smallbins: JsonBin[]; largebins: JsonBin[]; complete: boolean }
interface JsonBins { arenas: JsonArenaBins[]; snapshot: { attempts: number; consistent: boolean } }
interface JsonArena { address: Hex; kind: string; top: { address: Hex; size: Hex }; systemMem: Hex; mutex: number }
interface JsonArenas { arenas: JsonArena[]; complete: boolean; snapshot: { attempts: number; consistent: boolean } }
interface JsonParams { fields: { name: string; value: Hex | number }[]; globalMaxFast: { found: boolean; value?: number }; snapshot: { consistent: boolean } }
interface JsonRegion { start: Hex; end: Hex; perms: string; offset: Hex | number; inode: number | Hex; path: string; kind: string; rss?: number; size: number }

const sum = (bins: JsonBin[], f: (b: JsonBin) => number) => bins.reduce((n, b) => n + f(b), 0);
const bytes = (b: JsonBin) => b.chunks.reduce((n, c) => n + c.size, 0);

/**
 * mallinfo2() as glibc's int_mallinfo sums it, from what the commands
 * printed: per arena, the top chunk is one free block, every chunk of the
 * unsorted, small and large bins another, fastbin chunks count apart;
 * keepcost is main_arena's top; mmapped chunks are mp_'s counters.
 */
function mallinfoOf(arenas: JsonArenas, bins: JsonBins, params: JsonParams): Record<string, number> {
  const mp = Object.fromEntries(params.fields.map((f) => [f.name, Number(f.value)]));
  const m = { arena: 0, ordblks: 0, smblks: 0, hblks: mp.n_mmaps, hblkhd: mp.mmapped_mem, usmblks: 0, fsmblks: 0, uordblks: 0, fordblks: 0, keepcost: 0 };
  expect(bins.arenas.map((b) => b.arena)).toEqual(arenas.arenas.map((a) => a.address));
  for (const [i, a] of arenas.arenas.entries()) {
    const b = bins.arenas[i];
    const regular = [...b.unsorted, ...b.smallbins, ...b.largebins];
    m.arena += Number(a.systemMem);
    m.ordblks += 1 + sum(regular, (x) => x.count);
    m.smblks += sum(b.fastbins, (x) => x.count);
    m.fsmblks += sum(b.fastbins, bytes);
    m.fordblks += Number(a.top.size) + sum(regular, bytes) + sum(b.fastbins, bytes);
    if (a.kind === 'main') m.keepcost = Number(a.top.size);
  }
  m.uordblks = m.arena - m.fordblks;
  return m;
}

/** Whether `pid` is gone, or a zombie (killed, not yet reaped by whoever inherited it): not running either way. */
function notRunning(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z');
  } catch {
    return true;
  }
}

describe("--pid on Debian's python3, allocating a pattern through ctypes", () => {
  const TUNABLES = 'glibc.malloc.top_pad=262144:glibc.malloc.mmap_max=1000:glibc.malloc.arena_test=3:glibc.malloc.tcache_count=5';

  it('arenas, bins and params --json give back the mallinfo2() the target printed, field for field; params has its tunables', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { child, lines } = await python(TUNABLES);
    const pid = String(child.pid);
    const printed = JSON.parse(lines[1]) as Record<string, number>;
    const arenas = json<JsonArenas>(['arenas', '--pid', pid, '--json']);
    const bins = json<JsonBins>(['bins', '--pid', pid, '--json']);
    const params = json<JsonParams>(['params', '--pid', pid, '--json']);
    for (const r of [arenas, bins, params]) expect(r.snapshot.consistent).toBe(true);
    expect(arenas.complete).toBe(true);
    expect(arenas.arenas.map((a) => a.kind)).toEqual(['main']);
    const derived = mallinfoOf(arenas, bins, params);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: derived[f] }).toEqual({ field: f, value: printed[f] });
    // The pattern left chunks in fastbins and in the other bins, and two blocks mmapped.
    expect(printed.smblks).toBeGreaterThan(0);
    expect(printed.ordblks).toBeGreaterThan(1);
    expect(printed.hblks).toBeGreaterThanOrEqual(2);
    const mp = Object.fromEntries(params.fields.map((f) => [f.name, Number(f.value)]));
    expect(mp).toMatchObject({ top_pad: 262144, n_mmaps_max: 1000, arena_test: 3, tcache_count: 5, no_dyn_threshold: 1 });
    // The same libc file as this process's: global_max_fast's measured offset applies.
    expect(params.globalMaxFast).toMatchObject({ found: true, value: 128 });
  });

  it("walk --pid --json: the walk's own totals are the mallinfo2() the target printed, field for field; fastbin chunks are fastbin", async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { child, lines } = await python(TUNABLES);
    const printed = JSON.parse(lines[1]) as Record<string, number>;
    const walk = json<{
      pid: number; consistent: boolean; problems: string[]; checks: unknown[]; mallinfoTotals: Record<string, number>;
      main: { complete: boolean; chunks: { place: string }[] }; threadHeaps: unknown[]; totals: { places: Record<string, { count: number; size: number }> };
    }>(['walk', '--pid', String(child.pid), '--json']);
    expect(walk).toMatchObject({ pid: child.pid, consistent: true, problems: [], checks: [], threadHeaps: [] });
    expect(walk.main.complete).toBe(true);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: walk.mallinfoTotals[f] }).toEqual({ field: f, value: printed[f] });
    expect(walk.totals.places.fastbin).toEqual({ count: printed.smblks, size: printed.fsmblks });
    expect(printed.smblks).toBeGreaterThan(0);
    // The text: the process named, then the strip, then the walk's mallinfo2 field by field.
    const text = heapscope(['walk', '--pid', String(child.pid)]);
    expect(text.stderr).toBe('');
    expect(text.stdout.split('\n')[0]).toBe(`process ${child.pid}: ${PYTHON} ${target} (glibc ${glibcVersion()})`);
    expect(text.stdout).toContain("mallinfo2() as the walk makes it up (every arena, with mp_'s mmapped chunks):");
    for (const f of TOTALLED_FIELDS) expect(text.stdout).toContain(`\n  ${f} ${printed[f]}\n`);
  });

  it('the text names the process (pid, command line, glibc) and the attempts its copy took', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { child } = await python();
    const header = `process ${child.pid}: ${PYTHON} ${target} (glibc ${glibcVersion()})`;
    expect(header, 'the fixture path needs no quoting').toMatch(/^[\w ():./-]+$/);
    for (const command of ['arenas', 'params', 'bins']) {
      const { code, stdout, stderr } = heapscope([command, '--pid', String(child.pid)]);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const [first, second, third] = stdout.split('\n');
      expect(first).toBe(header);
      expect(second).toBe('');
      expect(third).toMatch(command === 'arenas' ? /^Arenas: main_arena, / : command === 'params' ? /^mp_ \(struct malloc_par\)/ : /^Bins of main_arena: /);
      expect(stdout.replace(/\n/g, ' ')).toMatch(/Decoded from one copy of the allocator, made in one native call while nothing changed it \(\d+ attempts?\)\./);
    }
    const maps = heapscope(['maps', '--pid', String(child.pid)]);
    expect(maps.code).toBe(0);
    expect(maps.stdout.split('\n')[0]).toBe(header);
  });

  it('vis --pid shows the target\'s [heap] chunk by chunk: the places its chunkPlaces() gives, tcache links to the next chunk of tcaches()', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { child } = await python();
    const pid = String(child.pid);
    const shown = json<{ region: { kind: string; start: Hex }; first: number; total: number; chunks: { address: Hex; size: number; place: string; bin?: number; fd?: Hex }[] }>(['vis', '--pid', pid, '--count', '1000', '--json']);
    // The target sat blocked on stdin: a copy taken here is of the same heap.
    const target = attach(child.pid!);
    const s = target.snapshot();
    const region = target.chunkPlaces(s).regions.find((r) => r.kind === 'heap')!;
    expect(shown.region).toMatchObject({ kind: 'heap', start: hex(region.start) });
    expect(procMaps(child.pid!).find((r) => r.path === '[heap]')!.start).toBe(region.start);
    expect(shown.total).toBe(region.chunks.length);
    expect(shown.chunks.map((c) => ({ address: c.address, size: c.size, place: c.place, bin: c.bin })))
      .toEqual(region.chunks.slice(0, 1000).map((c) => ({ address: hex(c.address), size: c.size, place: c.place, bin: c.bin })));
    const next = new Map(target.tcaches(s).tcaches.flatMap((t) => t.bins.flatMap((b) => b.chunks.map((c, i) => [hex(c.address), b.chunks[i + 1]] as const))));
    const cached = shown.chunks.filter((c) => c.place === 'tcache');
    expect(cached.length).toBeGreaterThan(0);
    for (const c of cached) expect(c.fd).toBe(hex(next.get(c.address) === undefined ? 0n : next.get(c.address)!.address + 16n));
    const text = heapscope(['vis', '--pid', pid, '--count', '3']);
    expect(text.stderr).toBe('');
    const lines = text.stdout.split('\n');
    expect(lines[0]).toBe(`process ${pid}: ${PYTHON} ${target.cmdline[1]} (glibc ${glibcVersion()})`);
    expect(lines[2]).toBe(`Chunks 1–3 of ${region.chunks.length} in main_arena's [heap] ${hex(region.start)}–${hex(region.end)}`);
    const outside = heapscope(['vis', '--pid', pid, '0x1000']);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/^heapscope: ERR_NOT_IN_HEAP: 0x1000 is in no arena's heap/);
  });

  it('maps --pid lists /proc/PID/maps region for region; --rss adds resident sizes to the same regions', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { child } = await python();
    const before = procMaps(child.pid!);
    const regions = json<JsonRegion[]>(['maps', '--pid', String(child.pid), '--json']);
    const withRss = json<JsonRegion[]>(['maps', '--pid', String(child.pid), '--rss', '--json']);
    // The target sat blocked on stdin meanwhile: its map is the one read before.
    expect(procMaps(child.pid!)).toEqual(before);
    const shape = (r: JsonRegion) => ({ start: BigInt(r.start), end: BigInt(r.end), perms: r.perms, offset: BigInt(r.offset), inode: Number(r.inode), path: r.path });
    expect(regions.map(shape)).toEqual(before);
    expect(withRss.map(shape)).toEqual(before);
    for (const r of withRss) {
      expect(r.rss).toBeGreaterThanOrEqual(0);
      expect(r.rss).toBeLessThanOrEqual(r.size);
    }
    // Classified as this process's map is: python's own [heap] and its libc's data.
    expect(regions.filter((r) => r.kind === 'heap').map((r) => r.path)).toEqual(['[heap]']);
    expect(regions.some((r) => r.kind === 'data' && r.path.endsWith('/libc.so.6'))).toBe(true);
  });
});

describe('--pid on a C program with four threads, each in an arena of its own', () => {
  it('arenas lists main_arena and one arena per thread; bins --arena all has each; the totals are its mallinfo2()', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child, lines } = await start(programs['attach-threads'], [], 2);
    const pid = String(child.pid);
    const printed = JSON.parse(lines[1]) as Record<string, number>;
    const arenas = json<JsonArenas>(['arenas', '--pid', pid, '--json']);
    expect(arenas.complete).toBe(true);
    expect(arenas.arenas.map((a) => a.kind)).toEqual(['main', 'thread', 'thread', 'thread', 'thread']);
    expect(new Set(arenas.arenas.map((a) => a.address)).size).toBe(5);
    const all = json<JsonBins>(['bins', '--pid', pid, '--arena', 'all', '--json']);
    const main = json<JsonBins>(['bins', '--pid', pid, '--json']);
    expect(main.arenas).toEqual([all.arenas[0]]);
    for (const a of all.arenas) expect(a.complete).toBe(true);
    // Each thread freed every third of 64 blocks: its arena holds free chunks of its own.
    for (const a of all.arenas.slice(1)) {
      expect(sum([...a.fastbins, ...a.unsorted, ...a.smallbins, ...a.largebins], (b) => b.count)).toBeGreaterThan(0);
    }
    const derived = mallinfoOf(arenas, all, json<JsonParams>(['params', '--pid', pid, '--json']));
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: derived[f] }).toEqual({ field: f, value: printed[f] });

    const text = heapscope(['bins', '--pid', pid]);
    expect(text.code).toBe(0);
    expect(text.stdout.trimEnd().split('\n').pop()).toBe(`4 thread arenas not shown: heapscope bins --pid ${pid} --arena all`);
    const allText = heapscope(['bins', '--pid', pid, '--arena', 'all']);
    for (const a of arenas.arenas) expect(allText.stdout).toMatch(new RegExp(`^(main_arena|thread arena) ${a.address}: `, 'm'));
  });
});

describe('--attempts: the copies a command takes of a process that never stands still', () => {
  it('each command that takes a snapshot takes at most that many, all of them when each was torn', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { child } = await start(programs['attach-busy'], [], 1);
    const pid = String(child.pid);
    type Copy = { attempts: number; consistent: boolean };
    // The copy a run reports: from its JSON, or, where its last copy was torn so that main_arena could not be found
    // in it, from the refusal, which names the attempts.
    const copyOf = (args: string[], pick: (out: Record<string, unknown>) => Copy, stdin?: number): Copy => {
      const run = heapscope(args, { stdin });
      if (run.code === 1) {
        const torn = /^heapscope: ERR_ALLOCATOR_NOT_FOUND: .* \(the snapshot was torn after (\d+) attempts?: /s.exec(run.stderr);
        expect(torn, run.stderr).not.toBeNull();
        return { attempts: Number(torn![1]), consistent: false };
      }
      expect(run.code, run.stderr).toBe(0);
      return pick(JSON.parse(run.stdout) as Record<string, unknown>);
    };
    const snapshotOf = (out: Record<string, unknown>) => out.snapshot as Copy;
    const copies: Record<string, Copy> = {};
    for (const command of ['arenas', 'params', 'bins', 'vis', 'doctor']) copies[command] = copyOf([command, '--pid', pid, '--attempts', '2', '--json'], snapshotOf);
    copies.walk = copyOf(['walk', '--pid', pid, '--attempts', '2', '--json'], (out) => ({ attempts: out.attempts as number, consistent: out.consistent as boolean }));
    copies.snapshot = copyOf(['snapshot', '--pid', pid, '--attempts', '2'], (out) => out.copy as Copy);
    copies.watch = copyOf(['watch', '--pid', pid, '--attempts', '2', '--count', '1', '--json'], (out) => out.copy as Copy);
    // exec's child: its stdin is heapscope's, and the program ends when its stdin does: /dev/zero, which never ends.
    const zero = fs.openSync('/dev/zero', 'r');
    try {
      copies.exec = copyOf(['exec', '--command', 'bins', '--attempts', '2', '--json', '--', programs['attach-busy']], snapshotOf, zero);
    } finally {
      fs.closeSync(zero);
    }
    for (const copy of Object.values(copies)) {
      // Without the flag, a copy torn every time would say 10.
      expect(copy.attempts).toBeLessThanOrEqual(2);
      if (!copy.consistent) expect(copy.attempts).toBe(2);
    }
    // Two threads mallocing and freeing in a tight loop tear nearly every copy of 1.8 MiB.
    expect(Object.values(copies).filter((c) => !c.consistent).length, JSON.stringify(copies)).toBeGreaterThan(0);
    // The text says so too (or the refusal, where main_arena could not be found in the one copy).
    const text = heapscope(['arenas', '--pid', pid, '--attempts', '1']);
    if (text.code === 1) expect(text.stderr).toMatch(/^heapscope: ERR_ALLOCATOR_NOT_FOUND: .* \(the snapshot was torn after 1 attempt: /s);
    else {
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/while nothing changed it \(1 attempt\)\.|still torn after 1 attempt/);
    }
  });

  it('a count outside 1 to 100, or a command that takes no snapshot: exit status 2 before anything runs', () => {
    for (const value of ['0', '101', 'x', '1.5', '1e2']) {
      const { code, stdout, stderr } = heapscope(['arenas', '--pid', '1', '--attempts', value]);
      expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
      expect(stderr.split('\n')[0]).toBe(`heapscope: --attempts takes a number of copies from 1 to 100, got ${JSON.stringify(value)}`);
    }
    const maps = heapscope(['maps', '--attempts', '2']);
    expect(maps.code).toBe(2);
    expect(maps.stderr.split('\n')[0]).toMatch(/--attempts/);
    const exec = heapscope(['exec', '--command', 'maps', '--attempts', '2', '--', '/bin/true']);
    expect({ code: exec.code, stdout: exec.stdout }).toEqual({ code: 2, stdout: '' });
    expect(exec.stderr.split('\n')[0]).toBe('heapscope: --attempts goes with --command arenas or params or bins or walk or vis or doctor');
  });
});

describe('--pid refuses what it cannot read: exit status 1 and the coded error', () => {
  it('a process that no longer exists: ERR_PROCESS_EXITED', () => {
    const gone = spawnSync('/bin/true', { env: foreignEnv() }).pid;
    for (const command of ['maps', 'arenas', 'params', 'bins']) {
      const { code, stdout, stderr } = heapscope([command, '--pid', String(gone)]);
      expect({ code, stdout, stderr }).toEqual({ code: 1, stdout: '', stderr: `heapscope: ERR_PROCESS_EXITED: process ${gone} does not exist (it exited, or never did)\n` });
    }
  });

  it('a process with jemalloc preloaded: ERR_NOT_GLIBC_MALLOC naming jemalloc', async ({ skip }) => {
    if (!fs.existsSync(JEMALLOC)) skip(`no ${JEMALLOC} (Debian: apt-get install libjemalloc2)`);
    const { child } = await start(process.execPath, ['-e', 'console.log(process.pid); setInterval(() => {}, 1000)'], 1, { ...process.env, LD_PRELOAD: JEMALLOC });
    for (const command of ['arenas', 'params', 'bins', 'maps']) {
      const { code, stdout, stderr } = heapscope([command, '--pid', String(child.pid), '--json']);
      expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
      expect(stderr).toMatch(new RegExp(`^heapscope: ERR_NOT_GLIBC_MALLOC: process ${child.pid} \\(node\\) does not use glibc's malloc: ${JEMALLOC} is mapped \\(jemalloc\\)\\n$`));
    }
  });

  it('another user\'s process: ERR_PERMISSION naming the cause and the remedies, heapscope exec among them', async ({ skip }) => {
    if (process.getuid?.() !== 0) skip('only root can run heapscope as another user; run the tests as root to try this path');
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { child } = await python();
    const { code, stdout, stderr } = heapscope(['bins', '--pid', String(child.pid)], { uid: 65534, gid: 65534 });
    expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
    expect(stderr).toMatch(new RegExp(`^heapscope: ERR_PERMISSION: not allowed to read process ${child.pid}: `));
    expect(stderr).toMatch(/it belongs to uid 0 and this process runs as uid 65534/);
    expect(stderr).toMatch(/same user with ptrace_scope 0/);
    expect(stderr).toMatch(/as root or with CAP_SYS_PTRACE/);
    expect(stderr).toMatch(/heapscope exec -- CMD…/);
  });
});

/** Runs `heapscope exec …` with its stdin open (the target blocks on it) and resolves when it exits; `watch` sees the output as it comes. */
function exec(
  args: string[], env: NodeJS.ProcessEnv = {}, watch?: (child: ChildProcess, out: { stdout: string; stderr: string }) => void,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const base = { ...process.env };
  for (const name of ['NO_COLOR', 'FORCE_COLOR', 'GLIBC_TUNABLES']) delete base[name];
  const child = spawn(process.execPath, [cli, 'exec', ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], env: { ...base, PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', ...env } });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    out.stdout += text;
    watch?.(child, out);
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    out.stderr += text;
    watch?.(child, out);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, ...out }));
  });
}

/** `heapscope exec --command VIEW --json` of the python3 target once it printed its mallinfo2(): its pid, that mallinfo2() and the view. */
async function execTarget<T>(view: string, flags: string[] = []): Promise<{ pid: string; printed: Record<string, number>; view: T }> {
  const run = await exec(['--command', view, ...flags, '--ready', 'keepcost', '--json', '--', PYTHON, target]);
  expect(run.code, run.stderr).toBe(0);
  // The child's stdout went to heapscope's stderr: its pid, then its mallinfo2().
  const [pid, line] = run.stderr.split('\n');
  return { pid, printed: JSON.parse(line) as Record<string, number>, view: JSON.parse(run.stdout) as T };
}

describe('heapscope exec', () => {
  it('-- python3 target: bins of the child once it printed its mallinfo2(), as bins --pid shows them; the child is gone after', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { pid, printed, view: bins } = await execTarget<JsonBins>('bins');
    expect(bins.snapshot.consistent).toBe(true);
    expect(bins.arenas.map((a) => a.kind)).toEqual(['main']);
    const [b] = bins.arenas;
    expect(sum(b.fastbins, (x) => x.count)).toBe(printed.smblks);
    expect(sum(b.fastbins, bytes)).toBe(printed.fsmblks);
    expect(1 + sum([...b.unsorted, ...b.smallbins, ...b.largebins], (x) => x.count)).toBe(printed.ordblks);
    // heapscope waited for its child (SIGTERM) before it exited: nothing of it is left.
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('prints the view the command of that name prints, naming the child; arenas by default', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const run = await exec(['--ready', 'keepcost', '--', PYTHON, target]);
    expect(run.code, run.stderr).toBe(0);
    const pid = Number(run.stderr.split('\n')[0]);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(`process ${pid}: ${PYTHON} ${target} (glibc ${glibcVersion()})`);
    expect(lines[2]).toMatch(/^Arenas: main_arena, \d+ bytes/);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('--command doctor: the child diagnosed as doctor --pid diagnoses it, its totals its own mallinfo2(); the text names it', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { pid, printed, view: d } = await execTarget<{ pid: number; self: boolean; totals: Record<string, number>; snapshot: { consistent: boolean } }>('doctor');
    expect({ pid: d.pid, self: d.self, consistent: d.snapshot.consistent }).toEqual({ pid: Number(pid), self: false, consistent: true });
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: printed[f] });
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);

    const text = await exec(['--command', 'doctor', '--ready', 'keepcost', '--', PYTHON, target]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^Doctor: process ${text.stderr.split('\n')[0]}, .* resident, glibc ${glibcVersion()}$`));
    // Piped, the text is wrapped at 80 columns.
    expect(lines.slice(1).join(' ').replace(/\s+/g, ' ')).toContain(`Command line: ${PYTHON} ${target}; 1 thread.`);
  });

  it('--command walk: the walk of the child, its totals its own mallinfo2() field for field; --html the walk\'s fragment', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { pid, printed, view: walk } = await execTarget<{ pid: number; consistent: boolean; problems: string[]; mallinfoTotals: Record<string, number>; main: { complete: boolean }; totals: { places: Record<string, { count: number; size: number }> } }>('walk');
    expect({ pid: walk.pid, consistent: walk.consistent, problems: walk.problems, complete: walk.main.complete }).toEqual({ pid: Number(pid), consistent: true, problems: [], complete: true });
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: walk.mallinfoTotals[f] }).toEqual({ field: f, value: printed[f] });
    expect(walk.totals.places.fastbin).toEqual({ count: printed.smblks, size: printed.fsmblks });
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);

    const text = await exec(['--command', 'walk', '--arena', 'main', '--ready', 'keepcost', '--', PYTHON, target]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.split('\n')[0]).toBe(`process ${text.stderr.split('\n')[0]}: ${PYTHON} ${target} (glibc ${glibcVersion()})`);
    const html = await exec(['--command', 'walk', '--html', '--ready', 'keepcost', '--', PYTHON, target]);
    expect(html.code, html.stderr).toBe(0);
    expect(html.stdout).toMatch(/^<section class="heapscope-result heapscope-walk"/);
  });

  it('--command vis --keep: the chunks vis --pid shows of the same child while it still runs; --svg an SVG document', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    let pid: number | undefined;
    let byPid: unknown;
    const run = await exec(['--keep', '--command', 'vis', '--count', '1000', '--json', '--ready', 'keepcost', '--', PYTHON, target], {}, (child, out) => {
      if (pid !== undefined || !out.stdout.trimEnd().endsWith('}')) return;
      // The view is out and the child, blocked on the stdin it shares with heapscope, has not moved since.
      pid = Number(out.stderr.split('\n')[0]);
      byPid = json(['vis', '--pid', String(pid), '--count', '1000', '--json']);
      child.stdin!.end();
    });
    expect(run.code, run.stderr).toBe(0);
    const shown = JSON.parse(run.stdout) as { region: { kind: string }; first: number; total: number; chunks: { address: Hex; size: number }[] };
    expect(shown).toEqual(byPid);
    expect(shown.region.kind).toBe('heap');
    expect(shown.first).toBe(0);
    expect(shown.chunks).toHaveLength(Math.min(1000, shown.total));
    // Chunk after chunk, each where the one before ends.
    for (let i = 1; i < shown.chunks.length; i++) expect(BigInt(shown.chunks[i].address)).toBe(BigInt(shown.chunks[i - 1].address) + BigInt(shown.chunks[i - 1].size));
    const svg = await exec(['--command', 'vis', '--svg', '--ready', 'keepcost', '--', PYTHON, target]);
    expect(svg.code, svg.stderr).toBe(0);
    expect(svg.stdout).toMatch(/^<svg /);
  });

  it('--keep ends with the program, not with a background job of its that holds the program\'s stdout', async ({ skip }) => {
    if (RELEASE_UNDER_TEST !== undefined) {
      skip(`heapscope exec starts its program with heapscope's environment, whose LD_LIBRARY_PATH holds ${RELEASE_UNDER_TEST.name}'s libraries under ` +
        "scripts/test-on-release.mjs: this machine's /bin/sh, which this case needs for its background job, cannot load them");
    }
    // sh prints its line, lives on a moment (heapscope reads it then), and
    // exits, leaving a sleep that holds its stdout (not heapscope's stderr).
    const started = Date.now();
    const run = await exec(['--keep', '--command', 'params', '--', '/bin/sh', '-c', 'echo ready; sleep 1; sleep 20 2>/dev/null & echo $! >&2; exit 0']);
    const waited = Date.now() - started;
    const job = Number(run.stderr.split('\n').find((l) => /^\d+$/.test(l)));
    try {
      expect(run.code, run.stderr).toBe(0);
      expect(fs.existsSync(`/proc/${job}`)).toBe(true);
      expect(waited).toBeLessThan(15_000);
    } finally {
      if (job > 0) process.kill(job, 'SIGKILL');
    }
  });

  it('-- node app.js: a plain node program keeping 200 Buffers of 64 KiB; the walk finds them in use in main_arena\'s [heap], as the child maps it', async () => {
    const app = path.join(dir, 'app.js');
    fs.writeFileSync(app, [
      '// Keeps 200 zero-filled 64 KiB Buffers (calloc, below the mmap threshold: main_arena\'s [heap]), says so, and runs until its stdin ends.',
      '// About one node start in a hundred has V8\'s code range right above [heap] (lib/break-room.ts): such a start says so and ends first.',
      'const lines = require(\'node:fs\').readFileSync(\'/proc/self/maps\', \'utf8\').trim().split(\'\\n\');',
      'const at = lines.findIndex((l) => l.endsWith(\'[heap]\'));',
      'const room = at < 0 || at === lines.length - 1 ? Infinity : Number(BigInt(`0x${lines[at + 1].split(\'-\')[0]}`) - BigInt(`0x${lines[at].split(/[- ]/)[1]}`));',
      'if (room < 256 * 2 ** 20) { console.log(`blocked ${room}`); process.exit(0); }',
      'const kept = [];',
      'for (let i = 0; i < 200; i++) kept.push(Buffer.alloc(65536));',
      'console.log(`ready ${process.pid} ${kept.length} ${process.memoryUsage().arrayBuffers}`);',
      'process.stdin.on(\'end\', () => process.exit(0)).resume();',
    ].join('\n'));
    type JsonWalk = {
      pid: number; consistent: boolean; problems: string[]; mallinfoTotals: Record<string, number>;
      main: { start: Hex; end: Hex; complete: boolean; chunks: { address: Hex; size: number; place: string }[] };
    };
    let heap: { start: bigint; end: bigint } | undefined;
    const walkApp = () => exec(['--keep', '--command', 'walk', '--arena', 'main', '--json', '--ready', 'ready', '--', process.execPath, app], {}, (child, out) => {
      if (heap !== undefined || !out.stdout.trimEnd().endsWith('}')) return;
      // The child still runs: its map now, read here without heapscope.
      heap = procMaps(Number(out.stderr.split(' ')[1])).find((r) => r.path === '[heap]')!;
      child.stdin!.end();
    });
    // A child that said its break was blocked ended before it was ready: another is started, up to five, as quiet children are.
    let run = await walkApp();
    const blocked: string[] = [];
    while (run.stderr.startsWith('blocked') && blocked.length < 4) {
      blocked.push(run.stderr.split('\n')[0]);
      run = await walkApp();
    }
    expect(run.code, `${run.stderr} (after ${blocked.length} blocked children: ${blocked.join(', ')})`).toBe(0);
    const [word, pid, count, arrayBuffers] = run.stderr.split('\n')[0].split(' ');
    expect([word, count]).toEqual(['ready', '200']);
    expect(Number(arrayBuffers)).toBeGreaterThanOrEqual(200 * 65536);
    const walk = JSON.parse(run.stdout) as JsonWalk;
    expect({ pid: walk.pid, consistent: walk.consistent, problems: walk.problems, complete: walk.main.complete }).toEqual({ pid: Number(pid), consistent: true, problems: [], complete: true });
    // main_arena's [heap] is the one the child maps, and its chunks tile it from its first chunk.
    expect(heap).toBeDefined();
    expect(BigInt(walk.main.start)).toBe(heap!.start);
    expect(BigInt(walk.main.end)).toBe(heap!.end);
    for (let i = 1; i < walk.main.chunks.length; i++) expect(BigInt(walk.main.chunks[i].address)).toBe(BigInt(walk.main.chunks[i - 1].address) + BigInt(walk.main.chunks[i - 1].size));
    // Each of the 200 Buffers is a chunk of 65536 + 16 bytes in use (node itself may hold more of that size).
    expect(walk.main.chunks.filter((c) => c.size === 65552 && c.place === 'in-use').length).toBeGreaterThanOrEqual(200);
    expect(walk.mallinfoTotals.uordblks).toBeGreaterThanOrEqual(200 * 65552);

    let arenas = await exec(['--command', 'arenas', '--json', '--ready', 'ready', '--', process.execPath, app]);
    for (let k = 0; k < 4 && arenas.stderr.startsWith('blocked'); k++) arenas = await exec(['--command', 'arenas', '--json', '--ready', 'ready', '--', process.execPath, app]);
    expect(arenas.code, arenas.stderr).toBe(0);
    const list = JSON.parse(arenas.stdout) as JsonArenas;
    expect({ consistent: list.snapshot.consistent, complete: list.complete, first: list.arenas[0].kind }).toEqual({ consistent: true, complete: true, first: 'main' });
    expect(fs.existsSync(`/proc/${arenas.stderr.split(' ')[1]}`)).toBe(false);
  });

  it('params of a child started with GLIBC_TUNABLES in its environment', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const run = await exec(['--command', 'params', '--json', '--ready', 'keepcost', '--', PYTHON, target], { GLIBC_TUNABLES: 'glibc.malloc.top_pad=98304:glibc.malloc.tcache_count=3' });
    expect(run.code, run.stderr).toBe(0);
    const params = JSON.parse(run.stdout) as JsonParams;
    expect(Object.fromEntries(params.fields.map((f) => [f.name, Number(f.value)]))).toMatchObject({ top_pad: 98304, tcache_count: 3 });
  });

  it('--keep leaves the child running after the view and waits until it ends by itself; the exit status is heapscope\'s', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    let pid: number | undefined;
    const run = await exec(['--keep', '--command', 'arenas', '--json', '--ready', 'keepcost', '--', PYTHON, target], {}, (child, out) => {
      if (pid !== undefined || !out.stdout.trimEnd().endsWith('}')) return;
      // The view is out; the child (its pid the first line it printed) still runs, blocked on the stdin it shares with heapscope, until that closes.
      expect((JSON.parse(out.stdout) as JsonArenas).arenas[0].kind).toBe('main');
      pid = Number(out.stderr.split('\n')[0]);
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual([PYTHON, target, '']);
      child.stdin!.end();
    });
    expect(run.code, run.stderr).toBe(0);
    expect(pid).toBeGreaterThan(0);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
  });

  // These children are this node: it runs wherever heapscope does (this machine's sh does not under test-on-release).
  it('a child that exits before it is ready: exit status 1, ERR_PROCESS_EXITED with how it ended', async () => {
    const run = await exec(['--', process.execPath, '-e', 'process.exit(3)']);
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 1, stdout: '' });
    expect(run.stderr).toMatch(new RegExp(`^heapscope: ERR_PROCESS_EXITED: "${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" \\(pid \\d+\\) ended with status 3 before it printed a line .*so it was never read\n$`));
  });

  it('a child that closes its stdout before its line: exit status 1, ERR_EXEC_FAILED, and the child stopped', async () => {
    // The child says its pid, closes its stdout and waits, until heapscope stops it.
    const run = await exec(['--', process.execPath, '-e', "process.stderr.write(process.pid + '\\n'); require('fs').closeSync(1); setTimeout(() => {}, 600000)"]);
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 1, stdout: '' });
    const [pid, message] = run.stderr.split('\n');
    expect(message).toBe(`heapscope: ERR_EXEC_FAILED: "${process.execPath}" (pid ${pid}) closed its stdout before it printed a line (heapscope exec reads it once it prints one; see --ready and --after)`);
    while (!notRunning(Number(pid))) await new Promise((resolve) => setTimeout(resolve, 20));
  });

  it('a program that cannot be started: exit status 1, ERR_EXEC_FAILED', async () => {
    const missing = path.join(dir, 'no-such-program');
    const run = await exec(['--', missing]);
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 1, stdout: '' });
    expect(run.stderr).toBe(`heapscope: ERR_EXEC_FAILED: cannot start ${JSON.stringify(missing)}: no such program (give a path, or a program on PATH) (ENOENT)\n`);
  });

  it('heapscope ended by SIGTERM while it waits: the child does not outlive it', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    // The child never prints a line to stdout; it says its pid on stderr, which is heapscope's.
    let pid: number | undefined;
    const base = { ...process.env };
    const child = spawn(process.execPath, [cli, 'exec', '--', PYTHON, '-c', 'import os, time; os.write(2, b"%d\\n" % os.getpid()); time.sleep(600)'],
      { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], env: base });
    children.push(child);
    const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    await new Promise<void>((resolve) => child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      pid ??= Number(text.split('\n')[0]);
      resolve();
    }));
    expect(notRunning(pid!)).toBe(false);
    child.kill('SIGTERM');
    expect(await ended).toEqual({ code: 143, signal: null });
    // SIGKILLed as heapscope exited, it dies as soon as the kernel runs it (and is a zombie until whoever inherited it reaps it):
    // were it left running, this loop would run into the test's timeout.
    while (!notRunning(pid!)) await new Promise((resolve) => setTimeout(resolve, 20));
  });
});
