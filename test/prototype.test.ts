// Options, plan steps and lookup tables are read through own properties
// only: names inherited from Object.prototype are no tunables, and a
// polluted Object.prototype (any dependency can do it) changes nothing.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mallopt, run, runPlan } from '../lib/index';
import { quietNode } from './helpers/quiet-child';
import { SYNC_CHILD } from './helpers/sync-child';

const DIST = path.join(__dirname, '..', 'dist');
const INHERITED = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'];

// Runs in a fresh node whose Object.prototype carries every option name
// heapscope reads, each set to a value that would change what it does.
const POLLUTED = `
const h = require(${JSON.stringify(path.join(DIST, 'index.js'))});
const { binding } = require(${JSON.stringify(path.join(DIST, 'binding.js'))});
const outcome = (f) => { try { const v = f(); return { ok: v }; } catch (e) { return { code: e.code ?? null, message: e.message }; } };
const snapshot = h.mainHeapSnapshot();
const walkOf = () => h.walkSnapshot(snapshot.bytes, snapshot.base, { start: snapshot.start, end: snapshot.end, mainArena: true }).ending;
// 'top', or 'fencepost' in a child whose break could not grow (a mapping right above [heap]): the oracle is this walk before the pollution.
const cleanEnding = walkOf();
Object.assign(Object.prototype, {
  keep: true, step: 0, size: 10, op: 'malloc', rss: true, arena: 'bogus', attempts: 0, before: 'x',
  start: 3, end: 0, top: 5, fenceposts: 'yes', mainArena: 'no', columns: 'x', rows: 0.5, style: false,
  isolated: 'x', tunables: { 'glibc.malloc.nope': 1 }, '[anon:polluted]': 'heap',
});
const addon = binding.liveCount();
const results = {
  kept: outcome(() => h.runPlan([{ op: 'malloc', size: 10 }, { op: 'malloc', size: 2000 }]).kept.size),
  addonGrew: binding.liveCount() - addon,
  missingStep: outcome(() => h.runPlan([{ op: 'malloc', size: 10 }, { op: 'free' }])),
  missingSize: outcome(() => h.runPlan([{ op: 'malloc' }])),
  missingOp: outcome(() => h.runPlan([{ size: 10 }])),
  rss: outcome(() => h.maps().some((r) => Object.hasOwn(r, 'rss'))),
  walk: outcome(() => h.walkHeap().main.complete !== undefined),
  svg: outcome(() => /NaN/.test(h.walkHeap().toSVG()) || !h.walkHeap().toHTML().includes('<style>')),
  region: outcome(() => h.parseMaps('7f0000000000-7f0000001000 rw-p 00000000 00:00 0 [anon:polluted]\\n')[0].kind),
  snapshot: outcome(walkOf),
  cleanEnding,
};
h.run('chunk-sizes').then(
  (r) => ({ ok: r.environment.tunables }),
  (e) => ({ code: e.code ?? null, message: e.message }),
).then((run) => process.stdout.write(JSON.stringify({ ...results, run })));
`;

describe('a polluted Object.prototype', () => {
  it('changes no plan, option or walk', () => {
    const child = spawnSync(process.execPath, ['-e', POLLUTED], { ...SYNC_CHILD, encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    const r = JSON.parse(child.stdout);
    expect(r.kept).toEqual({ ok: 0 });
    expect(r.addonGrew).toBe(0);
    expect(r.missingStep).toMatchObject({ code: 'ERR_INVALID_PLAN' });
    expect(r.missingSize).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/^step 0\.size/) });
    expect(r.missingOp).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/^step 0: op/) });
    expect(r.rss).toEqual({ ok: false });
    expect(r.walk).toEqual({ ok: true });
    expect(r.svg).toEqual({ ok: false });
    expect(r.region).toEqual({ ok: 'anonymous' });
    expect(['top', 'fencepost']).toContain(r.cleanEnding);
    expect(r.snapshot).toEqual({ ok: r.cleanEnding });
    expect(r.run).toEqual({ ok: {} });
  }, 60_000);
});

