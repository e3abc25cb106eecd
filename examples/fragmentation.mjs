// Why is my process's RSS so high? Worker threads churn native blocks through
// heapscope's malloc and free, one burst after another, and keep a few
// scattered blocks each: every worker leaves an arena of its own, mostly free
// yet resident. The doctor diagnoses it, predicts what malloc_trim(0) gives
// back, calls it and measures the drop. The same workload then runs under
// MALLOC_ARENA_MAX=2, and the two runs are set side by side.
// Run from the repository root: node examples/fragmentation.mjs [--json]
//
// Each run is a child process of this one (`--child`), started alike but
// for MALLOC_ARENA_MAX, and with V8's `--single-threaded`: doctor() copies
// every arena in one native call and copies again while another thread
// changed malloc's totals, and V8's helper threads (concurrent marking and
// sweeping) malloc all the time. Each copy holds all the arenas' memory
// until V8 collects it; without the flag a run here took up to 5 copies of
// 150 MiB each.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { arenas, doctor, hex, malloc, mallocParams } from 'heapscope';

/** The workload, the same in both runs. */
const WORKLOAD = {
  workers: 5,
  rounds: 4,
  blocksPerRound: 3000,
  /** Of every keepEvery blocks of a round, the last stays allocated: it pins the pages around it. */
  keepEvery: 25,
  /** Share of blocks that are large (largeMin up to 3/4 of mp_.mmap_threshold, the lower of the two runs'); the rest are 16 B to 4 KiB. */
  largeShare: 0.05,
  largeMin: 32 << 10,
  seed: 20261203,
};

/**
 * @typedef {{ seed: number, largeMax: number, flag: Int32Array }} WorkerInput
 * @typedef {{ blocks: number, allocated: number, kept: number, keptBytes: number }} BurstSummary
 */

/** mulberry32: a small seeded generator, so that every run asks for the same sizes in the same order. */
function generator(/** @type {number} */ seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A size between lo and hi, uniform on a log scale (many small, a few near hi). */
const logUniform = (/** @type {() => number} */ random, /** @type {number} */ lo, /** @type {number} */ hi) =>
  Math.round(lo * (hi / lo) ** random());

/**
 * One worker's burst: rounds of blocks of many sizes, each written (a real
 * program touches what it allocates, which makes it resident), then all but
 * every keepEvery-th freed; later rounds reuse what earlier ones freed. The
 * kept blocks stay until the main thread says so. The worker must stay: its
 * arena would outlive its thread (glibc puts it on a free list for the next
 * new thread, memory and all), but heapscope frees a thread's live blocks
 * when the thread's instance goes, and with them the pins.
 */
function burst(/** @type {WorkerInput} */ input) {
  const random = generator(input.seed);
  /** @type {import('heapscope').Allocation[]} */
  const kept = [];
  let allocated = 0;
  for (let round = 0; round < WORKLOAD.rounds; round++) {
    const blocks = [];
    for (let i = 0; i < WORKLOAD.blocksPerRound; i++) {
      const size = random() < WORKLOAD.largeShare ? logUniform(random, WORKLOAD.largeMin, input.largeMax) : logUniform(random, 16, 4096);
      const block = malloc(size);
      block.fill(i & 0xff);
      allocated += size;
      blocks.push(block);
    }
    blocks.forEach((block, i) => (i % WORKLOAD.keepEvery === WORKLOAD.keepEvery - 1 ? kept.push(block) : block.free()));
  }
  /** @type {BurstSummary} */
  const summary = {
    blocks: WORKLOAD.rounds * WORKLOAD.blocksPerRound, allocated, kept: kept.length, keptBytes: kept.reduce((n, b) => n + b.requested, 0),
  };
  parentPort?.postMessage(summary);
  // Blocked here, the worker's thread runs no JavaScript and no malloc while the main thread diagnoses.
  Atomics.wait(input.flag, 0, 0);
  for (const block of kept) block.free();
}

/**
 * Starts the workers one after another, each once the one before has
 * finished its burst (requests handled at different times), and keeps them
 * all. Each worker's thread made its first malloc while Node set it up, and
 * glibc gave it an arena then: a new one while the process has fewer than
 * arena_max arenas (0, the default, means 8 per CPU once there are more than
 * arena_test), else one it shares.
 * @param {number} largeMax the bound on large blocks, the same in both runs (see inChild)
 * @returns {Promise<{ largeMax: number, mmapThreshold: number, bursts: BurstSummary[], release: () => Promise<void> }>}
 */
async function runWorkload(largeMax) {
  const mmapThreshold = readMmapThreshold();
  // Below mp_.mmap_threshold as read now (it only ever rises), so that every block comes from the worker's arena, not an mmap of its own.
  if (largeMax >= mmapThreshold) throw new Error(`large blocks up to ${largeMax} bytes are not below this process's mp_.mmap_threshold, ${mmapThreshold} bytes`);
  const flag = new Int32Array(new SharedArrayBuffer(4));
  /** @type {Worker[]} */
  const workers = [];
  /** @type {BurstSummary[]} */
  const bursts = [];
  for (let i = 0; i < WORKLOAD.workers; i++) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { seed: WORKLOAD.seed + i, largeMax, flag } });
    workers.push(worker);
    const [summary] = await Promise.race([once(worker, 'message'), once(worker, 'error').then(([e]) => Promise.reject(e))]);
    bursts.push(summary);
  }
  const release = async () => {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    await Promise.all(workers.map((w) => once(w, 'exit')));
  };
  return { largeMax, mmapThreshold, bursts, release };
}

