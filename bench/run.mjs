// `npm run bench`: what heapscope's calls cost against the same work done in
// C and through koffi, measured in this process and this run.
//
// The C baselines (bench/c/baseline.c) are compiled with gcc into a
// temporary shared library at the start of the run and called through koffi
// once per round: each call runs its loop n times inside this process, so
// the three sides share the same heap, the same glibc and the same moment.
// Each figure is the median over ROUNDS rounds (after at least WARMUP
// discarded ones, and until SETTLED rounds in a row took no page fault: see
// settle) of nanoseconds per operation; the sides take turns inside each round so
// that drift (frequency scaling, other load) hits them alike.
//
// Usage: node bench/run.mjs [--json] [--rounds N] [--only GROUP,...] [--record | --check] | --recorded
//   --json     every row as JSON: its id, figures, ratio, what the ratio is against and the target
//   --only     measure only these groups: per-call, plan, maps, walk, bins, pid, tour
//   --record   write the ratios measured into this machine's record in bench/figures.json (the figures
//              --check compares with); with --only, the other rows stay as recorded and the new ones
//              carry their own environment; other machines' records stay as they are
//   --check    exit 1 when a ratio is more than 25% above the one this machine's record holds, in this
//              run and again in a fresh process that measures its group alone (and at once when
//              bench/figures.json holds no record of this machine)
//   --recorded print each machine's record, row by row, as the README's tables; measure nothing
// The guard is run by hand, not in CI: ratios move with the machine's load.
// A machine is its CPU model and count: the ratios of one say little of
// another's (a plan item's C loop, a system call, took 361 ns on one of the
// rounds' machines and 1.77 us on the other: bench/rounds.md), so each is
// checked against its own record.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const args = process.argv.slice(2);
const json = args.includes('--json');
const record = args.includes('--record');
const check = args.includes('--check');
const roundsArg = args.indexOf('--rounds');
const ROUNDS = roundsArg >= 0 ? Number(args[roundsArg + 1]) : 21;
const GROUPS = ['per-call', 'plan', 'maps', 'walk', 'bins', 'pid', 'tour'];
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? args[onlyArg + 1].split(',') : GROUPS;
for (const group of only) if (!GROUPS.includes(group)) throw new Error(`--only: unknown group ${group}; groups: ${GROUPS.join(', ')}`);
const FIGURES = path.join(ROOT, 'bench', 'figures.json');
/** How much worse than the recorded figure a ratio may be before --check fails. */
const SLACK = 1.25;
const WARMUP = 3;
/** The machine this run measures, as its record is keyed (machineOf). */
const MACHINE = machineOf({ cpu: os.cpus()[0]?.model, cpus: os.cpus().length });
/** The records as they were when the run started, one a machine. */
const RECORDS = fs.existsSync(FIGURES) ? JSON.parse(fs.readFileSync(FIGURES, 'utf8')).records : [];

// The record alone needs neither the build nor koffi.
if (args.includes('--recorded')) {
  process.stdout.write(`${recordedTables(RECORDS)}\n`);
  process.exit(0);
}
// A run that records compares with nothing but itself.
if (record && check) {
  process.stderr.write('bench: --record and --check exclude each other: check against the record first, then record.\n');
  process.exit(2);
}
// A guard with nothing to compare with says so before it measures anything.
if (check && recordOf(RECORDS, MACHINE) === undefined) {
  process.stderr.write(`bench --check: bench/figures.json holds no record of this machine (${MACHINE}); it holds ${RECORDS.map((r) => machineOf(r.environment)).join('; ') || 'none'}. ` +
    'Record one first with `npm run bench -- --record`, before the change to be checked.\n');
  process.exit(1);
}

// The package as users load it (package.json main), as they call it: `h.name()`.
const h = require(ROOT);
// The raw addon, only to split a plan's cost into JavaScript and native time.
const { binding } = require(path.join(ROOT, 'dist', 'binding.js'));
const { compiledPlanId } = require(path.join(ROOT, 'dist', 'plan.js'));
const koffi = require('koffi');

// ---- The C baseline, compiled now -------------------------------------------

function compileBaseline() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-bench-'));
  const library = path.join(dir, 'baseline.so');
  execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-o', library, path.join(ROOT, 'bench', 'c', 'baseline.c')]);
  const lib = koffi.load(library);
  fs.rmSync(dir, { recursive: true, force: true }); // mapped already
  return {
    mallocFree: lib.func('uint64_t bench_malloc_free(uint64_t size, uint64_t n)'),
    usableSize: lib.func('uint64_t bench_usable_size(uint64_t n)'),
    programBreak: lib.func('uint64_t bench_program_break(uint64_t n)'),
    mallinfo2: lib.func('uint64_t bench_mallinfo2(uint64_t n)'),
    chunkHeader: lib.func('uint64_t bench_chunk_header(uint64_t n)'),
    items: lib.func('uint64_t bench_items(const uint64_t *sizes, uint64_t count, uint64_t n)'),
    maps: lib.func('uint64_t bench_maps(uint64_t n, int change)'),
    walk: lib.func('uint64_t bench_walk(const uint8_t *bytes, uint64_t start, uint64_t end, uint64_t n, _Out_ uint64_t *out)'),
    bins: lib.func('uint64_t bench_bins(const uint8_t *bytes, uint64_t base, uint64_t length, const uint64_t *lists, uint64_t nlists, uint64_t system_mem, int64_t safe_linking, uint64_t n, _Out_ uint64_t *out)'),
    readRemoteWindows: lib.func('uint64_t bench_read_remote_windows(int64_t pid, uint64_t address, uint64_t length, uint64_t window, _Out_ uint64_t *got)'),
    fillHeap: lib.func('uint64_t bench_fill_heap(const uint64_t *sizes, uint64_t count, uint64_t n, uint64_t free_every)'),
    releaseHeap: lib.func('void bench_release_heap(void)'),
  };
}

// ---- What a user could pick instead: libc through koffi ---------------------

