// `npm run fuzz`: random calls of heapscope's public API, good and bad
// inputs mixed, in a child process; seeded and reproducible.
//
//   node scripts/fuzz.mjs [--seed N] [--calls N] [--workers N] [--leak N] [--uncoded N] [--forget NAME]
//   (or HEAPSCOPE_FUZZ_SEED / HEAPSCOPE_FUZZ_CALLS in the environment)
//
// The run passes only if
//   - the child exits normally (no signal: no SIGSEGV, no SIGABRT from a
//     glibc "double free detected", no OOM kill), with exit code 0;
//   - every error any call threw (or any promise rejected with) is an Error
//     with a string `code`, and every invariant the fuzzer checks held: a
//     plan without `keep` keeps nothing, `new Allocation()` always throws, a
//     call gives the same outcome with Object.prototype polluted as without;
//   - every function heapscope exports is among the calls made (see COVERS);
//   - at the end, after freeing what the fuzzer kept, heapscope's live set is
//     empty (liveAllocations() and the addon's own set) in the main thread
//     and in each worker;
//   - mallinfo2().uordblks is back within TOLERANCE bytes of its value
//     before the run (see below).
//
// `--uncoded N` adds N errors without a code (half of them as rejected
// promises) and `--forget NAME` drops NAME from COVERS: self-tests that
// those checks can fail too.
// `--leak N` keeps N 1 KiB allocations alive at the end: a self-test that the
// checks above can fail (test/fuzz.test.ts uses it).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');

// Why a tolerance, and this one: uordblks counts every in-use byte of every
// arena, and Node and V8 allocate with malloc too. Measures taken to make
// before and after comparable:
// - the child runs with V8's --single-threaded: no concurrent GC or
//   compiler threads, whose buffers (a TurboFan job's zone alone is
//   hundreds of KiB) would otherwise come and go in the thread arenas;
//   without it the total moved by up to 1.3 MiB between identical runs;
// - the start is read after a warm-up session of the same kinds of call
//   (what Node and V8 allocate once exists by then), and both readings
//   follow a full GC and a pause (see settle);
// - each reading first fills this thread's tcache (see uordblks).
// What is left, measured here (glibc 2.36, Node 20, many seeds), is +8 to
// +14 KiB at 5,000 calls and +19 to +30 KiB at 100,000: Node's and V8's own
// bookkeeping (the workers started in between, code and feedback kept).
// ±64 KiB is about twice the largest; a native leak of one 64 KiB block, or
// of one smallest (32-byte) chunk every 50 calls of a 100,000-call run,
// fails it. Smaller leaks are below what this check can see.
// Not a per-arena check: a failed malloc moves the calling thread to
// another arena (glibc's arena_get_retry), so the fuzzer's calls spread
// over several. Leaks of heapscope allocations themselves are caught
// exactly by the live sets, which must be empty.
const TOLERANCE = 64 * 1024;

function option(name, env, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return Number(process.argv[i + 1]);
  if (env !== undefined && process.env[env] !== undefined) return Number(process.env[env]);
  return fallback;
}

// ---- Randomness -------------------------------------------------------------

/**
 * mulberry32: small, fast, and the same sequence for the same seed everywhere.
 * `call(i)` restarts it on a stream of its own for call i. Why: how many
 * numbers a call draws depends on what earlier calls did (a free of a freed
 * address that glibc has since handed out again succeeds in one run and is
 * refused in the next, and the blocks the fuzzer holds differ from then on);
 * with one stream for the whole run, every later call would differ too.
 */