// The same calls with Object.prototype carrying, one name at a time, a getter
// that throws: heapscope defines the fields of what it makes (an assignment
// would throw at a getter-only accessor) and reads only its own.
const GETTERS = `
const h = require(${JSON.stringify(path.join(DIST, 'index.js'))});
const NAMES = ['keep', 'rss', 'arena', 'before', 'attempts', 'start', 'end', 'top', 'fenceposts', 'mainArena', 'op', 'step', 'size',
  'count', 'pad', 'address', 'length', 'kind', 'object', 'name', 'pss', 'anonymous', 'path', 'perms', 'dev', 'inode', 'offset', 'deleted'];
const bytes = Buffer.alloc(256);
for (let off = 8; off < 256; off += 32) bytes.writeBigUInt64LE(33n, off);
const text = require('node:fs').readFileSync('/proc/self/maps', 'utf8');
const outcome = (f) => { try { return JSON.stringify(f(), (k, v) => (typeof v === 'bigint' ? String(v) : v)); } catch (e) { return 'threw ' + (e.code ?? 'uncoded ' + e.message); } };
const calls = {
  plan: () => h.runPlan([{ op: 'malloc', size: 10 }, { op: 'free', step: 0 }], { keep: false }).steps.map((s) => s.status),
  maps: () => h.parseMaps(text).map((r) => [r.kind, Object.hasOwn(r, 'object') ? r.object : null, Object.hasOwn(r, 'name') ? r.name : null]),
  smaps: () => h.maps({ rss: true }).every((r) => Object.hasOwn(r, 'rss') && Object.hasOwn(r, 'pss')),
  walk: () => { const w = h.walkSnapshot(bytes, 0x1000n, { start: 0 }); return [w.ending, w.top, w.reached, [...w.table.sizes.subarray(0, w.table.count)]]; },
  mallinfo: () => Object.keys(h.mallinfo2()),
  // Whether mp_ as the libc file initialises it was read (it stats the file), and the totals' fields.
  doctor: () => { const d = h.doctor(); return [Object.hasOwn(d.params, 'initial') ? 'initial' : d.params.initialReason, Object.keys(d.totals)]; },
};
const clean = Object.fromEntries(Object.entries(calls).map(([k, f]) => [k, outcome(f)]));
const differences = [];
for (const name of NAMES) {
  Object.defineProperty(Object.prototype, name, { get() { throw new Error('a getter on Object.prototype'); }, configurable: true });
  try {
    for (const [k, f] of Object.entries(calls)) { const dirty = outcome(f); if (dirty !== clean[k]) differences.push(name + ': ' + k + ': ' + dirty.slice(0, 120)); }
  } finally { delete Object.prototype[name]; }
}
process.stdout.write(JSON.stringify({ clean, differences }));
`;