function koffiLibc() {
  const libc = koffi.load('libc.so.6');
  const Mallinfo2 = koffi.struct('heapscope_bench_mallinfo2', Object.fromEntries(
    ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost']
      .map((field) => [field, 'size_t']),
  ));
  const Iovec = koffi.struct('heapscope_bench_iovec', { iov_base: 'uintptr_t', iov_len: 'size_t' });
  return {
    malloc: libc.func('void *malloc(size_t)'),
    free: libc.func('void free(void *)'),
    usableSize: libc.func('size_t malloc_usable_size(void *)'),
    sbrk: libc.func('void *sbrk(intptr_t)'),
    mallinfo2: libc.func(`${koffi.type(Mallinfo2).name} mallinfo2()`),
    // The same safe read heapscope does (a plain load would crash on a bad pointer).
    processVmReadv: libc.func(
      `intptr_t process_vm_readv(int, const ${koffi.type(Iovec).name} *, unsigned long, ` +
        `const ${koffi.type(Iovec).name} *, unsigned long, unsigned long)`,
    ),
  };
}

// ---- Timing -------------------------------------------------------------------

const hr = () => process.hrtime.bigint();
// Results land here so that no loop body is dead code.
export let sink;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** Runs each side's round function in turn, `rounds` times after settle()'s warm-up; medians of ns per op, and what the warm-up took. */
function compare(sides, rounds = ROUNDS) {
  const samples = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  const warmup = settle(() => { for (const fn of Object.values(sides)) fn(); });
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn] of Object.entries(sides)) samples[name].push(fn());
  }
  return { ...Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])), warmup };
}

/**
 * Runs `round` (every side once) at least WARMUP times, and on until
 * SETTLED rounds in a row took no page fault, at most SETTLE_MAX times:
 * until V8's heap has settled, the objects a round makes land in pages the
 * process touches for the first time, a fault each (~10 µs a page on a
 * machine where faults are dear), a cost the process pays once, not per
 * operation (a plan's results took 32 faults a run for 15 rounds in a row,
 * after two rounds with none, then none). Says how many rounds it took,
 * whether it settled, and the faults of the last.
 */
function settle(round) {
  for (let rounds = 1, calm = 0; ; rounds++) {
    const before = minorFaults();
    round();
    const faults = minorFaults() - before;
    calm = faults === 0 ? calm + 1 : 0;
    if (rounds >= WARMUP && (calm >= SETTLED || rounds >= SETTLE_MAX)) return { rounds, settled: calm >= SETTLED, faults };
  }
}
const minorFaults = () => process.resourceUsage().minorPageFault;
const SETTLED = 3;
const SETTLE_MAX = 30;

// ---- Per call -----------------------------------------------------------------

function perCallRows(c, k) {
  const N = 20_000;
  const block = h.malloc(32);
  const at = Number(block.address);
  const kBlock = k.malloc(32);
  const header = Buffer.alloc(16);
  const fields = new Float64Array(10);
  const headerAddress = koffi.address(header);
  const rows = [];

  rows.push(['malloc-free', 'malloc(32) + free', compare({
    heapscope: () => { const t = hr(); for (let i = 0; i < N; i++) h.malloc(32).free(); return Number(hr() - t) / N; },
    c: () => Number(c.mallocFree(32, N)) / N,
    koffi: () => { const t = hr(); for (let i = 0; i < N; i++) k.free(k.malloc(32)); return Number(hr() - t) / N; },
    raw: () => { const t = hr(); for (let i = 0; i < N; i++) binding.free(binding.malloc(32)); return Number(hr() - t) / N; },
  })]);
  rows.push(['usable-size', 'usableSize', compare({
    heapscope: () => { const t = hr(); for (let i = 0; i < N; i++) sink = block.usableSize; return Number(hr() - t) / N; },
    c: () => Number(c.usableSize(N)) / N,
    koffi: () => { const t = hr(); for (let i = 0; i < N; i++) sink = k.usableSize(kBlock); return Number(hr() - t) / N; },
    // The pointer as the TypeScript layer passes it: a number (a bigint takes the addon's slower path).
    raw: () => { const t = hr(); for (let i = 0; i < N; i++) sink = binding.usableSize(at); return Number(hr() - t) / N; },
  })]);
  rows.push(['program-break', 'programBreak', compare({
    heapscope: () => { const t = hr(); for (let i = 0; i < N; i++) sink = h.programBreak(); return Number(hr() - t) / N; },
    c: () => Number(c.programBreak(N)) / N,
    koffi: () => { const t = hr(); for (let i = 0; i < N; i++) sink = k.sbrk(0); return Number(hr() - t) / N; },
    raw: () => { const t = hr(); for (let i = 0; i < N; i++) sink = binding.programBreak(); return Number(hr() - t) / N; },
  })]);
  rows.push(['mallinfo2', 'mallinfo2() object', compare({
    heapscope: () => { const t = hr(); for (let i = 0; i < N; i++) sink = h.mallinfo2().uordblks; return Number(hr() - t) / N; },
    c: () => Number(c.mallinfo2(N)) / N,
    koffi: () => { const t = hr(); for (let i = 0; i < N; i++) sink = k.mallinfo2().uordblks; return Number(hr() - t) / N; },
    raw: () => { const t = hr(); for (let i = 0; i < N; i++) { binding.mallinfo(fields); sink = fields[7]; } return Number(hr() - t) / N; },
  })]);
  rows.push(['chunk-header', 'chunk header read', compare({
    heapscope: () => { const t = hr(); for (let i = 0; i < N; i++) sink = block.chunk.size; return Number(hr() - t) / N; },
    c: () => Number(c.chunkHeader(N)) / N,
    koffi: () => {
      const t = hr();
      for (let i = 0; i < N; i++) {
        k.processVmReadv(process.pid, [{ iov_base: headerAddress, iov_len: 16 }], 1, [{ iov_base: kBlock - 16n, iov_len: 16 }], 1, 0);
        sink = header.readBigUInt64LE(8) & ~7n;
      }
      return Number(hr() - t) / N;
    },
    raw: () => { const t = hr(); for (let i = 0; i < N; i++) sink = binding.chunkHeader(block.address)[1]; return Number(hr() - t) / N; },
  })]);
  block.free();
  k.free(kBlock);
  return rows.map(([id, what, m]) => ({
    id, what, group: 'per call', heapscope: m.heapscope, c: m.c, koffi: m.koffi, raw: m.raw, warmup: m.warmup,
    ratio: m.heapscope / m.koffi, against: 'koffi', baseline: m.koffi, target: 1,
  }));
}

// ---- Plans and the size sweep -------------------------------------------------

function itemSteps(sizes) {
  const steps = [];
  for (const size of sizes) {
    const at = steps.length;
    steps.push({ op: 'malloc', size }, { op: 'header', step: at }, { op: 'usableSize', step: at }, { op: 'free', step: at });
  }
  return steps;
}

