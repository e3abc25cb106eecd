// heapscope snapshot, diff and watch --pid on Debian's python3 allocating a
// pattern through ctypes and then blocking: it prints its own mallinfo2(),
// which the snapshot's totals and its per-place counts must give back; a
// second snapshot and watch's ticks must show the same figures, as nothing
// moves in it (once a first copy has mapped in what it reads of libc's data); watch
// ends with status 0 on SIGINT.
import { ChildProcess, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NO_PYTHON, PYTHON, startTarget } from '../helpers/target';
import { TOTALLED_FIELDS } from '../../lib/allocator/totals';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { SYNC_CHILD } from '../helpers/sync-child';

// The heaps read are other processes': this process's own room does not matter.
heapRoomNotNeeded();

const fixtures = path.join(__dirname, '..', 'fixtures');
const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-snapshot-'));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const start = (command: string, args: string[], env: NodeJS.ProcessEnv = process.env) => startTarget(command, args, { env, stderr: 'pipe', into: children });

function heapscope(args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args], { ...SYNC_CHILD, encoding: 'utf8' });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

interface Counted { count: number; bytes: number }
interface JsonSnapshot {
  format: string;
  version: number;
  takenAt: string;
  process: { pid: number; self: boolean; cmdline: string[]; glibc: string };
  params: { mmapThreshold: number; tcacheCount: number };
  arenas: {
    address: string; kind: string; systemMem: number; inUse: Counted; free: Record<string, Counted>; top: number;
    classes: ({ min: number; max: number | null } & Record<string, Counted | number | null>)[];
  }[];
  mmapped: { count: number; bytes: number; nMmaps: number; mmappedMem: number };
  rss: { total: number; rows: { kind: string; rss: number }[] };
  totals: Record<string, number>;
  copy: { consistent: boolean };
}

const PLACES = ['tcache', 'fastbin', 'unsorted', 'smallbin', 'largebin'];

interface JsonFigure { bytes: number; change: number; count?: number; countChange?: number }
type JsonRecord = Record<'inUse' | 'free' | 'top' | 'mmapped' | 'rss', JsonFigure> & { copy: { consistent: boolean } };