function rng(seed) {
  let a = seed >>> 0;
  const call = (i) => {
    // murmur3's finaliser: neighbouring (seed, i) start far apart.
    let h = (seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    a = (h ^ (h >>> 16)) >>> 0;
  };
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (list) => list[int(list.length)];
  return { next, int, pick, chance: (p) => next() < p, call };
}

// ---- The fuzz loop (main thread and workers alike) --------------------------

const thrower = () => { throw new Error('hostile'); };
function detachedView() {
  const buffer = new ArrayBuffer(16);
  const view = new Uint8Array(buffer, 4, 8);
  structuredClone(buffer, { transfer: [buffer] });
  return view;
}
function revokedProxy(target) {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}
// Every option and plan-step field heapscope reads.
const FIELDS = ['keep', 'isolated', 'tunables', 'rss', 'arena', 'before', 'attempts', 'start', 'end', 'top', 'fenceposts',
  'mainArena', 'columns', 'rows', 'op', 'step', 'size', 'count', 'alignment', 'pad', 'byte', 'address', 'length', 'lengthAt', 'atLeast'];
// Objects that fight back: getters that throw, Proxies whose traps throw or
// that were revoked, conversions that throw, no prototype at all.
const HOSTILE = () => [
  Object.defineProperties({}, Object.fromEntries(FIELDS.map((f) => [f, { get: thrower, enumerable: true }]))),
  new Proxy({}, { get: thrower, has: thrower, ownKeys: thrower, getOwnPropertyDescriptor: thrower, getPrototypeOf: thrower }),
  new Proxy([], { get: thrower, getOwnPropertyDescriptor: thrower }),
  revokedProxy({}), revokedProxy([]),
  { toString: thrower, valueOf: thrower, [Symbol.toPrimitive]: thrower },
  Object.create(null), detachedView(), () => 1,
];
const BAD_VALUES = [-1, -1n, NaN, Infinity, -Infinity, 1.5, 2 ** 63, 1n << 63n, 1n << 64n, '10', null, undefined, {}, [], true,
  Symbol('x'), 0n, 1n, ...HOSTILE()];
// A bad options argument: the wrong type, or fields of the wrong type.
const BAD_OPTIONS = [null, 5, 'x', [], 1n, Symbol('o'), ...HOSTILE(), { keep: 'yes' }, { rss: 1 }, { arena: 'x' }, { attempts: 0 },
  { before: 'x' }, { before: [null] }, { columns: 'x' }, { rows: -1 }, { start: -1 }, { end: 1n << 64n }, { top: 5 }, { fenceposts: 1 }];
// Names Object.prototype gives every object: none is a parameter, tunable, op or experiment.
const INHERITED = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'];
// Sizes no address space can hold: glibc answers ENOMEM at once.
const IMPOSSIBLE = [1n << 50n, 1n << 62n, (1n << 63n) - 1n, 2 ** 52];
const MAX_TOUCH = 2 << 20; // blocks this large or smaller may be written
const MAX_LIVE = 1000;
/** `steps` raw steps the addon must refuse, each a free of slot 2^40. */
const hostileWords = (steps) => BigUint64Array.from({ length: 4 * steps }, (_, i) => [5n, 1n << 40n, 0n, 0n][i % 4]);

async function fuzz(h, seed, calls, foreign = [], uncoded = 0) {
  const r = rng(seed);
  // The raw addon, for the internal calls fuzzed (runPlan with a compiled plan's id, releaseCopies): the same module h loaded.
  const { binding } = require(path.join(ROOT, 'dist', 'binding.js'));
  const { compiledPlanId } = require(path.join(ROOT, 'dist', 'plan.js'));
  const live = []; // Allocation handles we believe live
  const dead = []; // freed or reallocated handles
  const codes = {};
  const unexpected = [];
  const pending = []; // promises of async calls, judged at the end
  let ok = 0;
  const note = (call, problem) => {
    if (unexpected.length < 20) unexpected.push({ call, error: problem });
    else unexpected.push(null);
  };
  // An invariant the call broke: reported like an uncoded error.
  class Violation extends Error {}
  const check = (condition, what) => { if (!condition) throw new Violation(what); };

  const size = () => {
    const x = r.next();
    if (x < 0.5) return r.int(513);
    if (x < 0.75) return r.int(65537);
    if (x < 0.8) return r.int(3 << 19); // up to 1.5 MiB: crosses the mmap threshold
    if (x < 0.9) return r.pick(IMPOSSIBLE);
    if (x < 0.95) return BigInt(r.int(4097));
    return r.pick(BAD_VALUES);
  };
  const handle = () => {
    const x = r.next();
    if (x < 0.6 && live.length > 0) return live[r.int(live.length)];
    if (x < 0.8 && dead.length > 0) return dead[r.int(dead.length)];
    return undefined;
  };
  const address = () => {
    const x = r.next();
    const some = live.length > 0 ? live[r.int(live.length)].address : 0x1000n;
    if (x < 0.15) return some; // a live block (valid for readMemory)
    if (x < 0.3) return some + BigInt(1 + r.int(15)); // misaligned, inside a block
    if (x < 0.4 && dead.length > 0) return dead[r.int(dead.length)].address; // freed
    if (x < 0.5 && foreign.length > 0) return r.pick(foreign); // another thread's block
    if (x < 0.6) return BigInt(r.int(2 ** 31)) << BigInt(r.int(17)); // random user-space
    return r.pick([0n, 1n, 16n, 0xdeadbeefn, 1n << 47n, 0xffff800000000000n, 0xffffffffff600000n,
      (1n << 64n) - 16n, (1n << 64n) - 1n, -1n, 1n << 64n, 12, 'x']);
  };
  // At most MAX_LIVE blocks stay live: the addon's live set grows by
  // doubling and keeps its capacity (8 bytes a slot, at most half full), so
  // a larger peak would show in uordblks as capacity, not as a leak.
  const adopt = (a) => {
    if (!(a instanceof h.Allocation)) return a;
    live.push(a);
    while (live.length > MAX_LIVE) { const old = live[0]; old.free(); bury(old); }
    return a;
  };
  const bury = (a) => {
    const i = live.indexOf(a);
    if (i >= 0) live.splice(i, 1);
    if (dead.length < 64) dead.push(a); else dead[r.int(64)] = a;
  };
  const planStep = (i) => {
    const op = r.pick(['malloc', 'malloc', 'calloc', 'realloc', 'alignedAlloc', 'free', 'free', 'break', 'header',
      'usableSize', 'mallinfo', 'trim', 'touch', 'resident', 'statm', 'maps', 'freeze', 'thaw', 'pagemap', 'read', 'bogus']);
    const earlier = r.int(Math.max(i, 1));
    const ref = r.chance(0.85) ? earlier : r.chance(0.5) ? BigInt(earlier) : r.pick([i, i + 5, -1, 1.5, 'x', -1n, undefined, null]);
    const s = () => (r.chance(0.9) ? r.int(70000) : r.pick([...IMPOSSIBLE, -1, NaN]));
    switch (op) {
      case 'malloc': return { op, size: s() };
      case 'calloc': return { op, count: r.int(64), size: s() };
      case 'realloc': return { op, step: ref, size: r.chance(0.95) ? 1 + r.int(70000) : 0 };
      case 'alignedAlloc': return { op, alignment: r.pick([8, 16, 64, 4096, 3, 0, 1n << 40n]), size: s() };
      case 'trim': return { op, pad: r.chance(0.9) ? r.int(1 << 20) : -1 };
      case 'touch': return { op, step: ref, byte: r.pick([0, 0xa5, 255, 256, -1, 7n]) };
      case 'maps': return r.chance(0.2) ? { op } : { op: 'break' }; // 1 MiB of scratch each
      case 'pagemap': return { op, address: r.pick([0n, 4096n, 1n << 40n, 1n << 63n, (1n << 64n) - 4096n, -1n, 4096]), length: r.pick([0, 4096, 1 << 30, -1, 2 ** 48]) };
      // Where the length word is a live block's bytes, or unmapped, or past 2^64; offsets good and bad.
      case 'read': return {
        op, address: live.length > 0 && r.chance(0.7) ? r.pick(live).address : r.pick([0n, 4096n, (1n << 64n) - 8n, -1n]),
        length: r.pick([0, 8, 64, 4096, -1]), ...(r.chance(0.8) ? { lengthAt: r.pick([0, 8, 16, 4088, 12, 4096, -8, '8']) } : {}),
        ...(r.chance(0.3) ? { atLeast: r.pick([0, 8, 64, 5000, -1]) } : {}),
        ...(r.chance(0.1) ? { toBreak: true } : {}),
      };
      case 'break': case 'mallinfo': case 'statm': case 'freeze': case 'thaw': case 'bogus': return { op };
      default: return r.chance(0.97) ? { op, step: ref } : { op };
    }
  };
  const plan = () => Array.from({ length: 1 + r.int(20) }, (_, i) => planStep(i));
  const options = (good) => (r.chance(0.7) ? good : r.pick(BAD_OPTIONS));
  // A Buffer that looks a little like a heap: size words of random chunks.
  const heapBytes = () => {
    const bytes = Buffer.alloc(16 * (1 + r.int(64)));
    for (let off = 8; off < bytes.length; off += 16 * (1 + r.int(4))) bytes.writeBigUInt64LE(BigInt(16 * (1 + r.int(8)) + r.int(8)), off);
    return bytes;
  };
  // The same call with Object.prototype carrying one option name: what it
  // returns (or the code it throws) must not change.
  const POLLUTABLE = [...FIELDS, '[heap]', '[anon:x]', 'M_FOO', 'glibc.malloc.nope', 'nope'];
  const outcome = (call) => {
    try {
      const value = call();
      if (value !== null && typeof value === 'object' && value.kept instanceof Map) {
        for (const a of value.kept.values()) a.free();
        return `ok: kept ${value.kept.size}, ${value.steps.map((x) => `${x.op} ${x.status}`).join(', ')}`;
      }
      if (value instanceof h.Allocation) { value.free(); return 'ok: an Allocation'; }
      if (Array.isArray(value)) return `ok: ${value.length} items, ${value.map((x) => x?.kind ?? typeof x).join(' ')}`;
      if (typeof value === 'object' && value !== null) return `ok: ${Object.keys(value).join(' ')}`;
      return `ok: ${String(value)}`;
    } catch (error) {
      return error?.code ?? `uncoded ${error}`;
    }
  };
  const polluted = (call, name, value) => {
    const had = Object.getOwnPropertyDescriptor(Object.prototype, name);
    Object.defineProperty(Object.prototype, name, typeof value === 'function'
      ? { get: value, configurable: true } : { value, writable: true, configurable: true });
    try {
      return outcome(call);
    } finally {
      if (had === undefined) delete Object.prototype[name]; else Object.defineProperty(Object.prototype, name, had);
    }
  };

  const actions = [
    [12, () => adopt(h.malloc(size()))],
    [4, () => adopt(h.calloc(r.chance(0.9) ? r.int(64) : r.pick([1n << 40n, -1, NaN]), r.chance(0.9) ? r.int(4096) : r.pick([1n << 40n, ...BAD_VALUES])))],
    [3, () => adopt(h.alignedAlloc(r.pick([8, 16, 32, 64, 4096, 1 << 16, 0, 1, 3, 4, 24, 1n << 40n, -8, NaN, '16']), r.chance(0.9) ? r.int(8192) : size()))],
    [5, () => {
      const a = handle() ?? address();
      const next = h.realloc(a, r.chance(0.9) ? 1 + r.int(70000) : r.pick([0, ...IMPOSSIBLE, ...BAD_VALUES]));
      if (a instanceof h.Allocation) bury(a); else { const i = live.findIndex((x) => x.address === a); if (i >= 0) bury(live[i]); }
      adopt(next);
    }],
    [12, () => { const a = handle(); if (a === undefined) return; a.free(); bury(a); }],
    [4, () => {
      const a = r.chance(0.5) ? handle() : address();
      const target = a instanceof h.Allocation ? a : live.find((x) => x.address === a);
      h.free(a);
      if (target !== undefined) bury(target);
    }],
    [4, () => h.mallocUsableSize(r.chance(0.5) ? handle() : address())],
    [6, () => { const a = handle(); if (a) return [a.usableSize, a.chunk, a.freed]; }],
    [0.3, () => handle()?.region],
    [5, () => {
      const a = handle();
      if (a === undefined) return;
      const offset = r.chance(0.8) ? r.int(64) : r.chance(0.5) ? BigInt(r.int(64)) : size();
      return r.chance(0.5) ? a.read(offset) : a.read(offset, r.chance(0.8) ? r.int(64) : size());
    }],
    [4, () => {
      const a = handle();
      if (a === undefined || (a.requested > MAX_TOUCH)) return;
      const bytes = r.chance(0.9) ? Buffer.alloc(r.int(80), 0x5a) : r.pick(['text', 12, null, new Uint16Array(4), detachedView(), 1n, ...HOSTILE()]);
      a.write(r.chance(0.8) ? r.int(64) : size(), bytes);
    }],
    [2, () => {
      const a = handle();
      if (a === undefined || a.requested > MAX_TOUCH) return;
      a.fill(r.pick([0, 1, 255, 256, -1, 1.5, NaN, '1', 1n, 256n, ...HOSTILE()]));
    }],
    [6, () => h.readMemory(address(), r.chance(0.85) ? r.int(4097) : r.pick([-1, 1n << 27n, (64n << 20n) + 1n, NaN, 'x']))],
    [2, () => h.allocationAt(address())],
    [2, () => h.programBreak()],
    [2, () => h.mallinfo2()],
    [0.2, () => h.mallocInfo()],
    [0.5, () => h.mallocTrim(r.chance(0.8) ? r.int(1 << 20) : r.pick(BAD_VALUES))],
    [2, () => {
      // Invalid parameters and values only, plus two that leave the process
      // as it was (M_PERTURB 0 and M_MXFAST 128 are glibc's defaults): a
      // valid M_MMAP_THRESHOLD or M_ARENA_MAX would change the process the
      // rest of the run measures.
      const x = r.next();
      if (x < 0.3) return h.mallopt(r.pick([0, 2, 5, -5, -9, 100, 1.5, NaN, 'M_FOO', 'toString', '__proto__', null, undefined]), 1);
      if (x < 0.6) return h.mallopt(r.pick(Object.keys(h.MALLOPT_PARAMS)), r.pick([-2, -1.5, 2 ** 31, 2 ** 53, NaN, Infinity, '1', 1n, null]));
      if (x < 0.85) return h.mallopt(r.pick(['M_MXFAST', 1]), 161 + r.int(2 ** 31 - 162));
      const [param, value] = r.pick([['M_PERTURB', 0], ['M_MXFAST', 128]]);
      return h.mallopt(param, value);
    }],
    [3, () => {
      const steps = r.chance(0.95) ? plan() : r.pick([[], null, 'plan', [null], [{}], ...HOSTILE()]);
      const keep = r.chance(0.3);
      const given = r.chance(0.9) ? { keep } : r.pick([undefined, ...BAD_OPTIONS]);
      const result = h.runPlan(steps, given);
      for (const a of result.kept.values()) adopt(a);
      check(given?.keep === true || result.kept.size === 0, `runPlan kept ${result.kept.size} blocks without keep: true`);
      return result;
    }],
    // A plan compiled once and run twice, or a CompiledPlan forged: what runs was checked when compiled.
    [1.5, () => {
      const x = r.next();
      if (x < 0.1) {
        try {
          new h.CompiledPlan(plan(), Symbol('compilePlan'));
        } catch (error) {
          check(error.code === 'ERR_ILLEGAL_CONSTRUCTOR', `new CompiledPlan threw ${error.code}`);
          throw error;
        }
        check(false, 'new CompiledPlan() made a plan');
      }
      if (x < 0.25) {
        const forge = r.pick([() => Object.create(h.CompiledPlan.prototype), () => new Proxy(h.compilePlan([{ op: 'break' }]), {}), () => ({ length: 1 })]);
        h.runPlan(forge());
        check(false, 'runPlan ran a CompiledPlan compilePlan did not make');
      }
      const compiled = h.compilePlan(r.chance(0.9) ? plan() : r.pick([[], null, 'plan', [null], [{}], ...HOSTILE()]));
      let result;
      for (let k = 0; k < 2; k++) {
        const keep = r.chance(0.3);
        result = h.runPlan(compiled, { keep });
        // The addon holds its checked words now: hostile words as long as them, with its id, run those.
        if (k === 1 && r.chance(0.5)) binding.runPlan(hostileWords(compiled.length), false, undefined, undefined, compiledPlanId(compiled));
        for (const a of result.kept.values()) adopt(a);
        check(keep || result.kept.size === 0, `runPlan of a compiled plan kept ${result.kept.size} blocks without keep: true`);
      }
      return result;
    }],
    // The same call, clean and with a polluted Object.prototype: the same outcome.
    [2, () => {
      const steps = plan();
      const bytes = heapBytes();
      const regions = h.parseMaps('7f0000000000-7f0000001000 rw-p 00000000 00:00 0 [anon:x]\n');
      const calls = [
        () => h.runPlan(steps), () => h.runPlan(steps, {}), () => h.maps().filter((x) => Object.hasOwn(x, 'rss')),
        () => h.walkSnapshot(bytes, 0x1000n, { start: 0 }), () => h.walkSnapshot(bytes, 0x1000n),
        () => h.mallopt(r.pick(['M_FOO', ...INHERITED]), 1), () => h.regionOf(0x7f0000000000n, regions),
        () => h.parseMaps('7f0000000000-7f0000001000 rw-p 00000000 00:00 0 [anon:x]\n'), () => h.experiment(r.pick(['nope', ...INHERITED])),
      ];
      const call = r.pick(calls);
      const clean = outcome(call);
      const value = r.pick([true, false, 0, 1, 5, -1, 'x', 'heap', 'malloc', 1n, 0x1000n, [], { 'glibc.malloc.nope': 1 }, thrower]);
      const name = r.pick(POLLUTABLE);
      const dirty = polluted(call, name, value);
      check(dirty === clean, `with Object.prototype[${JSON.stringify(name)}] = ${typeof value === 'function' ? 'a throwing getter' : String(value)}: ${dirty}, clean: ${clean}`);
    }],
    [1, () => {
      // Handles come only from heapscope: a forged one frees nothing.
      const x = r.next();
      const a = live.length > 0 ? live[r.int(live.length)] : undefined;
      const fake = r.pick([Object.create(h.Allocation.prototype), a === undefined ? {} : { ...a }, new Proxy(a ?? {}, {})]);
      if (x < 0.3) {
        let made;
        try { made = new h.Allocation(a?.address ?? 0x1000n, 32, 'malloc'); } catch (error) { check(error.code === 'ERR_ILLEGAL_CONSTRUCTOR', `new Allocation threw ${error.code}`); throw error; }
        check(false, 'new Allocation() made a handle');
        return made;
      }
      if (x < 0.5) return h.free(fake);
      if (x < 0.7) return h.Allocation.prototype.free.call(fake);
      if (x < 0.85) return h.realloc(fake, 64);
      return h.mallocUsableSize(fake);
    }],
    [1, () => h.regionOf(address(), r.chance(0.9) ? undefined : r.pick([null, 'x', {}, [null], [{ start: 1, end: 2 }], ...HOSTILE()]))],
    [0.2, () => h.maps(r.pick([{}, { rss: false }, { rss: 'yes' }, undefined, ...BAD_OPTIONS]))],
    [1, () => h.parseMaps(r.pick(['', 'garbage', '0-1 rwxp 0 0:0 0\n', '7f-7e r--p 00 00:00 0 [heap]\n', 42, null, ...HOSTILE()]))],
    [0.5, () => h.parseSmaps(r.pick(['', 'garbage', '0-1000 rw-p 0 0:0 0\nRss: 4 kB\n', 'Rss: x\n', 1n, ...HOSTILE()]))],
    [0.5, () => h.parseMallocInfo(r.pick(['', '<malloc version="1"></malloc>', '<malloc>', '<heap/>', 1n, ...HOSTILE()]))],
    [2, () => h.sizeClass(size())],
    [1, () => h.requestToChunkSize(size())],
    [2, () => {
      // The other size-class functions, with chunk sizes good and bad.
      const chunk = r.chance(0.7) ? 32 + 16 * r.int(70000) : size();
      const f = r.pick(['binIndex', 'smallbinIndex', 'largebinIndex', 'tcacheIndex', 'fastbinIndex', 'usableSizeOf', 'binRange', 'mmappedChunkSize']);
      if (f === 'binRange') return h.binRange(r.chance(0.7) ? r.int(130) : r.pick(BAD_VALUES));
      if (f === 'mmappedChunkSize') return h.mmappedChunkSize(size(), r.pick([4096, 4096n, 65536, 3, 0, ...BAD_VALUES]));
      if (f === 'fastbinIndex') return h.fastbinIndex(chunk, r.chance(0.7) ? undefined : r.pick([128, 160, 176, ...BAD_VALUES]));
      if (f === 'usableSizeOf') return h.usableSizeOf(chunk, r.pick([true, false, undefined, 1, null]));
      return h[f](chunk);
    }],
    [1, () => h.liveAllocations().length],
    [0.3, () => [h.glibcVersion(), h.pageSize()]],
    [1, () => {
      const bytes = r.chance(0.8) ? heapBytes() : r.pick(BAD_VALUES);
      const base = r.chance(0.8) ? 0x1000n + 16n * BigInt(r.int(100)) : r.pick([1, -1n, 1n << 64n, 'x', null]);
      const given = r.chance(0.6) ? { start: r.pick([0, 16, 1n, 8]), end: r.pick([undefined, 32, 1n << 10n]), top: r.pick([undefined, 0x1010n, 5]), fenceposts: r.chance(0.5), mainArena: r.pick([true, false, 'x']) } : r.pick([undefined, ...BAD_OPTIONS]);
      return h.walkSnapshot(bytes, base, given);
    }],
    // The raw binding's runPlan, given hostile words with the id of a compiled plan (any id given so far, or a
    // new one): an id whose words the addon holds checked runs those, and any other words are checked and refused.
    [0.5, () => {
      const id = r.chance(0.8) ? 1 + r.int(binding.planId()) : r.pick([0, -1, 0.5, 'x']);
      return binding.runPlan(hostileWords(1 + r.int(16)), false, undefined, undefined, id).kept.length;
    }],
    // The raw binding's releaseCopies, given a read copy a plan handed over among other things: only a whole
    // copy is given back, once (all its views then read as empty); a part of one, a Buffer of its own and
    // anything else are passed over, and a non-array is refused with a code.
    [0.5, () => {
      const a = handle();
      if (a === undefined) return undefined;
      const { steps } = h.runPlan([{ op: 'read', address: a.address, length: Math.min(a.requested, 1 << 16) }]);
      const copy = steps[0].bytes;
      // A dead handle's block (handle() picks those too, and one freed or reallocated through its bigint address
      // stays in `live`) may be unmapped by now: under ASan, whose big blocks are mappings of their own, it is
      // (seed 935208470). Its read fails with EFAULT; a live block's never does.
      if (copy === undefined) {
        check(a.freed && steps[0].errno === 14, `a read of ${a.freed ? 'a dead' : 'a live'} block failed: ${JSON.stringify(steps[0])}`);
        return undefined;
      }
      const part = copy.subarray(copy.length > 0 ? 1 : 0);
      const own = Buffer.from(copy);
      const list = r.pick([[copy], [copy, copy], [part], [own], [copy, part, own, 'x', null, 7, {}, []], []]);
      const given = r.chance(0.9) ? list : r.pick(BAD_VALUES);
      const n = binding.releaseCopies(given);
      const whole = given === list && list.includes(copy) && own.length > 0;
      check(n === (whole ? 1 : 0), `releaseCopies gave back ${n}, expected ${whole ? 1 : 0}`);
      check(copy.length === (whole ? 0 : own.length) && own.equals(Buffer.from(own)), 'releaseCopies touched what it did not give back');
      if (!whole) check(binding.releaseCopies([copy]) === (own.length > 0 ? 1 : 0), 'a copy passed over could not be given back after');
      return n;
    }],
    // A walk copies and decodes the whole heap (about a second here, with the fuzz's blocks in it): rare, and one snapshot each.
    [0.005, () => {
      const walk = h.walkHeap(options(r.pick([{ attempts: 1 }, { arena: 'all', attempts: 1 }, { before: plan(), attempts: 1 }])));
      const view = r.pick(['toSVG', 'toHTML']);
      return walk[view](options(r.pick([undefined, {}, { columns: 8, rows: 2 }, { columns: 7 }, { rows: 1n }])));
    }],
    // An allocator snapshot copies libc's data and every heap (about a tenth of a second): rare.
    [0.002, () => {
      const snapshot = r.chance(0.7)
        ? h.allocatorSnapshot(options(r.pick([{ attempts: 1 }, { attempts: 1, probe: false }, { before: plan(), attempts: 1 }])))
        : r.pick(BAD_VALUES);
      return h[r.pick(['arenas', 'bins', 'tcaches', 'chunkPlaces', 'allocatorTotals', 'mallocParams'])](snapshot);
    }],
    // vis decodes one snapshot too: rare; a chunk anywhere, or an address no heap holds.
    [0.002, () => {
      const snapshot = r.chance(0.7) ? h.allocatorSnapshot({ attempts: 1 }) : r.pick([undefined, ...BAD_VALUES]);
      const address = r.pick([undefined, live.length > 0 ? live[r.int(live.length)].address : undefined, 0x1000n, 1n << 47n, -1n, 5, 'x']);
      const count = r.pick([undefined, 1, 3, 1000, 0, 1001, 1.5, 1n, 'x']);
      return h.vis(options(r.pick([undefined, {}, { address, count }, { count }, { address }])), snapshot);
    }],
    // The doctor and a heap snapshot read smaps and pagemap and copy every heap (about a second): rarer still.
    [0.001, () => (r.chance(0.5)
      ? h.doctor(options(r.pick([undefined, {}, { trim: r.chance(0.5) }, { trim: 'x' }, { trim: 1 }, { attempts: r.pick([1, 0, 101, 2.5, 'x']) }])))
      : h.heapSnapshot(options(r.pick([undefined, {}, { attempts: r.pick([1, 0, 101, 2.5, 'x']) }]))))],
    // Reading and diffing snapshot files: the JSON of a real one now and then, else anything.
    [0.3, () => {
      const text = r.chance(0.05) ? JSON.stringify(h.heapSnapshot()) : r.pick(['', '{}', '[]', 'null', '{"format":"heapscope-snapshot","version":2}',
        '{"format":"heapscope-snapshot","version":1}', ...BAD_VALUES]);
      const read = () => h.readHeapSnapshot(text);
      return r.chance(0.5) ? read() : h.diffHeapSnapshots(r.chance(0.5) ? read() : r.pick(BAD_VALUES), r.pick(BAD_VALUES));
    }],
    // Attaching copies a process's allocator memory too: rare; to this very process, or to a pid that cannot be.
    [0.002, () => {
      const target = h.attach(r.chance(0.6) ? process.pid : r.pick([0, -1, 1.5, 1 << 22, 1 << 23, 2 ** 40, ...BAD_VALUES]));
      const snapshot = r.chance(0.7) ? target.snapshot(options(r.pick([{ attempts: 1 }, { attempts: 2 }, { attempts: 0 }]))) : r.pick(BAD_VALUES);
      // doctor() takes a snapshot or options: a copy of a snapshot (its pid) must be refused as one, not read as options.
      if (r.chance(0.2)) return target.doctor(r.pick([snapshot, { ...snapshot }, options({ attempts: r.pick([1, 2, 0, 101]) })]));
      return target[r.pick(['arenas', 'bins', 'tcaches', 'chunkPlaces', 'allocatorTotals'])](snapshot);
    }],
    [0.3, () => h.hex(r.chance(0.7) ? BigInt(r.int(1 << 30)) : r.pick(BAD_VALUES))],
    [0.02, () => h.mainHeapSnapshot(r.chance(0.8) ? 1 + r.int(3) : r.pick(BAD_VALUES)).bytes.length],
    [1, () => h.experiment(r.pick([...h.experiments().map((e) => e.name), 'nope', ...INHERITED, ...BAD_VALUES]))],
    [0.5, () => h.experiments().length],
    [1, () => {
      // Never a real run: either the name is unknown or the options are bad (options are checked first).
      const [getters, traps, arrayTraps, revoked] = HOSTILE();
      const bad = [null, 5, 'x', [], 1n, Symbol('o'), () => 1, getters, traps, arrayTraps, revoked, { isolated: 'x' }, { isolated: 1 },
        { tunables: null }, { tunables: [] }, { tunables: { [r.pick(INHERITED)]: 1 } }, { tunables: { 'glibc.malloc.nope': 1 } },
        { tunables: { 'glibc.malloc.check': r.pick([-1, 'x', 4, 1.5, 1n << 70n, {}, null, Symbol('t')]) } },
        { isolated: false, tunables: { 'glibc.malloc.check': 0 } }, { tunables: r.pick(HOSTILE().slice(0, 6)) }];
      const running = r.chance(0.5)
        ? h.run(r.pick(['nope', '', ...INHERITED, ...BAD_VALUES]), r.pick([undefined, {}, ...bad]))
        : h.run(r.pick(h.experiments()).name, r.pick(bad));
      return running.then((result) => check(false, `run() ran ${result.name}`));
    }],
    [0.3, () => h.writeReport(r.pick(['', null, undefined, 42, 1n, {}, ...HOSTILE()]))],
    [0.5, () => h.reportHTML(r.pick([[], null, 'x', [null], [{}], [{ name: 'free', question: 1 }], ...HOSTILE()]))],
  ];
  const total = actions.reduce((sum, [w]) => sum + w, 0);
  // FNV-1a over the kinds of call made: equal for two runs of one seed.
  let sequence = 0x811c9dc5;
  const choose = () => {
    let x = r.next() * total;
    let k = 0;
    while (k < actions.length - 1 && (x -= actions[k][0]) >= 0) k++;
    sequence = Math.imul(sequence ^ k, 0x01000193) >>> 0;
    return actions[k][1];
  };

  const judge = (i, error) => {
    if (error instanceof Error && !(error instanceof Violation) && typeof error.code === 'string') {
      codes[error.code] = (codes[error.code] ?? 0) + 1;
    } else {
      note(i, error instanceof Error ? error.stack : String(error));
    }
  };
  for (let i = 0; i < calls; i++) {
    r.call(i);
    try {
      const value = choose()();
      if (value instanceof Promise) pending.push(value.then(() => { ok++; }, (error) => judge(i, error)));
      else ok++;
    } catch (error) {
      judge(i, error);
    }
  }
  for (let k = 0; k < uncoded; k++) {
    if (k % 2 === 0) judge(calls + k, new TypeError('injected: no code'));
    else pending.push(Promise.reject(new TypeError('injected: no code')).catch((error) => judge(calls + k, error)));
  }
  await Promise.all(pending);
  return { calls, ok, codes, sequence, unexpected: unexpected.filter(Boolean), unexpectedCount: unexpected.length, live };
}

// Each function heapscope exports, and the action above that calls it: a new
// export nobody added here fails the run, so it gets fuzzed too.
const COVERS = ['alignedAlloc', 'allocationAt', 'allocatorSnapshot', 'attach', 'allocatorTotals', 'arenas', 'bins', 'chunkPlaces', 'hex',
  'mallocParams', 'tcaches', 'binIndex', 'binRange', 'calloc', 'experiment', 'experiments', 'fastbinIndex',
  'free', 'glibcVersion', 'largebinIndex', 'liveAllocations', 'mainHeapSnapshot', 'mallinfo2', 'malloc', 'mallocInfo', 'mallocTrim',
  'mallocUsableSize', 'mallopt', 'maps', 'mmappedChunkSize', 'pageSize', 'parseMallocInfo', 'parseMaps', 'parseSmaps', 'programBreak',
  'readMemory', 'realloc', 'regionOf', 'reportHTML', 'requestToChunkSize', 'run', 'runPlan', 'sizeClass', 'smallbinIndex',
  'tcacheIndex', 'usableSizeOf', 'walkHeap', 'walkSnapshot', 'writeReport', 'Allocation', 'vis', 'doctor', 'heapSnapshot',
  'readHeapSnapshot', 'diffHeapSnapshots', 'compilePlan', 'CompiledPlan',
  // An Error subclass; constructing one is no call into heapscope.
  'HeapscopeError'];
const unfuzzed = (h, forget) => Object.entries(h).filter(([name, v]) => typeof v === 'function' && (!COVERS.includes(name) || name === forget)).map(([name]) => name);

function freeAll(h) {
  for (const a of h.liveAllocations()) a.free();
}

// ---- Worker: its own addon instance, its own arena ---------------------------

if (!isMainThread) {
  const h = require(path.join(ROOT, 'dist', 'index.js'));
  const { binding } = require(path.join(ROOT, 'dist', 'binding.js'));
  const { seed, calls, foreign } = workerData;
  const report = await fuzz(h, seed, calls, foreign);
  freeAll(h);
  delete report.live;
  parentPort.postMessage({ ...report, liveAtEnd: h.liveAllocations().length, addonLiveAtEnd: binding.liveCount() });
}

// ---- Child: the run itself ----------------------------------------------------

async function child(seed, calls, workers, leak, uncoded, forget) {
  const h = require(path.join(ROOT, 'dist', 'index.js'));
  const { binding } = require(path.join(ROOT, 'dist', 'binding.js'));
  // V8 frees ArrayBuffer backing stores and finishes optimising compiles on
  // background threads (a TurboFan job holds up to a few hundred KiB of
  // malloc'd zone memory): collect, let them finish, collect again.
  const settle = async () => {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 200));
    globalThis.gc();
  };
  // uordblks counts chunks cached in the tcache as in use, and which of the
  // 64 tcache bins hold how many (up to 7 each) depends on the last few
  // thousand calls: up to ~230 KiB that is no leak. Reading it through a
  // plan that first fills every bin of this thread's tcache makes before
  // and after comparable.
  const TCACHE_SIZES = Array.from({ length: 64 }, (_, i) => 24 + 16 * i);
  const fillThenRead = [];
  for (const size of TCACHE_SIZES) for (let k = 0; k < 8; k++) fillThenRead.push({ op: 'malloc', size });
  fillThenRead.forEach((_, i) => fillThenRead.push({ op: 'free', step: i }));
  fillThenRead.push({ op: 'mallinfo' });
  const uordblks = () => h.runPlan(fillThenRead).steps.at(-1).mallinfo.uordblks;

  // One session: worker threads fuzzing alongside the main thread.
  const session = async (sessionSeed, injected = 0) => {
    // Main-thread blocks the workers will try to free (foreign to them).
    const foreign = Array.from({ length: 4 }, () => h.malloc(64));
    const perWorker = Math.floor(calls * 0.1);
    const results = [];
    const running = Array.from({ length: workers }, (_, k) => new Promise((resolve, reject) => {
      const worker = new Worker(SELF, { workerData: { seed: sessionSeed + k + 1, calls: perWorker, foreign: foreign.map((a) => a.address) } });
      worker.once('message', (m) => { results[k] = m; });
      worker.once('error', reject);
      worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${k} exited with ${code}`))));
    }));
    const main = await fuzz(h, sessionSeed, calls - perWorker * workers, [], injected);
    await Promise.all(running);
    for (const a of foreign) a.free();
    delete main.live;
    return [main, ...results];
  };

  // Warm-up: a whole session on another seed, so that what Node and V8
  // allocate once (compiled code, caches, what starting a worker leaves
  // behind) exists before the baseline is read.
  await session(seed ^ 0x5eed);
  freeAll(h);
  await settle();
  const before = uordblks();

  const all = await session(seed, uncoded);
  const [main, ...results] = all;

  const leaked = Array.from({ length: leak }, () => h.malloc(1024));
  for (const a of h.liveAllocations()) if (!leaked.includes(a)) a.free();
  await settle();
  const after = uordblks();

  const problems = [];
  const missing = unfuzzed(h, forget);
  if (missing.length > 0) problems.push(`exported but not fuzzed: ${missing.join(', ')} (add a call and list it in COVERS)`);
  const unexpected = all.reduce((n, x) => n + x.unexpectedCount, 0);
  if (unexpected > 0) problems.push(`${unexpected} errors without a string code or broken invariants, e.g. ${JSON.stringify(all.flatMap((x) => x.unexpected)[0])}`);
  if (h.liveAllocations().length !== 0) problems.push(`${h.liveAllocations().length} allocations still live in the main thread`);
  if (binding.liveCount() !== 0) problems.push(`the addon's live set still holds ${binding.liveCount()} pointers`);
  results.forEach((w, k) => {
    if (w.liveAtEnd !== 0 || w.addonLiveAtEnd !== 0) problems.push(`worker ${k} ended with ${w.liveAtEnd}/${w.addonLiveAtEnd} live`);
  });
  if (Math.abs(after - before) > TOLERANCE) {
    problems.push(`mallinfo2().uordblks moved by ${after - before} bytes (tolerance ±${TOLERANCE})`);
  }
  const codes = {};
  for (const x of all) for (const [c, n] of Object.entries(x.codes)) codes[c] = (codes[c] ?? 0) + n;
  for (const a of leaked) a.free();
  return {
    seed, calls: all.reduce((n, x) => n + x.calls, 0), workers, ok: all.reduce((n, x) => n + x.ok, 0), codes,
    sequence: all.map((x) => x.sequence.toString(16)),
    uordblks: { before, after, delta: after - before, tolerance: TOLERANCE }, problems,
  };
}

// ---- Parent: spawn the child, judge how it ended ------------------------------

const signed = (n) => `${n >= 0 ? '+' : ''}${n}`;

function parent() {
  const seed = option('seed', 'HEAPSCOPE_FUZZ_SEED', Math.floor(Math.random() * 2 ** 31)) >>> 0;
  const calls = option('calls', 'HEAPSCOPE_FUZZ_CALLS', 100_000);
  const workers = option('workers', undefined, 2);
  const leak = option('leak', undefined, 0);
  const uncoded = option('uncoded', undefined, 0);
  const forget = process.argv.includes('--forget') ? process.argv[process.argv.indexOf('--forget') + 1] : '';
  process.stdout.write(`heapscope fuzz: seed ${seed}, ${calls} calls, ${workers} worker threads ` +
    `(reproduce: node scripts/fuzz.mjs --seed ${seed} --calls ${calls})\n`);
  const started = Date.now();
  // A child that hangs (a deadlock in the addon) fails the run instead of
  // holding it. The suite's runs take about 1.5 ms a call (10,000 calls in
  // 15 s); an ASan build is slower: 30 ms a call, ten minutes at least.
  const limit = Math.max(600_000, calls * 30);
  const run = spawnSync(process.execPath, ['--single-threaded', '--expose-gc', SELF, '--child', '--seed', String(seed), '--calls', String(calls),
    '--workers', String(workers), '--leak', String(leak), '--uncoded', String(uncoded), '--forget', forget],
  { encoding: 'utf8', maxBuffer: 64 << 20, timeout: limit, killSignal: 'SIGKILL' });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (run.error?.code === 'ETIMEDOUT') {
    process.stdout.write(`FAIL: the child did not finish within ${limit / 1000} s and was killed\n${run.stderr}\n`);
    return 1;
  }
  if (run.signal !== null) {
    process.stdout.write(`FAIL: the child died by ${run.signal} after ${seconds} s\n${run.stderr}\n`);
    return 1;
  }
  const last = run.stdout.trim().split('\n').at(-1) ?? '';
  let report;
  try {
    report = JSON.parse(last);
  } catch {
    process.stdout.write(`FAIL: the child exited with ${run.status} and no report\n${run.stdout}\n${run.stderr}\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
  if (run.status !== 0 || report.problems.length > 0) {
    process.stdout.write(`FAIL (${seconds} s): ${report.problems.join('; ') || `exit code ${run.status}`}\n`);
    return 1;
  }
  process.stdout.write(`ok: ${report.calls} calls in ${seconds} s, ${report.ok} succeeded, errors by code ` +
    `${JSON.stringify(report.codes)}; uordblks ${signed(report.uordblks.delta)} B (tolerance ±${report.uordblks.tolerance})\n`);
  return 0;
}

if (isMainThread) {
  if (process.argv.includes('--child')) {
    const forget = process.argv[process.argv.indexOf('--forget') + 1];
    const report = await child(option('seed') >>> 0, option('calls'), option('workers'), option('leak'), option('uncoded'), forget);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exitCode = report.problems.length > 0 ? 1 : 0;
  } else {
    process.exitCode = parent();
  }
}