function encodeRaw(steps) {
  // The plan's wire format (lib/plan.ts): op, ref, a, b per step.
  const codes = { malloc: 1n, header: 7n, usableSize: 8n, free: 5n };
  const words = new BigUint64Array(steps.length * 4);
  steps.forEach((s, i) => {
    words[i * 4] = codes[s.op];
    if ('step' in s) words[i * 4 + 1] = BigInt(s.step);
    if ('size' in s) words[i * 4 + 2] = BigInt(s.size);
  });
  return words;
}

// Three rows: the steps checked by every run, the same plan compiled once
// (compilePlan) and run without being checked again, and, with no target,
// what reading the compiled plan's results adds (runPlan decodes its
// records into StepResults when `steps` is first read, lib/plan.ts).
function planRows(c, id, what, sizes) {
  const steps = itemSteps(sizes);
  const compiled = h.compilePlan(steps);
  // The compiled plan's id: its native call alone runs the words the addon holds for it, checked once.
  const compiledId = compiledPlanId(compiled);
  const raw = encodeRaw(steps);
  // The records written in place, into an array kept between plans, as runPlan does.
  const records = new BigUint64Array(raw.length * 4);
  const cSizes = new BigUint64Array(sizes.map(BigInt));
  const n = sizes.length;
  const m = compare({
    heapscope: () => { const t = hr(); h.runPlan(steps); return Number(hr() - t) / n; },
    compiled: () => { const t = hr(); h.runPlan(compiled); return Number(hr() - t) / n; },
    read: () => { const t = hr(); sink = h.runPlan(compiled).steps; return Number(hr() - t) / n; },
    native: () => { const t = hr(); binding.runPlan(raw, false, records); return Number(hr() - t) / n; },
    held: () => { const t = hr(); binding.runPlan(raw, false, records, undefined, compiledId); return Number(hr() - t) / n; },
    c: () => Number(c.items(cSizes, n, n)) / n,
  });
  const row = (rowId, rowWhat, heapscope, native = m.native) => ({
    id: rowId, what: rowWhat, group: 'plan', heapscope, c: m.c, native, warmup: m.warmup,
    ratio: heapscope / m.c, nativeRatio: native / m.c, against: 'C', baseline: m.c, target: 1.2,
  });
  return [
    row(id, what, m.heapscope),
    row(`${id}-compiled`, `${what.replace(', per item', ', compiled once, per item')}`, m.compiled, m.held),
    {
      ...row(`${id}-read`, what.replace(', per item', ', compiled once, then reading its results (a StepResult each, decoded when `steps` is first read, and their collection), per item'), m.read - m.compiled),
      target: undefined, runAndRead: m.read, compiledRun: m.compiled,
    },
  ];
}

// ---- maps() --------------------------------------------------------------------

// maps() reads the map every call, but parses a text only when it differs
// from the last one parseMaps met (lib/maps/parse.ts): both paths are
// timed. For the changed map, a 64 MiB block (always mmapped: above glibc's
// largest dynamic threshold) is made or freed, untimed, before each call,
// and the C loop it is compared with makes or frees one before each read.

function mapsRows(c) {
  const N = 20;
  const BIG = 64 << 20;
  const text = fs.readFileSync('/proc/self/maps', 'utf8');
  // Two texts in turns: neither is the last one parsed.
  const texts = [text, text.slice(0, text.lastIndexOf('\n', text.length - 2) + 1)];
  let big;
  const changed = () => {
    let total = 0n;
    for (let i = 0; i < N; i++) {
      if (big === undefined) big = h.malloc(BIG);
      else { big.free(); big = undefined; }
      const t = hr();
      h.maps();
      total += hr() - t;
    }
    return Number(total) / N;
  };
  const m = compare({
    changed,
    unchanged: () => { const t = hr(); for (let i = 0; i < N; i++) h.maps(); return Number(hr() - t) / N; },
    read: () => { const t = hr(); for (let i = 0; i < N; i++) fs.readFileSync('/proc/self/maps', 'utf8'); return Number(hr() - t) / N; },
    parse: () => { const t = hr(); for (let i = 0; i < N; i++) h.parseMaps(texts[i & 1]); return Number(hr() - t) / N; },
    parseAgain: () => {
      h.parseMaps(text); // the last text parsed was the parse side's
      const t = hr();
      for (let i = 0; i < N; i++) h.parseMaps(text);
      return Number(hr() - t) / N;
    },
    c: () => Number(c.maps(N, 0)) / N,
    cChanged: () => Number(c.maps(N, 1)) / N,
  });
  big?.free();
  const regions = h.maps().length;
  const row = (id, what, heapscope, parse, baseline) => ({
    id, what, group: 'maps', heapscope, c: baseline, read: m.read, parse, ratio: heapscope / baseline, against: 'C', baseline, target: 1.5, warmup: m.warmup,
  });
  return [
    row('maps', `maps() read + parse, the map changed since the last call (${regions} regions; the C loop's map changed the same way)`, m.changed, m.parse, m.cChanged),
    row('maps-unchanged', `maps() read, the same map as the last call: its text is not parsed again (${regions} regions)`, m.unchanged, m.parseAgain, m.c),
  ];
}

// ---- The heap walk ---------------------------------------------------------------
// A heap of at least a million chunks (a mix of tcache, fastbin and
// small-bin sizes) with every 16th block freed, so that the walk meets free
// and cached chunks too, made twice in this process. First by C
// (bench_fill_heap), as a program's own code makes its heap: the walk
// (walkSnapshot, a pure pass over one snapshot) and the C loop (bench_walk)
// read the same snapshot bytes, and both must count the same chunks, or the
// comparison is void; walkHeap() is timed too (the snapshot itself, the
// walk, the lists and the places; the HeapChunk objects are made when
// `chunks` is first read, timed apart with their collection, in rounds of
// their own: see wholeWalks). Then by
// one plan of kept mallocs, whose million handles stay live: the same
// walkHeap() timed again, with no target, shows what a caller's own million
// objects add (V8's collections of the walk's garbage mark them each time).

const WALK_CHUNKS = 1_000_000;
/** walkHeap()'s target per chunk, in nanoseconds. */
const WALK_HEAP_TARGET = 100;
/** Live handles in walk-heap-few-handles. */
const FEW_HANDLES = 1000;