function readMmapThreshold() {
  const field = mallocParams().fields.find((f) => f.name === 'mmap_threshold');
  if (field === undefined) throw new Error('mp_.mmap_threshold was not found');
  return Number(field.value);
}

/**
 * The workload, then one doctor({ trim: true }): its diagnosis describes the
 * heap before the trim, and the trim is measured beside its prediction (a
 * doctor() before it would copy every arena once more). Every figure is the
 * diagnosis's own.
 */
async function measure(/** @type {number} */ largeMax) {
  const work = await runWorkload(largeMax);
  const d = doctor({ trim: true });
  await work.release();
  const m = d.trimmed;
  if (m === undefined) throw new Error('doctor({ trim: true }) measured no trim');
  // Read after the trim was measured: a break that could not grow (V8's code range right above [heap], in about
  // one node start in a hundred) made main_arena grow with mmap, for good, and the trim gives back less.
  const mainArena = arenas().arenas.find((a) => a.kind === 'main');
  return {
    mainNoncontiguous: mainArena?.noncontiguous ?? false,
    cpus: os.availableParallelism(),
    workers: WORKLOAD.workers,
    mmapThreshold: work.mmapThreshold,
    largeMax: work.largeMax,
    bursts: work.bursts,
    snapshotAttempts: d.snapshot.attempts,
    pid: d.pid,
    glibc: d.glibc,
    threads: d.threads,
    arenaMax: d.params.arenaMax,
    arenas: d.arenas.length,
    threadArenas: d.arenas.filter((a) => a.kind === 'thread').length,
    rss: d.rss.total,
    arenaRss: d.arenas.reduce((n, a) => n + a.rss, 0),
    system: d.totals.arena,
    inUse: d.totals.uordblks,
    free: d.totals.fordblks,
    fragmentation: d.totals.arena === 0 ? 0 : d.totals.fordblks / d.totals.arena,
    perArena: d.arenas.map((a) => ({
      arena: a.kind === 'main' ? 'main_arena' : hex(a.arena), systemMem: a.systemMem, inUse: a.inUse, free: a.free,
      fragmentation: a.fragmentation, rss: a.rss, trim: a.trim.resident,
    })),
    advice: d.advice.map((a) => ({ rule: a.rule, text: a.text })),
    findings: d.findings,
    trim: {
      /** Resident in the ranges malloc_trim(0) releases, read before the snapshot. */
      predicted: d.trim.resident,
      /** The same ranges read again right before the call, and right after it. */
      atTrim: m.predicted,
      stillResident: m.stillResident,
      /** Resident pages the trim took from the heaps outside those ranges: chunks freed after the snapshot (the diagnosis's own, collected). */
      elsewhere: m.elsewhere,
      released: m.released,
      rssBefore: m.rssBefore,
      rssAfter: m.rssAfter,
      drop: m.drop,
      changed: m.changed,
    },
  };
}

