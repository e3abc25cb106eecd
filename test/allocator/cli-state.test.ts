// `heapscope arenas`, `params` and `bins`: what they print agrees with the
// decode of the process they ran in. A quiet child holds an idle worker
// whose arena nobody touches while the commands run in the main thread, so
// that arena's bins (and the arena list) can be compared exactly with the
// decode made just before and after; main_arena changes as the commands
// allocate, so its lists are checked for self-consistency. mp_ is checked
// against GLIBC_TUNABLES given to the command's process. --attempts is
// checked in a process whose every copy tears (test/fixtures/torn-cli.cjs).
//
// The arena list itself may grow while the commands run: Node's delayed-task
// thread makes its first malloc, and so its arena, whenever V8 first posts
// it a task. A new arena goes in right after main_arena, and none leaves
// while its thread lives: each command's list must hold every arena decoded
// before, in the same order, and only arenas decoded after.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sizeRule } from '../../lib/allocator/bin-walk';
import { layoutFor } from '../../lib/allocator/layouts';
import { glibcVersion } from '../../lib/stats';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { inQuietChild, quietNode } from '../helpers/quiet-child';
import { SYNC_CHILD } from '../helpers/sync-child';
import { hostLibraries, nodeAgainLine } from '../helpers/foreign-env';
import { HERE } from '../helpers/glibc-here';

// Every command runs in a node of its own, the decode it is checked against in a quiet child.
heapRoomNotNeeded();

const root = path.join(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');
const ANSI = /\x1b\[[0-9;]*m/;

// `script` runs the command line: the CLI itself, or a fixture that prepares the process first and then runs it.
/** This process's environment without what would change a command's output or allocator: colour settings, GLIBC_TUNABLES. */
function plainEnv(): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const name of ['NO_COLOR', 'FORCE_COLOR', 'GLIBC_TUNABLES']) delete base[name];
  return base;
}