const WALK_SIZES = [24, 40, 24, 120];
const WALK_FREE_EVERY = 16;

/** WALK_CHUNKS blocks of WALK_SIZES in turn, every WALK_FREE_EVERY-th freed, kept in this process's heap by handles until release(). */
function walkHeap() {
  const steps = Array.from({ length: WALK_CHUNKS }, (_, i) => ({ op: 'malloc', size: WALK_SIZES[i % WALK_SIZES.length] }));
  const { kept } = h.runPlan(steps, { keep: true });
  const blocks = [...kept.values()];
  for (let i = 0; i < blocks.length; i += WALK_FREE_EVERY) blocks[i].free();
  return { release: () => { for (let i = 0; i < blocks.length; i++) if (i % WALK_FREE_EVERY !== 0) blocks[i].free(); } };
}

/** The same heap made by C, kept until release(). */
function walkHeapInC(c) {
  const live = Number(c.fillHeap(BigUint64Array.from(WALK_SIZES, BigInt), WALK_SIZES.length, WALK_CHUNKS, WALK_FREE_EVERY));
  if (live === 0) throw new Error('bench_fill_heap could not map room for its pointers');
  return { release: () => c.releaseHeap() };
}

/**
 * Whole walks, timed per chunk in turns with the event loop (see turns).
 * walkHeap() alone first: rounds that read no chunks, so that no round
 * pays for collecting the objects a round before made. With `read`, then
 * rounds of a walk and the reading of all its chunks, timed together: what
 * reading adds is those rounds' median less the walk's, which counts the
 * collection of the objects read (it falls in the next round's walk). When
 * every round read its chunks, each walk was timed with that collection in
 * it, and a walk that makes no object looked about twice as slow as it is.
 */
async function wholeWalks({ read = false } = {}) {
  let walked = 0;
  const attempts = [];
  const walkOnce = () => {
    const w = h.walkHeap();
    walked = w.main.totals.chunks;
    attempts.push(w.attempts);
    return w;
  };
  const alone = await turns({
    heapscope: () => {
      const t = hr();
      walkOnce();
      return Number(hr() - t) / walked;
    },
  }, 5, WARMUP);
  if (!read) return { walk: alone.heapscope, walked, attempts };
  const reading = await turns({
    heapscope: () => {
      const t = hr();
      sink = walkOnce().main.chunks.length;
      return Number(hr() - t) / walked;
    },
  }, 5, WARMUP);
  return { walk: alone.heapscope, walkAndRead: reading.heapscope, read: reading.heapscope - alone.heapscope, walked, attempts: attempts.slice(0, WARMUP + 5) };
}

async function heapWalkRows(c) {
  const rows = [];
  const heap = walkHeapInC(c);
  let m;
  try {
    const snap = h.mainHeapSnapshot();
    const out = new BigUint64Array(5);
    const walk = h.walkSnapshot(snap.bytes, snap.base, snap);
    c.walk(snap.bytes, snap.start, snap.end, 1, out);
    const chunks = walk.table.count;
    if (walk.ending !== 'top' || Number(out[0]) !== chunks || Number(out[4]) !== walk.table.sizes[walk.top]) {
      throw new Error(`the JS and C walks disagree: ${chunks} chunks (${walk.ending}${walk.reason ? `: ${walk.reason}` : ''}) vs C ${out[0]}, top ${out[4]}`);
    }
    m = compare({
      heapscope: () => { const t = hr(); sink = h.walkSnapshot(snap.bytes, snap.base, snap).table.count; return Number(hr() - t) / chunks; },
      c: () => Number(c.walk(snap.bytes, snap.start, snap.end, 1, out)) / chunks,
    });
    rows.push({
      id: 'walk-snapshot',
      what: `heap walk per chunk: walkSnapshot over one [heap] snapshot (${chunks} chunks, ${(snap.bytes.length / 2 ** 20).toFixed(0)} MiB)`,
      group: 'heap walk', heapscope: m.heapscope, c: m.c, ratio: m.heapscope / m.c, against: 'C', baseline: m.c, target: 2, chunks,
      perSecond: 1e9 / m.heapscope, cPerSecond: 1e9 / m.c, warmup: m.warmup,
    });
    // Each whole walk's snapshot is read from a child forked for it: V8's
    // helper threads free into main_arena while a copy this big is made.
    const w = await wholeWalks({ read: true });
    rows.push(
      {
        id: 'walk-heap',
        what: `walkHeap() per chunk of a heap made in C: snapshot + walk + tcache + places, the chunk objects left unmade (${w.walked} chunks, ${w.attempts.join('/')} snapshots a walk)`,
        // The issue's target is absolute, 100 ns a chunk: the ratio is against that.
        group: 'heap walk', heapscope: w.walk, c: m.c, ratio: w.walk / WALK_HEAP_TARGET, against: `${WALK_HEAP_TARGET} ns`, baseline: WALK_HEAP_TARGET, target: 1, chunks: w.walked, attempts: w.attempts,
        perSecond: 1e9 / w.walk,
      },
      {
        id: 'walk-heap-chunks',
        what: `then reading a walk's chunks: a HeapChunk object each, made on first read, and their collection (${w.walked} chunks)`,
        // No target of its own: what a caller that wants every object pays after the walk.
        group: 'heap walk', heapscope: w.read, c: m.c, ratio: w.read / WALK_HEAP_TARGET, against: `${WALK_HEAP_TARGET} ns`, baseline: WALK_HEAP_TARGET, chunks: w.walked,
        // A difference of two medians: within their noise it can come out at or below zero.
        perSecond: w.read > 0 ? 1e9 / w.read : undefined, walkAndRead: w.walkAndRead,
      },
    );
    // A learner's heap: a thousand blocks of their own live among the million.
    const few = Array.from({ length: FEW_HANDLES }, () => h.malloc(32));
    try {
      const f = await wholeWalks();
      rows.push({
        id: 'walk-heap-few-handles',
        what: `walkHeap() per chunk of the same heap made in C, with ${FEW_HANDLES} handles of malloc(32) live (${f.walked} chunks, ${f.attempts.join('/')} snapshots a walk)`,
        // No target of its own: what the handles add to walk-heap.
        group: 'heap walk', heapscope: f.walk, c: m.c, ratio: f.walk / WALK_HEAP_TARGET, against: `${WALK_HEAP_TARGET} ns`, baseline: WALK_HEAP_TARGET, chunks: f.walked, attempts: f.attempts,
        perSecond: 1e9 / f.walk,
      });
    } finally {
      for (const a of few) a.free();
    }
  } finally {
    heap.release();
  }
  const handles = walkHeap();
  try {
    const w = await wholeWalks();
    rows.push({
      id: 'walk-heap-handles',
      what: `walkHeap() per chunk of the same heap made by a plan whose million handles stay live (${w.walked} chunks, ${w.attempts.join('/')} snapshots a walk)`,
      // No target of its own: the caller's objects, marked by every collection of the walk's garbage.
      group: 'heap walk', heapscope: w.walk, c: m.c, ratio: w.walk / WALK_HEAP_TARGET, against: `${WALK_HEAP_TARGET} ns`, baseline: WALK_HEAP_TARGET, chunks: w.walked, attempts: w.attempts,
      perSecond: 1e9 / w.walk,
    });
  } finally {
    handles.release();
  }
  return rows;
}