/** Python blocked after printing its mallinfo2(), and that mallinfo2(). */
async function pythonTarget(skip: (note: string) => never) {
  if (NO_PYTHON !== undefined) skip(NO_PYTHON);
  const { child, next } = start(PYTHON, [path.join(fixtures, 'attach-target.py')], { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' });
  const mallinfo = JSON.parse((await next(2))[1]) as Record<string, number>;
  return { pid: String(child.pid), mallinfo };
}

function snapshotTo(file: string, pid: string): JsonSnapshot {
  const { code, stdout, stderr } = heapscope(['snapshot', '--pid', pid, '--out', file]);
  expect(code, stderr).toBe(0);
  expect(stdout).toMatch(new RegExp(`^heapscope: wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: HeapSnapshot <process ${pid}, `));
  return JSON.parse(fs.readFileSync(file, 'utf8')) as JsonSnapshot;
}

describe('snapshot --pid of a quiet python3', () => {
  it('is format heapscope-snapshot version 1, and its totals and its counts by place are its printed mallinfo2()', async ({ skip }) => {
    const { pid, mallinfo } = await pythonTarget(skip);
    const s = snapshotTo(path.join(dir, 'py.json'), pid);
    expect([s.format, s.version]).toEqual(['heapscope-snapshot', 1]);
    expect(s.process).toMatchObject({ pid: Number(pid), self: false, cmdline: [PYTHON, path.join(fixtures, 'attach-target.py')] });
    expect(Number.isNaN(Date.parse(s.takenAt))).toBe(false);
    expect(s.copy.consistent).toBe(true);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: s.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    // The same fields again, from the chunks counted by place (int_mallinfo's sums; tcache chunks are in use to it).
    const sum = (f: (a: JsonSnapshot['arenas'][number]) => number) => s.arenas.reduce((n, a) => n + f(a), 0);
    const binned = (a: JsonSnapshot['arenas'][number]) => ['unsorted', 'smallbin', 'largebin'].reduce((n, p) => n + a.free[p].bytes, 0);
    expect(sum((a) => a.systemMem)).toBe(mallinfo.arena);
    expect(sum((a) => a.free.fastbin.count)).toBe(mallinfo.smblks);
    expect(sum((a) => a.free.fastbin.bytes)).toBe(mallinfo.fsmblks);
    expect(sum((a) => a.top + a.free.fastbin.bytes + binned(a))).toBe(mallinfo.fordblks);
    expect(sum((a) => 1 + a.free.unsorted.count + a.free.smallbin.count + a.free.largebin.count)).toBe(mallinfo.ordblks);
    expect(s.arenas.find((a) => a.kind === 'main')!.top).toBe(mallinfo.keepcost);
    expect([s.mmapped.nMmaps, s.mmapped.mmappedMem]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    // Each place's total is the sum of its size classes'.
    for (const a of s.arenas) {
      for (const p of ['inUse', ...PLACES]) {
        const total = p === 'inUse' ? a.inUse : a.free[p];
        const classes = a.classes.reduce((n, c) => {
          const k = c[p] as Counted | undefined;
          return { count: n.count + (k?.count ?? 0), bytes: n.bytes + (k?.bytes ?? 0) };
        }, { count: 0, bytes: 0 });
        expect({ arena: a.address, place: p, ...classes }).toEqual({ arena: a.address, place: p, ...total });
      }
    }
    expect(s.rss.rows.reduce((n, r) => n + r.rss, 0)).toBe(s.rss.total);
  });

  it('diff of two snapshots of it: nothing changed, in every view', async ({ skip }) => {
    const { pid } = await pythonTarget(skip);
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.json');
    snapshotTo(a, pid);
    snapshotTo(b, pid);
    const json = heapscope(['diff', a, b, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const d = JSON.parse(json.stdout) as { sameProcess: boolean; arenas: { status: string; classes: unknown[]; inUse: { a: Counted; b: Counted } }[] };
    expect(d.sameProcess).toBe(true);
    expect(d.arenas.every((x) => x.status === 'both' && x.classes.length === 0 && x.inUse.a.count === x.inUse.b.count)).toBe(true);
    const text = heapscope(['diff', a, b]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^Diff: process ${pid}, `));
    expect(text.stdout).toContain('No size class changed');
    const html = heapscope(['diff', a, b, '--html']);
    expect(html.stdout).toMatch(/^<section class="heapscope-result heapscope-allocator" id="heapscope-diff">/);
  });
});

describe('watch --pid of a quiet python3', () => {
  it('--count 2, piped: two lines whose figures are those of a snapshot taken beside them', async ({ skip }) => {
    const { pid } = await pythonTarget(skip);
    // The first copy of a process can map in pages of libc's data file it
    // had not touched: its RSS, read before the copy, is then below what
    // comes after.
    snapshotTo(path.join(dir, 'first.json'), pid);
    const s = snapshotTo(path.join(dir, 'w.json'), pid);
    const { code, stdout, stderr } = heapscope(['watch', '--pid', pid, '--count', '2', '--interval', '50ms']);
    expect(code, stderr).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const sum = (pick: (a: JsonSnapshot['arenas'][number]) => Counted) => s.arenas.reduce((n, a) => ({ count: n.count + pick(a).count, bytes: n.bytes + pick(a).bytes }), { count: 0, bytes: 0 });
    const inUse = sum((a) => a.inUse);
    const free = sum((a) => PLACES.reduce((n, p) => ({ count: n.count + a.free[p].count, bytes: n.bytes + a.free[p].bytes }), { count: 0, bytes: 0 }));
    const top = s.arenas.reduce((n, a) => n + a.top, 0);
    for (const line of lines) {
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}/);
      expect(line.slice(line.indexOf('  ') + 2)).toBe(
        `arenas ${s.arenas.length}  in use ${inUse.bytes} B in ${inUse.count} chunks (+0)  free ${free.bytes} B in ${free.count} chunks (+0)  ` +
        `top ${top} B (+0)  mmapped ${s.mmapped.bytes} B in ${s.mmapped.count} chunks (+0)  rss ${s.rss.total} B (+0)`,
      );
    }
  });

  it('--json: one JSON object per line and tick, its figures those of a snapshot taken beside them, each change 0', async ({ skip }) => {
    const { pid } = await pythonTarget(skip);
    snapshotTo(path.join(dir, 'first-json.json'), pid);
    const s = snapshotTo(path.join(dir, 'w-json.json'), pid);
    const { code, stdout, stderr } = heapscope(['watch', '--pid', pid, '--count', '3', '--interval', '50ms', '--json']);
    expect(code, stderr).toBe(0);
    expect(stdout.endsWith('\n')).toBe(true);
    const lines = stdout.slice(0, -1).split('\n');
    expect(lines).toHaveLength(3);
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown> & { takenAt: string; since: string });
    const free = s.arenas.reduce((n, a) => PLACES.reduce((m, p) => ({ count: m.count + a.free[p].count, bytes: m.bytes + a.free[p].bytes }), n), { count: 0, bytes: 0 });
    const inUse = s.arenas.reduce((n, a) => ({ count: n.count + a.inUse.count, bytes: n.bytes + a.inUse.bytes }), { count: 0, bytes: 0 });
    for (const [i, r] of records.entries()) {
      expect(Number.isNaN(Date.parse(r.takenAt))).toBe(false);
      expect(r.since).toBe(records[0].takenAt);
      expect(r).toEqual({
        tick: i + 1, takenAt: r.takenAt, since: r.since, pid: Number(pid), arenas: s.arenas.length,
        inUse: { ...inUse, countChange: 0, change: 0 },
        free: { ...free, countChange: 0, change: 0 },
        top: { bytes: s.arenas.reduce((n, a) => n + a.top, 0), change: 0 },
        mmapped: { count: s.mmapped.count, bytes: s.mmapped.bytes, countChange: 0, change: 0 },
        rss: { bytes: s.rss.total, change: 0 },
        copy: { attempts: expect.any(Number), consistent: true },
      });
    }
  });

  it('--json on a target that grows between ticks: a tick read after it grew shows its snapshot, each change from the first tick', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    // Keeps 64 blocks of 1000 bytes when a line comes on its stdin, and says so once they are made.
    const grow = start(PYTHON, ['-u', '-c', [
      'import ctypes, sys',
      'libc = ctypes.CDLL("libc.so.6"); libc.malloc.restype = ctypes.c_void_p',
      'kept = []',
      'print("ready")',
      'for line in sys.stdin:',
      '    kept += [libc.malloc(1000) for _ in range(64)]',
      '    print("grew")',
    ].join('\n')], { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' });
    await grow.next(1);
    const pid = String(grow.child.pid);
    const watch = start(process.execPath, [CLI, 'watch', '--pid', pid, '--interval', '20ms', '--json']);
    const lines: string[] = [];
    let found: ((line: string) => boolean) | undefined;
    let resolveFound: ((line: string) => void) | undefined;
    let partial = '';
    watch.child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
      const hit = found === undefined ? undefined : lines.find(found);
      if (hit !== undefined) resolveFound!(hit);
    });
    const lineWhere = (test: (line: string) => boolean) => new Promise<string>((resolve) => {
      found = test;
      resolveFound = resolve;
      const hit = lines.find(test);
      if (hit !== undefined) resolve(hit);
    });
    const first = JSON.parse(await lineWhere(() => true)) as JsonRecord;
    grow.child.stdin!.write('\n');
    await grow.next(2);
    // The target is quiet again: a snapshot of it now is what every tick whose copy began after it grew shows.
    const s = snapshotTo(path.join(dir, 'grown.json'), pid);
    const inUse = s.arenas.reduce((n, a) => ({ count: n.count + a.inUse.count, bytes: n.bytes + a.inUse.bytes }), { count: 0, bytes: 0 });
    // Ticks go on every 20 ms; the first that shows the grown heap (were none to, the test would time out).
    const after = JSON.parse(await lineWhere((l) => {
      const r = JSON.parse(l) as JsonRecord;
      return r.inUse.count === inUse.count && r.inUse.bytes === inUse.bytes;
    })) as JsonRecord;
    const ended = new Promise<number | null>((resolve) => watch.child.once('exit', resolve));
    watch.child.kill('SIGINT');
    expect(await ended).toBe(0);
    expect(after.top.bytes).toBe(s.arenas.reduce((n, a) => n + a.top, 0));
    expect({ count: after.mmapped.count, bytes: after.mmapped.bytes }).toEqual({ count: s.mmapped.count, bytes: s.mmapped.bytes });
    expect(after.copy.consistent).toBe(true);
    for (const figure of ['inUse', 'free', 'top', 'mmapped', 'rss'] as const) {
      expect({ figure, change: first[figure].change }).toEqual({ figure, change: 0 });
      expect({ figure, change: after[figure].change }).toEqual({ figure, change: after[figure].bytes - first[figure].bytes });
    }
    for (const figure of ['inUse', 'free', 'mmapped'] as const) {
      expect({ figure, change: after[figure].countChange }).toEqual({ figure, change: after[figure].count! - first[figure].count! });
    }
    // The 64 blocks it kept are in use now (python frees nothing it held at the first tick meanwhile).
    expect(after.inUse.countChange).toBeGreaterThanOrEqual(64);
  });

  it('ends with status 0 on SIGINT', async ({ skip }) => {
    const { pid } = await pythonTarget(skip);
    const watch = start(process.execPath, [CLI, 'watch', '--pid', pid, '--interval', '50ms']);
    await watch.next(1);
    const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => watch.child.once('exit', (c, sig) => resolve([c, sig])));
    watch.child.kill('SIGINT');
    expect(await ended).toEqual([0, null]);
  });
});