/** @typedef {Awaited<ReturnType<typeof measure>> & { mmapThresholdSaid: number }} Run */

/**
 * One run in a child process: this file with --child, MALLOC_ARENA_MAX as
 * given (unset for undefined). The child first says its mp_.mmap_threshold
 * (one line), then waits for the bound on large blocks (one line on its
 * stdin) before the workload. Both runs must ask for the same sizes, and a
 * child's threshold may already have risen while Node started (a freed
 * mmapped chunk raises it), so the bound comes from the lower of the two.
 */
function inChild(/** @type {string | undefined} */ arenaMax) {
  const env = { ...process.env };
  delete env.MALLOC_ARENA_MAX;
  if (arenaMax !== undefined) env.MALLOC_ARENA_MAX = arenaMax;
  const child = spawn(process.execPath, ['--single-threaded', fileURLToPath(import.meta.url), '--child'], {
    env, stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  const exited = once(child, 'exit').then(([code, signal]) => {
    if (code !== 0) throw new Error(`the run with MALLOC_ARENA_MAX=${arenaMax ?? '(unset)'} failed (${code ?? signal})`);
    return out.slice(out.indexOf('\n') + 1);
  });
  /** @type {Promise<number>} */
  const mmapThreshold = new Promise((resolve, reject) => {
    child.stdout.on('data', (/** @type {string} */ s) => {
      out += s;
      if (out.includes('\n')) resolve(Number(JSON.parse(out.slice(0, out.indexOf('\n'))).mmapThreshold));
    });
    exited.then(() => reject(new Error('the child ended before it read its mp_.mmap_threshold')), reject);
  });
  return {
    mmapThreshold,
    kill: () => child.kill(),
    /** @returns {Promise<Run>} */
    run: async (/** @type {number} */ largeMax) => {
      child.stdin.end(`${largeMax}\n`);
      return JSON.parse(await exited);
    },
  };
}

/** Both runs, one after the other, with one bound on large blocks (see inChild). */
async function bothRuns() {
  const children = [inChild(undefined), inChild('2')];
  try {
    const thresholds = await Promise.all(children.map((c) => c.mmapThreshold));
    const largeMax = Math.floor(Math.min(...thresholds) * 0.75);
    const byDefault = await children[0].run(largeMax);
    const capped = await children[1].run(largeMax);
    return { byDefault, capped };
  } finally {
    for (const c of children) c.kill();
  }
}

const mib = (/** @type {number} */ n) => `${(n / 1048576).toFixed(1)} MiB`;
const kib = (/** @type {number} */ n) => `${Math.round(n / 1024)} KiB`;
const pct = (/** @type {number} */ x) => `${Math.round(x * 100)} %`;

function printWorkload(/** @type {Run} */ r, /** @type {Run} */ other) {
  const b = r.bursts;
  const threshold = Math.min(r.mmapThresholdSaid, other.mmapThresholdSaid);
  console.log(`${r.workers} worker threads, one after another, each ${b[0].blocks} blocks in ${WORKLOAD.rounds} rounds: sizes 16 B to 4 KiB, ` +
    `and ${pct(WORKLOAD.largeShare)} ${kib(WORKLOAD.largeMin)} to ${kib(r.largeMax)} (three quarters of the lower of the two runs' mp_.mmap_threshold, ${threshold} bytes when they started, ${r.mmapThreshold} at this run's workload); ` +
    `${mib(b.reduce((n, x) => n + x.allocated, 0))} allocated and written in all, every ${WORKLOAD.keepEvery}th block of a round kept: ` +
    `${b.reduce((n, x) => n + x.kept, 0)} blocks, ${mib(b.reduce((n, x) => n + x.keptBytes, 0))}.`);
}

function printDiagnosis(/** @type {Run} */ r) {
  console.log(`\nDoctor: process ${r.pid}, ${mib(r.rss)} resident, ${r.threads} threads, ${r.cpus} CPUs, glibc ${r.glibc}`);
  console.log('\nAdvice');
  for (const a of r.advice) console.log(`  ${a.text}`);
  if (r.advice.length === 0) console.log('  none');
  console.log('\nFindings');
  for (const f of r.findings) console.log(`  ${f}`);
  console.log('\narena              system      in use        free  free %         rss   trim gives');
  for (const a of r.perArena) {
    console.log(`${a.arena.padEnd(16)}${[a.systemMem, a.inUse, a.free].map((n) => mib(n).padStart(12)).join('')}` +
      `${pct(a.fragmentation).padStart(8)}${mib(a.rss).padStart(12)}${mib(a.trim).padStart(13)}`);
  }
  const t = r.trim;
  console.log(`\nmalloc_trim(0) returned ${t.released ? 1 : 0}. Predicted: ${mib(t.predicted)} resident in the ranges it releases ` +
    `(${mib(t.atTrim)} right before the call, ${mib(t.stillResident)} of it still resident after), and ${mib(t.elsewhere)} more from the heaps outside those ranges ` +
    `(chunks freed after the snapshot). Measured: RSS ${mib(t.rssBefore)} → ${mib(t.rssAfter)}, a drop of ${mib(t.drop)}.${t.changed.length === 0 ? '' : ` malloc's totals moved between the snapshot and the trim (${t.changed.join(', ')}).`}`);
  if (r.mainNoncontiguous) console.log("main_arena is non-contiguous in this run (glibc's NONCONTIGUOUS_BIT): its break could not grow, and glibc grew it with mmap.");
}

function printSideBySide(/** @type {Run} */ left, /** @type {Run} */ right) {
  /** @type {[string, (r: Run) => string][]} */
  const lines = [
    ['arena_max (mp_)', (r) => String(r.arenaMax)],
    ['arenas', (r) => `${r.arenas} (${r.threadArenas} thread)`],
    ['RSS', (r) => mib(r.rss)],
    ["arenas' resident", (r) => mib(r.arenaRss)],
    ["arenas' memory", (r) => mib(r.system)],
    ['in use', (r) => mib(r.inUse)],
    ['free in arenas', (r) => mib(r.free)],
    ['fragmentation', (r) => `${pct(r.fragmentation)} free`],
    ['trim predicted', (r) => mib(r.trim.predicted)],
    ['reused before it', (r) => mib(r.trim.stillResident)],
    ['freed after it', (r) => mib(r.trim.elsewhere)],
    ['trim measured', (r) => mib(r.trim.drop)],
    ['advice', (r) => r.advice.map((a) => a.rule).join(' ') || 'none'],
  ];
  console.log(`\n${''.padEnd(18)}${'default'.padStart(26)}${'MALLOC_ARENA_MAX=2'.padStart(26)}`);
  for (const [label, show] of lines) console.log(`${label.padEnd(18)}${show(left).padStart(26)}${show(right).padStart(26)}`);
  console.log('\nreused before it: predicted pages still resident after the trim: the diagnosis\'s own allocations took their chunks back between its snapshot and the trim.');
  console.log('freed after it: pages the trim released outside the predicted ranges: chunks freed after the snapshot (the diagnosis\'s own, collected).');
}

if (!isMainThread) {
  burst(workerData);
} else if (process.argv.includes('--child')) {
  const said = readMmapThreshold();
  process.stdout.write(`${JSON.stringify({ mmapThreshold: said })}\n`);
  const [line] = await once(createInterface({ input: process.stdin }), 'line');
  process.stdout.write(JSON.stringify({ mmapThresholdSaid: said, ...(await measure(Number(line))) }));
} else {
  const json = process.argv.includes('--json');
  const { byDefault, capped } = await bothRuns();
  if (json) {
    console.log(JSON.stringify({ default: byDefault, arenaMax2: capped }, null, 2));
  } else {
    printWorkload(byDefault, capped);
    printDiagnosis(byDefault);
    console.log('\nThe same workload under MALLOC_ARENA_MAX=2 …');
    printSideBySide(byDefault, capped);
  }
}