function heapscope(args: string[], env: Record<string, string> = {}) {
  const base = plainEnv();
  const result = spawnSync(process.execPath, ['--single-threaded', cli, ...args], { ...SYNC_CHILD, cwd: root, encoding: 'utf8', maxBuffer: 1 << 28, env: { ...base, ...env } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface JsonChunk { address: string; size: number; fdNextsize?: string; bkNextsize?: string }
interface JsonBin { index: number; count: number; chunks: JsonChunk[]; reason?: string }
interface JsonArenaBins {
  arena: string; kind: 'main' | 'thread'; fastbins: JsonBin[]; unsorted: JsonBin[]; smallbins: JsonBin[]; largebins: JsonBin[];
  binmap: { words: number[]; marked: number[] }; complete: boolean;
}
interface JsonBins { arenas: JsonArenaBins[]; snapshot: { attempts: number; consistent: boolean } }
interface JsonArenas { arenas: { address: string; kind: string; heaps: { address: string }[]; next: string }[]; complete: boolean }

type Kind = 'fast' | 'unsorted' | 'small' | 'large';
const lists = (a: JsonArenaBins): { kind: Kind; bin: JsonBin }[] => [
  ...a.fastbins.map((bin) => ({ kind: 'fast' as const, bin })),
  ...a.unsorted.map((bin) => ({ kind: 'unsorted' as const, bin })),
  ...a.smallbins.map((bin) => ({ kind: 'small' as const, bin })),
  ...a.largebins.map((bin) => ({ kind: 'large' as const, bin })),
];
const label = (kind: Kind, index: number) => (kind === 'unsorted' ? 'unsorted' : `${kind} ${index}`);

/** Each list of `a` checked against what glibc allows it to hold; returns the chunks counted. */
function checkLists(a: JsonArenaBins): number {
  expect(a.arena).toMatch(/^0x[0-9a-f]+$/);
  // Ten fastbins, none from 2.43.
  expect(a.fastbins.map((b) => b.index)).toEqual([...Array(HERE.fastbins ? 10 : 0).keys()]);
  expect(a.unsorted.map((b) => b.index)).toEqual([1]);
  expect(a.smallbins.map((b) => b.index)).toEqual([...Array(62).keys()].map((i) => i + 2));
  expect(a.largebins.map((b) => b.index)).toEqual([...Array(63).keys()].map((i) => i + 64));
  let chunks = 0;
  for (const { kind, bin } of lists(a)) {
    const where = `${a.arena} ${label(kind, bin.index)}`;
    expect(bin.count, where).toBe(bin.chunks.length);
    const rule = kind === 'unsorted' ? { min: 32, max: undefined } : sizeRule(kind === 'fast' ? 'fastbin' : 'regular', bin.index);
    for (const c of bin.chunks) {
      expect(c.address, where).toMatch(/^0x[0-9a-f]*0$/);
      expect(c.size % 16, where).toBe(0);
      expect(c.size, where).toBeGreaterThanOrEqual(rule.min);
      if (rule.max !== undefined) expect(c.size, where).toBeLessThanOrEqual(rule.max);
    }
    // A large bin runs from its largest chunk to its smallest.
    if (kind === 'large') expect(bin.chunks.map((c) => c.size), where).toEqual(bin.chunks.map((c) => c.size).sort((x, y) => y - x));
    expect(new Set(bin.chunks.map((c) => c.address)).size, where).toBe(bin.chunks.length);
    chunks += bin.count;
  }
  return chunks;
}

/** `list` holds all of `before` and nothing but `after`, in `after`'s order. */
function between(before: string[], list: string[], after: string[]): void {
  const inOrder = (small: string[], big: string[]) => small.every((x, i) => big.indexOf(x) >= 0 && (i === 0 || big.indexOf(x) > big.indexOf(small[i - 1])));
  expect(inOrder(before, after), `${before} then ${after}`).toBe(true);
  expect(inOrder(before, list), `${before} in ${list}`).toBe(true);
  expect(inOrder(list, after), `${list} in ${after}`).toBe(true);
}

/** The rows of one arena's table in `bins` text: label, sizes, count, bytes, and every address its chunks column lists. */
function textRows(text: string, heading: string): { row: string[]; addresses: string[] }[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${heading}: `));
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const rows: { row: string[]; addresses: string[] }[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line === '') break;
    const row = /^(fast \d+|unsorted|small \d+|large \d+) +(\S+) +(\d+) +(\d+) +(.*)$/.exec(line);
    if (row !== null) rows.push({ row: row.slice(1, 5), addresses: row[5].match(/0x[0-9a-f]+/g) ?? [] });
    else if (/^ {10,}\S/.test(line) && rows.length > 0) rows[rows.length - 1].addresses.push(...(line.match(/0x[0-9a-f]+/g) ?? []));
  }
  return rows;
}

describe('heapscope arenas and bins, against the decode of the same process', () => {
  it('an idle worker\'s arena prints exactly as decoded before and after; every arena is listed in order; every list is consistent', () => {
    const seen = inQuietChild<{
      mine: string; same: boolean; passes: number; before: JsonBins; arenasBefore: [string, string][]; arenasAfter: [string, string][]; outputs: Record<string, string>;
    }>(`
      const { Worker } = require('node:worker_threads');
      const { main } = require(${JSON.stringify(cli)});
      const { toJSONValue } = require(${JSON.stringify(path.join(root, 'dist', 'json'))});
      const gate = new SharedArrayBuffer(16);
      // The worker's first malloc gives it an arena of its own; it fills some of its bins, then waits.
      const worker = new Worker(\`
        const { workerData } = require('node:worker_threads');
        const h = require(\${JSON.stringify(${JSON.stringify(root)})});
        const steps = [];
        const freed = [];
        for (let i = 0; i < 6; i++) { freed.push(steps.push({ op: 'malloc', size: 0x4f0 + 0x40 * i }) - 1); steps.push({ op: 'malloc', size: 24 }); }
        for (let i = 0; i < 9; i++) { freed.push(steps.push({ op: 'malloc', size: 40 }) - 1); steps.push({ op: 'malloc', size: 24 }); }
        for (const step of freed) steps.push({ op: 'free', step });
        const r = h.runPlan(steps, { keep: true });
        // The address goes back through shared memory: a message's buffers,
        // allocated here and freed by the main thread, would land in this arena.
        new BigInt64Array(workerData, 8, 1)[0] = r.steps[0].address;
        Atomics.store(new Int32Array(workerData, 0, 1), 0, 1);
        Atomics.notify(new Int32Array(workerData, 0, 1), 0);
        Atomics.wait(new Int32Array(workerData, 0, 1), 0, 1);\`, { eval: true, workerData: gate });
      // A worker that failed first could not say so while this thread waits.
      if (Atomics.wait(new Int32Array(gate, 0, 1), 0, 0, 60000) === 'timed-out') throw new Error('the worker did not fill its arena within 60 s');
      needBreakRoom();
      const address = new BigInt64Array(gate, 8, 1)[0];
      const mine = h.arenas().arenas.find((a) => a.memory.some((m) => address >= m.start && address < m.end)).address;
      const pick = (b) => JSON.stringify(b.arenas.find((a) => BigInt(a.arena) === mine));
      // The main thread's own frees (a collected object the worker made)
      // can land in the worker's arena at any time; the comparison needs a
      // pass during which none did, so a pass is repeated until one is quiet.
      let arenasBefore, before, outputs, after, arenasAfter;
      let passes = 0;
      do {
        passes++;
        arenasBefore = toJSONValue(h.arenas().arenas.map((a) => [a.address, a.kind]));
        before = toJSONValue(h.bins());
        outputs = {};
        const write = process.stdout.write;
        for (const args of [['bins', '--arena', 'all', '--json'], ['bins', '--arena', 'all'], ['bins', '--json'], ['bins'], ['arenas', '--json'], ['arenas']]) {
          let out = '';
          process.stdout.write = (text) => { out += text; return true; };
          try { await main(args); } finally { process.stdout.write = write; }
          outputs[args.join(' ')] = out;
        }
        after = toJSONValue(h.bins());
        arenasAfter = toJSONValue(h.arenas().arenas.map((a) => [a.address, a.kind]));
      } while (pick(before) !== pick(after) && passes < 5);
      Atomics.store(new Int32Array(gate, 0, 1), 0, 2);
      Atomics.notify(new Int32Array(gate, 0, 1), 0);
      return {
        mine: h.hex(mine), same: pick(before) === pick(after), passes, before, arenasBefore, arenasAfter, outputs,
      };`);
    // The comparisons below hold only if nothing touched the worker's arena meanwhile: in one of five passes, nothing did.
    expect(seen.same, `the worker's arena changed in each of ${seen.passes} passes`).toBe(true);
    const out = seen.outputs;
    const all = JSON.parse(out['bins --arena all --json']) as JsonBins;
    const decoded = seen.before.arenas.find((a) => a.arena === seen.mine)!;
    const printed = all.arenas.find((a) => a.arena === seen.mine)!;
    expect(printed).toEqual(decoded);
    expect(lists(decoded).filter(({ bin }) => bin.count > 0).length).toBeGreaterThanOrEqual(2);

    // Every arena, in list order, in both commands, each with its kind.
    const before = seen.arenasBefore.map(([address]) => address);
    const after = seen.arenasAfter.map(([address]) => address);
    const kinds = new Map(seen.arenasAfter);
    expect(after.length).toBeGreaterThanOrEqual(2);
    expect(after[0]).toBe(before[0]);
    const arenasJson = (JSON.parse(out['arenas --json']) as JsonArenas).arenas;
    const arenaRows = out.arenas.split('\n').filter((l) => /^0x[0-9a-f]+ +(main|thread) /.test(l)).map((l) => l.split(/ +/).slice(0, 2));
    for (const printed of [all.arenas.map((a) => [a.arena, a.kind]), arenasJson.map((a) => [a.address, a.kind]), arenaRows]) {
      between(before, printed.map(([address]) => address), after);
      for (const [address, kind] of printed) expect(kind).toBe(kinds.get(address));
    }

    // The worker's arena as text: a row per list that holds chunks, as decoded.
    const rows = textRows(out['bins --arena all'], `thread arena ${seen.mine}`);
    const used = lists(decoded).filter(({ bin }) => bin.count > 0);
    expect(rows.map((r) => r.row[0])).toEqual(used.map(({ kind, bin }) => label(kind, bin.index)));
    used.forEach(({ bin }, k) => {
      expect(rows[k].row.slice(2)).toEqual([String(bin.count), String(bin.chunks.reduce((n, c) => n + c.size, 0))]);
      expect(rows[k].addresses).toEqual(bin.chunks.slice(0, 8).map((c) => c.address));
    });

    // Every list of every arena is what its bin may hold; the text's totals are the JSON's.
    for (const a of all.arenas) checkLists(a);
    const main = JSON.parse(out['bins --json']) as JsonBins;
    expect(main.arenas.map((a) => [a.arena, a.kind])).toEqual([[after[0], 'main']]);
    const chunks = checkLists(main.arenas[0]);
    expect(main.snapshot.consistent).toBe(true);
    expect(out.bins.split('\n')[0]).toMatch(/^Bins of main_arena: \d+ chunks \(\d+ bytes\) in \d+ lists$/);
    const others = Number(/^(\d+) thread arenas? not shown: heapscope bins --arena all$/m.exec(out.bins)![1]);
    expect(others).toBeGreaterThanOrEqual(before.length - 1);
    expect(others).toBeLessThanOrEqual(after.length - 1);
    expect(chunks).toBeGreaterThan(0);
  });
});