// ---- The bins' decode ----------------------------------------------------------------
// main_arena's lists, long ones (about 50,000 chunks each in a fastbin, a
// small bin and a large bin), of a C program that made them
// (bench/c/bins-target.c, with bench_fill_bins), decoded from one snapshot
// of it (attach(pid).snapshot()): the decoder bins() runs on a snapshot's
// first call (lib/allocator/bins.ts, over the snapshot's image, this
// process's or another's; the rest of that call's decode, the walk and the
// tcaches, is timed by the walk rows), against its C twin following the
// same lists through the same copy of [heap]. Both must count the same
// chunks, or the comparison is void. The program makes the same heap in
// every run: made in this process, whose heap its own history shapes, the
// lists took the C twin 20-55 ns a chunk from one run to the next.

const BINS_ROUNDS = 50_000;

async function binsRows(c) {
  const { decodeAllocator } = require(path.join(ROOT, 'dist', 'allocator', 'state.js'));
  const { decodeBins } = require(path.join(ROOT, 'dist', 'allocator', 'bins.js'));
  const { sizeRule } = require(path.join(ROOT, 'dist', 'allocator', 'bin-walk.js'));
  const { program, remove } = compileTarget('bins-target', ['baseline.c']);
  try {
    const target = await startTarget(program, [BINS_ROUNDS]);
    try {
      const s = h.attach(target.pid).snapshot();
      if (!s.consistent) throw new Error(`the snapshot of bins-target was torn: ${s.reason}`);
      const { arenas } = decodeAllocator(s.image);
      const arena = arenas.arenas[0];
      const state = arenas.states[0];
      const heap = s.image.heap;
      const bytes = s.image.memory.read(heap.start, Number(heap.end - heap.start));
      // A list's rows for the C twin: kind, head, header, smallest and largest size.
      const rows = [];
      state.fastbins.forEach((head, index) => {
        const rule = sizeRule('fastbin', index);
        rows.push(0n, head, 0n, BigInt(rule.min), BigInt(rule.max));
      });
      for (const b of state.bins) {
        if (b.index > 126) continue;
        const rule = sizeRule('regular', b.index);
        rows.push(b.index >= 64 ? 2n : 1n, b.fd, b.address, BigInt(rule.min), BigInt(rule.max ?? Number.MAX_SAFE_INTEGER));
      }
      const lists = BigUint64Array.from(rows);
      const out = new BigUint64Array(1);
      const cSide = () => c.bins(bytes, heap.start, bytes.length, lists, lists.length / 5, arena.systemMem, s.image.layout.safeLinking ? 1 : 0, 1, out);
      const decoded = decodeBins(s.image, arena, state);
      const all = [...decoded.fastbins, ...decoded.unsorted, ...decoded.smallbins, ...decoded.largebins];
      const listed = all.reduce((sum, b) => sum + b.count, 0);
      cSide();
      if (!decoded.complete || Number(out[0]) !== listed) {
        throw new Error(`the JS and C bins disagree: ${listed} chunks${decoded.complete ? '' : ' (a list cut short)'} vs C ${out[0]}`);
      }
      // Each kind of list the row is about holds its 50,000 chunks but the 7 the tcache took of the fastbin's and the small bin's.
      const longest = (bins) => Math.max(0, ...bins.map((b) => b.count));
      const kinds = { fastbin: longest(decoded.fastbins), smallbin: longest(decoded.smallbins), largebin: longest(decoded.largebins) };
      for (const [kind, count] of Object.entries(kinds)) {
        if (count < BINS_ROUNDS - 7) throw new Error(`the longest ${kind} list holds ${count} chunks, fewer than the ${BINS_ROUNDS - 7} bins-target made for it`);
      }
      const m = compare({
        heapscope: () => { const t = hr(); sink = decodeBins(s.image, arena, state).complete; return Number(hr() - t) / listed; },
        c: () => Number(cSide()) / listed,
      });
      return [{
        id: 'bins-decode',
        what: `bins' decode per listed chunk: main_arena's lists in one snapshot of a C program that made them (${listed} chunks; the longest fastbin, small and large bin lists ${kinds.fastbin}, ${kinds.smallbin} and ${kinds.largebin}), as bins() decodes them`,
        group: 'bins', heapscope: m.heapscope, c: m.c, ratio: m.heapscope / m.c, against: 'C', baseline: m.c, chunks: listed, warmup: m.warmup,
      }];
    } finally {
      await target.stop();
    }
  } finally {
    remove();
  }
}

// ---- Another process (--pid) ------------------------------------------------------
// bench/c/heap-target.c, compiled now, is the other process: single-threaded,
// so its whole heap is main_arena's, and quiet once it has printed "ready"
// (it then waits for its stdin to end). The walk row gives it the heap the
// walk rows make here (the same sizes, the same blocks freed) and times
// attach(pid).walk() against walkHeap() here, per chunk, in turns. The
// doctor row gives it a [heap] of just over 1 GiB (a million blocks of 64
// to 3000 bytes, every 8th freed, each written) and times
// attach(pid).doctor() against reading that [heap] in C as its header copy
// reads it: a window at a time, each into the same buffer.

/** WINDOW in lib/remote/header-snapshot.ts: the bytes of the heap a header copy reads at a time. */
const HEADER_COPY_WINDOW = 1 << 20;

