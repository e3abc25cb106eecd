import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { experiment, experiments, run } from '../lib/experiments/run';
import { checkTunables, tunablesEnv } from '../lib/experiments/tunables';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { SYNC_CHILD } from './helpers/sync-child';

// Every run here happens in a child, which is started again when its own break cannot grow.
heapRoomNotNeeded();

/**
 * `node args` with every node process of it loading the banner fixture
 * `fixture` (NODE_OPTIONS=--require), which appends a line a process to a
 * log: the child and the log's lines. `env` may name files in the run's own
 * directory, removed afterwards.
 */
function withBanner(fixture: string, args: string[], env: (dir: string) => NodeJS.ProcessEnv = () => ({})) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-banner-'));
  try {
    const log = path.join(dir, 'log');
    const child = spawnSync(process.execPath, args, {
      ...SYNC_CHILD,
      encoding: 'utf8',
      env: { ...process.env, ...env(dir), NODE_OPTIONS: `--require ${path.join(__dirname, 'fixtures', 'banner', fixture)}`, BANNER_LOG: log },
    });
    return { child, lines: fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [] };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('run', () => {
  it('knows its experiments by name', () => {
    expect(experiments().length).toBeGreaterThan(0);
    for (const e of experiments()) expect(experiment(e.name)).toBe(e);
    expect(() => experiment('nope')).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_EXPERIMENT' }));
  });

  it('refuses an unknown tunable or a bad value before anything runs', async () => {
    await expect(run('chunk-sizes', { tunables: { 'glibc.malloc.nope': 1 } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
    await expect(run('chunk-sizes', { tunables: { 'glibc.malloc.tcache_count': -1 } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
    await expect(run('chunk-sizes', { tunables: { 'glibc.malloc.tcache_count': 70000 } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
    await expect(run('chunk-sizes', { isolated: false, tunables: { 'glibc.malloc.tcache_count': 1 } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
  });

  it('passes tunables to the child and reports them', async () => {
    const result = await run('chunk-sizes', { tunables: { 'glibc.malloc.tcache_count': 0 } });
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.tunables['glibc.malloc.tcache_count']).toBe('0');
  });

  it('merges tunables over the inherited ones', () => {
    expect(tunablesEnv(checkTunables({ 'glibc.malloc.top_pad': 0 }), 'glibc.malloc.top_pad=5:glibc.malloc.check=0'))
      .toBe('glibc.malloc.top_pad=0:glibc.malloc.check=0');
  });

  it.each(['stdout', 'stderr'])('an isolated run survives a --require module that writes to %s', (stream) => {
    // The reported case: NODE_OPTIONS="--require ./banner.js" loads the
    // banner into the run's child too, ahead of the experiment.
    const index = path.join(__dirname, '..', 'dist', 'index.js');
    const script = `require(${JSON.stringify(index)}).run('free').then(
      (r) => process.stdout.write('RESULT ' + JSON.stringify({ pid: r.environment.pid, isolated: r.environment.isolated, rows: r.rows.length, refused: (r.environment.refusedChildren ?? []).length }) + '\\n'),
      (e) => { process.stdout.write('ERROR ' + e.code + ' ' + e.message + '\\n'); });`;
    const { child, lines } = withBanner(`${stream}.cjs`, ['-e', script]);
    expect(child.stdout).not.toContain('ERROR');
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line).toBeDefined();
    const result = JSON.parse(line!.slice('RESULT '.length));
    expect(result.isolated).toBe(true);
    expect(result.rows).toBeGreaterThan(0);
    // The banner ran in the parent and in the child that measured, and in each child started before it that
    // refused the run (its heap had no room to grow: about one node start in fifty; one full run met it here).
    const pids = lines.map(Number);
    expect(pids).toHaveLength(2 + result.refused);
    expect([pids[0], pids[pids.length - 1]]).toEqual([child.pid, result.pid]);
    expect(child.status).toBe(0);
  });

  it('side by side, starts the run that takes longest first and still gives the results in order', () => {
    const cli = path.join(__dirname, '..', 'dist', 'cli.js');
    const { child, lines: started } = withBanner('spawns.cjs', [cli, 'run', 'layout', 'paging', 'bins', '--json']);
    expect(child.status).toBe(0);
    expect((JSON.parse(child.stdout) as { name: string }[]).map((r) => r.name)).toEqual(['layout', 'paging', 'bins']);
    // The order the command spawned its children in (children that start at once may run their first code in either order).
    // A child whose heap had no room to grow is started again (about one start in fifty): each name once.
    expect([...new Set(started)]).toEqual(['bins', 'layout', 'paging']);
  });

  it('starts its children without NODE_EXTRA_CA_CERTS, which Node would parse into their heaps', () => {
    const index = path.join(__dirname, '..', 'dist', 'index.js');
    const script = `require(${JSON.stringify(index)}).run('bins').then(
      (r) => process.stdout.write('RESULT ' + r.environment.pid + '\\n'),
      (e) => { process.stdout.write('ERROR ' + e.code + ' ' + e.message + '\\n'); });`;
    // A path that does not exist: Node only warns, and no certificate is parsed in this test's own process either.
    let certs = '';
    const { child, lines } = withBanner('extra-ca.cjs', ['-e', script], (dir) => ({ NODE_EXTRA_CA_CERTS: (certs = path.join(dir, 'extra-ca.pem')) }));
    expect(child.stdout).toMatch(/^RESULT \d+$/m);
    const processes = lines.map((l) => l.split(' '));
    expect(processes[0]).toEqual([String(child.pid), '-e', '-', certs]);
    const children = processes.slice(1);
    expect(children.map(([, file]) => file)).toEqual(expect.arrayContaining(['child.js']));
    for (const [, , , given] of children) expect(given).toBe('-');
  });

  it('starts another child when one\'s heap cannot grow, says so, and the last one measures the blocked break', () => {
    // The fixture maps a page right above the break in every process of the
    // run: each child refuses, but the last runs, and heap-growth meets the
    // break that cannot move.
    const index = path.join(__dirname, '..', 'dist', 'index.js');
    const script = `const h = require(${JSON.stringify(index)});
      h.run('heap-growth').then((r) => process.stdout.write(JSON.stringify({
        refused: r.environment.refusedChildren, findings: r.findings, surprises: r.surprises, rows: r.rows.length })));`;
    const child = spawnSync(process.execPath, ['-e', script], {
      ...SYNC_CHILD,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--require ${path.join(__dirname, 'fixtures', 'block-break.cjs')}` },
    });
    expect(child.stderr).toBe('');
    const r = JSON.parse(child.stdout) as { refused: string[]; findings: string[]; surprises: string[]; rows: number };
    expect(r.refused).toHaveLength(2);
    for (const why of r.refused) {
      expect(why).toMatch(/^the program break (0x[0-9a-f]+) can grow only 0 B, up to an anonymous mapping at \1–0x[0-9a-f]+ \([-r][-w][-x][ps]\)$/);
    }
    expect(r.findings).toContain(
      `This run's child was the third started: in the earlier ones the heap had no room to grow (child 1: ${r.refused[0]}; child 2: ${r.refused[1]}).`,
    );
    // The third child's own heap could not grow either: the experiment says why, from main_arena's flags.
    expect(r.rows).toBeGreaterThan(0);
    expect(r.surprises.some((s) => /^The break never moved: brk\(\) could not grow the heap \(the program break 0x[0-9a-f]+ can grow only 0 B, .*\), so main_arena is non-contiguous/.test(s))).toBe(true);
  });

  it('kills a child that runs past its timeout and throws a coded error', async () => {
    const before = childrenOf(process.pid);
    const error = await run('free', { timeout: 1 }).then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_EXPERIMENT_TIMEOUT' });
    const message = (error as Error).message;
    expect(message).toMatch(/^experiment free did not finish within 1 ms: its child process \d+ was killed/);
    const pid = Number(/child process (\d+)/.exec(message)![1]);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(childrenOf(process.pid)).toEqual(before);
  });

  it('refuses a timeout that is not a positive number of milliseconds', async () => {
    for (const timeout of [0, -1, Number.NaN]) {
      await expect(run('free', { timeout })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    }
    await expect(run('free', { timeout: '5' as unknown as number })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });
});

/** The pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // Field 4, after the parenthesised command name (which may hold spaces).
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(entry));
  }
  return out.sort((a, b) => a - b);
}