describe('heapscope params', () => {
  const TUNABLES = 'glibc.malloc.top_pad=65536:glibc.malloc.mmap_threshold=300000:glibc.malloc.tcache_count=5:glibc.malloc.mxfast=96:glibc.malloc.arena_max=2';

  it('--json has every field this glibc\'s struct malloc_par names, with the values GLIBC_TUNABLES set, and global_max_fast', () => {
    const { code, stdout, stderr } = heapscope(['params', '--json'], { GLIBC_TUNABLES: TUNABLES });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const p = JSON.parse(stdout) as { address: string; fields: { name: string; value: string | number; meaning: string }[]; globalMaxFast: { found: boolean; value: number } };
    expect(p.fields.map((f) => f.name)).toEqual(layoutFor(glibcVersion()).mallocPar.fields.map((f) => f.name));
    expect(p.fields.every((f) => f.meaning !== '')).toBe(true);
    // size_t fields are bigints, printed as "0x…" like every bigint of --json.
    const value = Object.fromEntries(p.fields.map((f) => [f.name, Number(f.value)]));
    expect(value).toMatchObject({ top_pad: 65536, mmap_threshold: 300000, tcache_count: 5, arena_max: 2, no_dyn_threshold: 1 });
    expect(p.fields.find((f) => f.name === 'top_pad')!.value).toBe('0x10000');
    // From 2.43 there is none: glibc.malloc.mxfast does nothing, and the reading says so.
    expect(p.globalMaxFast).toMatchObject(HERE.fastbins ? { found: true, value: 96 } : { found: false, absent: true });
  });

  it('prints each field with its value and meaning: top_pad 65536 as set', () => {
    const { code, stdout } = heapscope(['params'], { GLIBC_TUNABLES: TUNABLES });
    expect(code).toBe(0);
    expect(stdout).toMatch(HERE.fastbins ? /^mp_ \(struct malloc_par\) at 0x[0-9a-f]+: \d+ fields, and global_max_fast$/m : /^mp_ \(struct malloc_par\) at 0x[0-9a-f]+: \d+ fields$/m);
    expect(stdout).toMatch(/^top_pad +65536 +bytes added to every request/m);
    expect(stdout).toMatch(/^mmap_threshold +300000 /m);
    expect(stdout).toMatch(/^tcache_count +5 /m);
    if (HERE.fastbins) expect(stdout).toMatch(/^global_max_fast +96 /m);
    else expect(stdout).toMatch(new RegExp(`glibc ${HERE.version} has no global_max_fast`));
    for (const f of layoutFor(glibcVersion()).mallocPar.fields) expect(stdout).toMatch(new RegExp(`^${f.name} +\\S+`, 'm'));
  });
});