/** bench/c/NAME.c (and the `linked` files of bench/c) compiled now into a program. */
function compileTarget(name = 'heap-target', linked = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-bench-target-'));
  const program = path.join(dir, name);
  const source = (file) => path.join(ROOT, 'bench', 'c', file);
  execFileSync('gcc', ['-O2', '-o', program, source(`${name}.c`), ...linked.map(source)]);
  return { program, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Starts the target with `args`; resolves once it is ready, with its pid and stop(). */
function startTarget(program, args) {
  const child = spawn(program, args.map(String), { stdio: ['pipe', 'pipe', 'inherit'] });
  const ended = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    child.stdin.end();
    await ended;
  };
  return new Promise((resolve, reject) => {
    let seen = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${path.basename(program)} ${args.join(' ')} exited (${code}) before it was ready`)));
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      if (seen.includes('\n')) resolve({ pid: child.pid, stop });
    });
  });
}

/**
 * Runs each side `rounds` times in turns after `discard` discarded turns;
 * the medians. The event loop turns before each call, untimed, as it does
 * between the calls of a program: Node frees a Buffer over memory an addon
 * mapped (each copy of a heap) only from its event loop, and in a loop that
 * never let it turn, ten walks of a big heap left a GiB of copies mapped,
 * whose page tables every later fork copied again.
 */
async function turns(sides, rounds, discard = 1) {
  const samples = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  for (let round = 0; round < discard + rounds; round++) {
    for (const [name, fn] of Object.entries(sides)) {
      await new Promise((resolve) => setImmediate(resolve));
      const value = fn();
      if (round >= discard) samples[name].push(value);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
}

async function pidRows(c) {
  const { program, remove } = compileTarget();
  const rows = [];
  try {
    const target = await startTarget(program, [WALK_CHUNKS, WALK_FREE_EVERY, ...WALK_SIZES]);
    const heap = walkHeap();
    try {
      const other = h.attach(target.pid);
      let remoteChunks = 0;
      let localChunks = 0;
      const m = await turns({
        heapscope: () => {
          const t = hr();
          const w = other.walk({ arena: 'main' });
          if (!w.consistent) throw new Error(`the target's copy was torn: ${w.problems.join('; ')}`);
          remoteChunks = w.main.totals.chunks;
          return Number(hr() - t) / remoteChunks;
        },
        local: () => { const t = hr(); localChunks = h.walkHeap({ arena: 'main' }).main.totals.chunks; return Number(hr() - t) / localChunks; },
      }, 5);
      rows.push({
        id: 'pid-walk',
        what: `attach(pid).walk() per chunk, main_arena of another process (${remoteChunks} chunks) against walkHeap() here (${localChunks})`,
        group: 'pid', heapscope: m.heapscope, local: m.local, ratio: m.heapscope / m.local, against: 'in-process', baseline: m.local, target: 1.5,
        chunks: remoteChunks,
      });
    } finally {
      heap.release();
      await target.stop();
    }
    // The doctor's header copy reads the heap a window at a time into one array (WINDOW in lib/remote/header-snapshot.ts); one
    // process_vm_readv into fresh memory, the baseline before, took 0.5–1.9 s from one run to the next here, mostly page faults.
    const big = await startTarget(program, [1_000_000, 8, 64, 200, 1000, 3000]);
    try {
      const other = h.attach(big.pid);
      const region = other.maps().find((r) => r.path === '[heap]');
      const length = region.end - region.start;
      const got = new BigUint64Array(1);
      let resident = 0;
      const m = await turns({
        heapscope: () => {
          const t = hr();
          const d = other.doctor();
          const elapsed = Number(hr() - t);
          if (!d.snapshot.consistent) throw new Error('the target\'s copy was torn');
          resident = d.rss.total;
          return elapsed;
        },
        c: () => {
          const elapsed = Number(c.readRemoteWindows(big.pid, region.start, length, HEADER_COPY_WINDOW, got));
          if (got[0] !== length) throw new Error(`process_vm_readv read ${got[0]} of ${length} bytes`);
          return elapsed;
        },
      }, 3);
      rows.push({
        id: 'pid-doctor',
        what: `attach(pid).doctor() of a process with a ${(Number(length) / 2 ** 30).toFixed(2)} GiB [heap] (${(resident / 2 ** 30).toFixed(2)} GiB resident), ` +
          'against reading that [heap] in C in 1 MiB windows into one buffer, as its header copy reads it',
        group: 'pid doctor', heapscope: m.heapscope, c: m.c, ratio: m.heapscope / m.c, against: 'C read', baseline: m.c, target: 2e9,
      });
    } finally {
      await big.stop();
    }
  } finally {
    remove();
  }
  return rows;
}

// ---- tour ------------------------------------------------------------------------

/** The performance issue's target for the tour: under 1.5 s (the doctor's, under 2 s, is another issue's). */
const TOUR_TARGET = 1.5e9;

/** `targeted`: the in-process tour has no target (it runs `bins` over a heap the other experiments grew); its ratio to the target is kept for --check. */
function tourRow(id, mode, flags, targeted) {
  const times = [];
  for (let i = 0; i < 3; i++) {
    const t = hr();
    const child = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'tour', ...flags], { encoding: 'utf8' });
    const elapsed = Number(hr() - t);
    if (child.status !== 0) throw new Error(`heapscope tour ${flags.join(' ')} failed: ${child.stderr}`);
    times.push(elapsed);
  }
  return {
    id, what: `heapscope tour, ${mode}`, group: 'tour', heapscope: median(times), target: targeted ? TOUR_TARGET : undefined,
    against: 'wall', baseline: TOUR_TARGET, ratio: median(times) / TOUR_TARGET,
  };
}

// ---- Output ---------------------------------------------------------------------

function ns(value) {
  if (value === undefined) return '';
  if (value >= 1e9) return `${(value / 1e9).toFixed(2)} s`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} ms`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(2)} µs`;
  return `${value.toFixed(1)} ns`;
}

function verdict(row) {
  if (row.pending) return row.pending;
  if (row.target === undefined) return 'no target';
  if (row.group === 'tour' || row.group === 'pid doctor') return `${row.heapscope < row.target ? 'met' : 'MISSED'} (< ${row.target / 1e9} s)`;
  const met = row.ratio <= row.target;
  return `${met ? 'met' : 'MISSED'} (≤ ${row.target}× ${row.against})`;
}