describe('a getter-only accessor on Object.prototype', () => {
  it('changes nothing heapscope makes or reads: plans, the map, the walk, mallinfo2', () => {
    const child = spawnSync(process.execPath, ['-e', GETTERS], { ...SYNC_CHILD, encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    const { clean, differences } = JSON.parse(child.stdout);
    // The calls themselves work: the comparison means something.
    expect(Object.values(clean).some((o) => String(o).startsWith('threw'))).toBe(false);
    expect(differences).toEqual([]);
  }, 60_000);

  it("leaves writeReport's refusal of a destination as it is: a directory is EISDIR under every name", () => {
    const script = `
      const h = require(${JSON.stringify(path.join(DIST, 'index.js'))});
      const NAMES = ['size', 'dev', 'ino', 'mode', 'code', 'path', 'message'];
      (async () => {
        const seen = [];
        for (const name of NAMES) {
          Object.defineProperty(Object.prototype, name, { get() { throw new Error('a getter on Object.prototype'); }, configurable: true });
          try {
            await h.writeReport(${JSON.stringify(DIST)}, {}).then(() => seen.push(name + ': written'), (e) => seen.push(name + ': ' + (Object.hasOwn(e, 'code') ? e.code : 'uncoded ' + e.message)));
          } finally { delete Object.prototype[name]; }
        }
        process.stdout.write(JSON.stringify(seen));
      })();
    `;
    const child = spawnSync(process.execPath, ['-e', script], { ...SYNC_CHILD, encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual(['size', 'dev', 'ino', 'mode', 'code', 'path', 'message'].map((n) => `${n}: EISDIR`));
  });
});

describe('names inherited from Object.prototype', () => {
  it('are no tunables', async () => {
    for (const name of INHERITED) {
      // JSON.parse makes __proto__ an own property, as a parsed config file would.
      const tunables = JSON.parse(`{${JSON.stringify(name)}: 1}`);
      await expect(run('free', { tunables }), name).rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
    }
  });

  it('are no tunables on the command line either', () => {
    for (const name of INHERITED) {
      const child = spawnSync(process.execPath, [path.join(DIST, 'cli.js'), 'run', 'free', '--tunable', `${name}=1`], { ...SYNC_CHILD, encoding: 'utf8' });
      expect(child.status, `${name}: ${child.stderr}`).toBe(2);
      expect(child.stderr).toMatch(/unknown tunable/);
    }
  });

  it('are no mallopt parameters or plan ops', () => {
    for (const name of INHERITED) {
      expect(() => mallopt(name as never, 1), name).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_MALLOPT_PARAM' }));
      expect(() => runPlan([{ op: name } as never]), name).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
  });
});

// Fields heapscope's own records have only sometimes (a bin's `reason`, a
// large chunk's `fdNextsize`, an error's `errno`, …) and the fields of a
// property descriptor, each put on Object.prototype as a getter that returns
// a string: heapscope reads its records' own fields and defines what it
// adds, so the string shows up nowhere and nothing throws.
const VALUES = `
const h = require(${JSON.stringify(path.join(DIST, 'index.js'))});
const NAMES = ['reason', 'code', 'errno', 'syscall', 'uncopied', 'unread', 'heapsUnread', 'madeResident', 'fdNextsize', 'bkNextsize', 'offset', 'key',
  'walks', 'probe', 'maxFast', 'value', 'get', 'set', 'writable', 'enumerable', 'configurable'];
const text = (v) => JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString(16) : x));
const outputs = () => {
  const s = h.allocatorSnapshot();
  const w = h.walkHeap();
  let error;
  try { h.readMemory(8n, 8); } catch (e) { error = { code: e.code, errno: e.errno, syscall: e.syscall }; }
  return {
    walk: text({ problems: w.problems, main: { ...w.main, chunks: w.main.chunks.length } }), bins: text(h.bins(s)), arenas: text(h.arenas(s)),
    tcaches: text(h.tcaches(s)), params: text(h.mallocParams(s)), totals: text(h.allocatorTotals(s)), doctor: text(h.doctor()),
    maps: text(h.maps()), error: text(error),
  };
};
const clean = outputs();
const found = [];
for (const name of NAMES) {
  Object.defineProperty(Object.prototype, name, { __proto__: null, get() { return 'polluted'; }, configurable: true });
  let got;
  try { got = outputs(); } catch (e) { got = { threw: (e.code ?? 'uncoded') + ' ' + e.message }; }
  delete Object.prototype[name];
  for (const [k, v] of Object.entries(got)) if (k === 'threw' || v.includes('polluted')) found.push(name + ': ' + k + (k === 'threw' ? ' ' + v : ''));
}
process.stdout.write(JSON.stringify({ clean, found }));
`;

describe('a value on Object.prototype under a field heapscope\'s records have only sometimes', () => {
  it('shows up in no walk, decode, diagnosis, map or error, and makes nothing throw', () => {
    // A child whose break can grow: where it cannot, main_arena's chunks outside [heap] are a problem the clean walk names.
    const child = quietNode(['-e', VALUES]);
    expect(child.status, child.stderr).toBe(0);
    const { clean, found } = JSON.parse(child.stdout);
    // The clean calls work and carry what the names stand for: the comparison means something.
    expect(JSON.parse(clean.error)).toMatchObject({ code: expect.any(String), errno: expect.any(Number) });
    expect(JSON.parse(clean.walk).problems).toEqual([]);
    expect(found).toEqual([]);
  }, 120_000);
});