describe('--attempts: the copies a command takes of this process', () => {
  // A process holding a mapping laid out as a new arena's first heap that no arena list leads to: every copy is torn
  // the same way (test/fixtures/torn-cli.cjs), so a command takes exactly as many copies as it may.
  const torn = path.join(root, 'test', 'fixtures', 'torn-cli.cjs');
  type Copy = { attempts: number; consistent: boolean; reason?: string };
  // In a quiet node whose break can grow (quietNode): where a mapping blocks it, sbrk fails, main_arena goes non-contiguous,
  // and the copies tear for that reason first.
  const copyOf = (args: string[], pick: (out: Record<string, unknown>) => Copy): Copy => {
    const run = quietNode([torn, ...args], plainEnv());
    expect(run.status, run.stderr).toBe(0);
    return pick(JSON.parse(run.stdout) as Record<string, unknown>);
  };
  const snapshotOf = (out: Record<string, unknown>) => out.snapshot as Copy;

  it('each command that takes a snapshot takes that many; without the flag, 5', () => {
    const copies: Record<string, Copy> = {};
    for (const command of ['arenas', 'params', 'bins', 'vis', 'doctor']) copies[command] = copyOf([command, '--attempts', '2', '--json'], snapshotOf);
    copies.walk = copyOf(['walk', '--attempts', '2', '--json'], (out) => ({ attempts: out.attempts as number, consistent: out.consistent as boolean, reason: out.inconsistency as string }));
    copies.snapshot = copyOf(['snapshot', '--attempts', '2'], (out) => out.copy as Copy);
    copies.watch = copyOf(['watch', '--attempts', '2', '--count', '1', '--json'], (out) => out.copy as Copy);
    copies['arenas without the flag'] = copyOf(['arenas', '--json'], snapshotOf);
    for (const [command, copy] of Object.entries(copies)) {
      expect({ command, attempts: copy.attempts, consistent: copy.consistent }).toEqual({ command, attempts: command.endsWith('without the flag') ? 5 : 2, consistent: false });
      expect(copy.reason, command).toMatch(/^the arena at 0x[0-9a-f]+ is not on the list that main_arena starts$/);
    }
  });

  it('the text says how many copies were torn', () => {
    const run = quietNode([torn, 'doctor', '--attempts', '3'], plainEnv());
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.replace(/\n\s*/g, ' ')).toMatch(/The allocator's copy was still torn after 3 attempts \(the arena at 0x[0-9a-f]+ is not on the list that main_arena starts\)\./);
  });
});