function table(rows) {
  const lines = [
    '| measurement | heapscope | C loop | koffi → libc | ratio | target |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of rows) {
    if (row.pending) { lines.push(`| ${row.what} | | | | | ${row.pending} |`); continue; }
    const ratio = row.group === 'tour' ? '' : `${row.ratio.toFixed(2)}× ${row.against}`;
    // The in-process walk stands in the C column of the --pid walk row.
    lines.push(`| ${row.what} | ${ns(row.heapscope)} | ${ns(row.c ?? row.local)} | ${ns(row.koffi)} | ${ratio} | ${verdict(row)} |`);
  }
  return lines.join('\n');
}

/** What settle() said of a row's warm-up. */
function warmedUp({ rounds, settled, faults }) {
  if (settled) return `measured after ${rounds} warm-up rounds, the last ${SETTLED} without a page fault`;
  return `measured after ${rounds} warm-up rounds, never ${SETTLED} in a row without a page fault (the last took ${faults})`;
}

function details(rows) {
  const out = [];
  for (const row of rows) {
    if (row.group === 'per call') {
      out.push(`${row.what}: heapscope ${(row.heapscope / row.c).toFixed(1)}× the C loop, koffi ${(row.koffi / row.c).toFixed(1)}×; ` +
        `the raw addon call alone ${ns(row.raw)} (${(row.raw / row.koffi).toFixed(2)}× koffi), the TypeScript layer adds ${ns(row.heapscope - row.raw)}`);
    }
    if (row.group === 'plan' && row.runAndRead !== undefined) {
      out.push(`${row.what}: a run and the reading of its results ${ns(row.runAndRead)}/item, less the run alone (${ns(row.compiledRun)}/item)`);
    } else if (row.group === 'plan') {
      const compiled = row.id.endsWith('-compiled');
      out.push(`${row.what}: the native call alone is ${row.nativeRatio.toFixed(2)}× C (${ns(row.native)}/item${compiled ? ', the words the addon holds checked' : ', every word checked'}); ` +
        `${compiled ? 'the rest of the run' : 'checking and encoding the steps, and the rest of the run,'} in JavaScript adds ${ns(row.heapscope - row.native)}/item`);
    }
    if (row.group === 'heap walk') {
      out.push(`${row.what}: ${row.perSecond === undefined ? 'no more than the walk alone' : `${(row.perSecond / 1e6).toFixed(1)} M chunks/s`}` +
        (row.cPerSecond === undefined ? '' : ` (the C loop ${(row.cPerSecond / 1e6).toFixed(1)} M chunks/s over the same bytes)`) +
        (row.walkAndRead === undefined ? '' : `; a walk and the reading of its chunks, after a walk whose chunks were read: ${ns(row.walkAndRead)} a chunk, less the walk alone`));
    }
    if (row.group === 'bins') {
      out.push(`${row.what}: ${(1e3 / row.heapscope).toFixed(1)} M chunks/s (the C twin ${(1e3 / row.c).toFixed(1)} M chunks/s over the same copy)`);
    }
    if (row.group === 'pid') {
      out.push(`${row.what}: ${ns(row.heapscope * row.chunks)} a walk there, ${ns(row.local * row.chunks)} here for as many chunks`);
    }
    if (row.group === 'pid doctor') {
      out.push(`${row.what}: the doctor ${ns(row.heapscope)}, the C read alone ${ns(row.c)}`);
    }
    if (row.group === 'maps') {
      out.push(`${row.what}: readFileSync alone ${ns(row.read)} (${(row.read / row.c).toFixed(2)}× the whole C read+parse), ` +
        `parseMaps alone ${ns(row.parse)}${row.id === 'maps' ? '' : ' (the text it parsed last)'}, ` +
        // Not timed apart: the images' ends, the bss check and `displayable` (a CPU profile put ~9 µs a call in
        // those), the plan step's read against fs's, and garbage collection.
        `maps() less those two ${ns(row.heapscope - row.read - row.parse)}`);
    }
    if (row.warmup !== undefined) out[out.length - 1] += `; ${warmedUp(row.warmup)}`;
  }
  return out.join('\n');
}

// ---- The regression guard ----------------------------------------------------------

const NOTE = 'Ratios recorded by `npm run bench -- --record`, one record a machine (its CPU model and count); ' +
  "`npm run bench -- --check` fails when one is more than 25% worse than this machine's record.";

/** A record's machine: its CPU model and how many. */
function machineOf(environment) {
  return `${environment.cpu} ×${environment.cpus}`;
}

function recordOf(records, machine) {
  return records.find((r) => machineOf(r.environment) === machine);
}

/**
 * The ratios to keep: by row id, with what each is against, from this run;
 * and heapscope's own figure and the verdict, for the README's table.
 */
function figures(rows, environment) {
  return {
    environment,
    ratios: Object.fromEntries(rows.map((row) => {
      // The verdict of the figures as kept, so that it is theirs (a test checks it).
      const kept = { ...row, ratio: Number(row.ratio.toPrecision(4)), heapscope: Number(row.heapscope.toPrecision(4)) };
      return [row.id, { ratio: kept.ratio, against: row.against, what: row.what, figure: kept.heapscope, verdict: verdict(kept) }];
    })),
  };
}

/**
 * What bench/figures.json records, as Markdown: for each machine a line
 * naming it, then a table of each row's figure, its ratio, the verdict
 * against its target, and the run it comes from. The README's Performance
 * section holds these, as printed (test/bench-figures.test.ts checks that
 * it does).
 */
function recordedTables(records) {
  return records.map((kept) => {
    const e = kept.environment;
    const lines = [`Recorded on ${e.cpu}, ${e.cpus} CPUs (Node ${e.node.replace(/^v/, '')}, glibc ${e.glibc}):`, '',
      '| row | measurement | heapscope | ratio | target | recorded |', '| --- | --- | ---: | ---: | --- | --- |'];
    for (const [id, r] of Object.entries(kept.ratios)) {
      const environment = r.environment ?? e;
      const ratio = r.against === 'wall' ? '' : `${r.ratio.toFixed(2)}× ${r.against}`;
      const when = `${environment.date.slice(0, 10)} ${environment.date.slice(11, 16)}, load ${environment.load[0]}`;
      lines.push(`| \`${id}\` | ${r.what} | ${r.figure === undefined ? '' : ns(r.figure)} | ${ratio} | ${r.verdict ?? ''} | ${when} |`);
    }
    return lines.join('\n');
  }).join('\n\n');
}

/** Each measured row against the ratio this machine's record holds; the rows that are more than SLACK worse. */
function checkRows(rows) {
  const recorded = recordOf(RECORDS, MACHINE).ratios;
  const lines = ['| row | recorded | now | limit | |', '| --- | ---: | ---: | ---: | --- |'];
  const worse = [];
  const ratios = new Map(rows.map((row) => [row.id, row.ratio]));
  for (const row of rows) {
    const was = recorded[row.id];
    if (was === undefined) { lines.push(`| ${row.id} | | ${row.ratio.toFixed(2)}× ${row.against} | | not recorded |`); continue; }
    const limit = was.ratio * SLACK;
    const bad = row.ratio > limit;
    if (bad) worse.push(row.id);
    lines.push(`| ${row.id} | ${was.ratio.toFixed(2)}× | ${row.ratio.toFixed(2)}× ${row.against} | ${limit.toFixed(2)}× | ${bad ? 'WORSE' : 'ok'} |`);
  }
  return { text: lines.join('\n'), worse, ratios, recorded };
}

/**
 * A row --check finds worse is measured again, its group alone, in a fresh
 * process: it fails the guard only if it is worse there too. One process can
 * be slow at one row for its own reasons (V8 growing its young generation in
 * the middle of the size sweep, about one whole run in three on the
 * machine of the round of 2026-12-05, README); a regression is slow in
 * every process.
 */
function againWhereWorse(first, groupOf) {
  if (first.worse.length === 0) return first;
  const groups = GROUPS.filter((g) => first.worse.some((id) => groupOf.get(id) === g));
  const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--only', groups.join(','), '--json', '--rounds', String(ROUNDS)], {
    encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (run.status !== 0) throw new Error(`measuring ${groups.join(', ')} again failed (${run.status ?? run.signal})`);
  const again = new Map(JSON.parse(run.stdout).rows.map((r) => [r.id, r]));
  const { recorded } = first;
  const lines = ['| row | recorded | first | again | limit | |', '| --- | ---: | ---: | ---: | ---: | --- |'];
  const worse = [];
  for (const id of first.worse) {
    const limit = recorded[id].ratio * SLACK;
    const row = again.get(id);
    const bad = row === undefined || row.ratio > limit;
    if (bad) worse.push(id);
    const firstRatio = first.ratios.get(id);
    lines.push(`| ${id} | ${recorded[id].ratio.toFixed(2)}× | ${firstRatio.toFixed(2)}× | ${row === undefined ? 'not measured' : `${row.ratio.toFixed(2)}× ${row.against}`} | ` +
      `${limit.toFixed(2)}× | ${bad ? 'WORSE' : 'ok'} |`);
  }
  return { text: `${first.text}\n\nmeasured again in a fresh process (${groups.join(', ')}):\n${lines.join('\n')}`, worse, first: first.worse };
}

async function main() {
  const c = compileBaseline();
  const k = koffiLibc();
  const sweep = Array.from({ length: 257 }, (_, i) => i * 4096);
  const measure = {
    'per-call': () => perCallRows(c, k),
    plan: () => [
      ...planRows(c, 'plan-items', 'plan executor, per item (malloc 32 + header + usableSize + free, 1000 items)', Array(1000).fill(32)),
      ...planRows(c, 'size-sweep', 'size sweep 0..1 MiB step 4 KiB, per item (same four steps, 257 items)', sweep),
    ],
    maps: () => mapsRows(c),
    walk: () => heapWalkRows(c),
    bins: () => binsRows(c),
    pid: () => pidRows(c),
    tour: () => [
      tourRow('tour-in-process', 'in-process (each experiment isolated: false, in one child node)', ['--in-process'], false),
      tourRow('tour-isolated', 'isolated (each experiment in its own child)', ['--isolated'], true),
    ],
  };
  // The load before the bench adds its own (it keeps a core busy), and when it started.
  const load = os.loadavg().map((l) => Number(l.toFixed(2)));
  const date = new Date().toISOString();
  const rows = [];
  const groupOf = new Map();
  for (const group of GROUPS.filter((g) => only.includes(g))) {
    const measured = await measure[group]();
    for (const row of measured) groupOf.set(row.id, group);
    rows.push(...measured);
  }
  const environment = {
    node: process.version, glibc: h.glibcVersion(), cpu: os.cpus()[0]?.model, cpus: os.cpus().length, rounds: ROUNDS, load, date,
  };
  if (record) {
    const kept = recordOf(RECORDS, MACHINE);
    const next = figures(rows, environment);
    if (kept !== undefined && only.length < GROUPS.length) {
      // Some groups only: the other rows keep their figures and the run they came from;
      // the rows measured now say which run they come from.
      for (const ratio of Object.values(next.ratios)) ratio.environment = environment;
      next.environment = kept.environment;
    }
    // A whole run replaces the record, in the bench's order of rows; some groups only are merged into it.
    if (only.length < GROUPS.length) next.ratios = { ...(kept?.ratios ?? {}), ...next.ratios };
    // This machine's record replaced where it was, or added after the others.
    const all = kept === undefined ? [...RECORDS, next] : RECORDS.map((r) => (r === kept ? next : r));
    fs.writeFileSync(FIGURES, `${JSON.stringify({ note: NOTE, records: all }, null, 2)}\n`);
  }
  const guard = check ? againWhereWorse(checkRows(rows), groupOf) : undefined;
  if (json) {
    process.stdout.write(`${JSON.stringify({ environment, rows, ...(guard ? { worse: guard.worse, worseFirst: guard.first ?? guard.worse } : {}) }, null, 2)}\n`);
  } else {
    process.stdout.write(`heapscope bench: node ${environment.node}, glibc ${environment.glibc}, ${environment.cpu} ×${environment.cpus}, ` +
      `load ${environment.load.join(' ')}, median of ${ROUNDS} rounds, ${environment.date}\n\n${table(rows)}\n\n${details(rows)}\n`);
    if (record) process.stdout.write(`\nrecorded in ${path.relative(ROOT, FIGURES)}, as the record of ${MACHINE}\n`);
    if (guard) process.stdout.write(`\nagainst the record of ${MACHINE} in ${path.relative(ROOT, FIGURES)} (fails above 1.25× the recorded ratio):\n${guard.text}\n`);
  }
  if (guard && guard.worse.length > 0) {
    process.stderr.write(`bench --check: ${guard.worse.join(', ')} more than 25% worse than recorded, and again in a fresh process\n`);
    process.exitCode = 1;
  }
}

await main();