describe('usage, help and colour', () => {
  it.each([
    [['bins', '--arena', 'some'], '--arena takes main or all, got "some"'],
    [['bins', '--arena'], '--arena needs a value: --arena <main|all>'],
    [['arenas', '--arena', 'all'], 'arenas does not take --arena (walk, bins, exec do)'],
    [['params', 'top_pad'], 'params takes no arguments, got "top_pad"'],
    [['arenas', '--json=1'], '--json takes no value, got --json=1'],
    [['bins', '--svg'], 'bins does not take --svg (walk, vis, exec do)'],
  ])('%j exits 2: %s', (args, message) => {
    const { code, stdout, stderr } = heapscope(args);
    expect(stdout).toBe('');
    expect(code).toBe(2);
    const [first, second] = stderr.split('\n');
    expect(first).toBe(`heapscope: ${message}`);
    expect(second).toBe(`usage: heapscope ${args[0]} [options]`);
  });

  it('piped: plain text in 80 columns, whatever the command; FORCE_COLOR colours it and NO_COLOR wins', () => {
    for (const command of ['arenas', 'params', 'bins']) {
      const { code, stdout } = heapscope([command]);
      expect(code).toBe(0);
      expect(stdout, command).not.toMatch(ANSI);
      expect(Math.max(...stdout.split('\n').map((l) => [...l].length)), command).toBeLessThanOrEqual(80);
      expect(heapscope([command], { FORCE_COLOR: '1' }).stdout, command).toMatch(ANSI);
      expect(heapscope([command], { FORCE_COLOR: '1', NO_COLOR: '1' }).stdout, command).not.toMatch(ANSI);
    }
  });

  // util-linux's script(1) gives the command a real pseudo-terminal of a chosen width.
  const script = ['/usr/bin/script', '/bin/script'].find((p) => fs.existsSync(p));
  it.skipIf(script === undefined)('on a terminal: colour and its width, and none with NO_COLOR (needs script(1))', () => {
    const onTTY = (command: string, extra: Record<string, string>) => {
      const base = { ...process.env };
      delete base.NO_COLOR;
      delete base.FORCE_COLOR;
      return spawnSync(script!, ['-qec', `stty cols 150 rows 50; ${nodeAgainLine()} --single-threaded ${cli} ${command}`, '/dev/null'],
        { ...SYNC_CHILD, encoding: 'utf8', env: hostLibraries({ ...base, ...extra }) });
    };
    for (const command of ['arenas', 'params', 'bins --arena all']) {
      const coloured = onTTY(command, {});
      expect(coloured.status).toBe(0);
      expect(coloured.stdout, command).toMatch(ANSI);
      const lines = coloured.stdout.replace(/\r/g, '').split('\n').map((l) => [...l.replace(/\x1b\[[0-9;]*m/g, '')].length);
      expect(Math.max(...lines), command).toBeLessThanOrEqual(150);
      const plain = onTTY(command, { NO_COLOR: '1' });
      expect(plain.status).toBe(0);
      expect(plain.stdout, command).not.toMatch(ANSI);
    }
    // Wider than a pipe's 80: the arenas table keeps columns a pipe drops.
    expect(onTTY('arenas', { NO_COLOR: '1' }).stdout).toMatch(/^arena +kind +memory +system_mem /m);
  });
});
