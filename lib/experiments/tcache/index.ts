// What does the per-thread cache hold, and when do fastbins take over?
import { withArticle } from '../../format';
import { PlanStep, runPlan } from '../../plan';
import { MINSIZE, requestToChunkSize } from '../../size-classes';
import { Mallinfo } from '../../stats';
import { tunable } from '../tunables';
import { Experiment } from '../types';

/** One size per regime: fastbin-sized, tcache-only (above fastbins), and above the tcache range. */
const REQUESTS = [40, 200, 1100];
/** Test chunks freed one at a time per size. */
const CHUNKS = 10;
/**
 * Mallocs of the size before the test chunks: they take whatever Node's own
 * frees left in the tcache bin and the arena's bins for that size, so the
 * frees below start from an empty tcache bin and measure its capacity, not
 * its free slots.
 */
const DRAIN = 32;

export type TcacheStep = 'drain' | 'malloc' | 'free' | 'remalloc';
/** Where a free went, judged from the mallinfo change it made. */
export type FreeDestination = 'tcache' | 'fastbin' | 'bin' | 'unclear';
/** Where a malloc's chunk came from, judged the same way. */
export type MallocSource = 'tcache' | 'arena' | 'unclear';

/** The mallinfo fields a free or malloc of one small chunk moves. */
export interface MallinfoChange {
  smblks: number;
  fsmblks: number;
  uordblks: number;
  fordblks: number;
  ordblks: number;
}

export interface TcacheRow {
  request: number;
  /** request2size(request): the chunk size, and so the tcache bin, the request asks for. */
  binSize: number;
  /** This chunk's size, from its header: binSize, or more when a free chunk was handed out whole. */
  chunkSize: number;
  step: TcacheStep;
  /** Position among this size's steps of the same kind, from 0. */
  order: number;
  /** The test chunk (0 … 9): the one malloc'd or freed, or whose address a remalloc got back. */
  chunk?: number;
  address: bigint;
  /** malloc rows: the guard chunk malloc'd right after it, and its size. */
  guardAddress?: bigint;
  guardSize?: number;
  /**
   * malloc rows: the chunk starts where the chunk malloc'd just before it
   * (the previous guard, or the last drain chunk) ends: carved back to back
   * from free memory.
   */
  carved?: boolean;
  /** malloc rows: its guard starts where it ends. */
  guardCarved?: boolean;
  /** free and remalloc rows: mallinfo after the step and what the step changed. */
  mallinfo?: Mallinfo;
  change?: MallinfoChange;
  went?: FreeDestination;
  from?: MallocSource;
  /** remalloc rows served by the arena: chunks that left its free lists (−Δfordblks / chunk size). */
  leftArena?: number;
}

/** Per request: the plan-step indices of its phases. */
interface Layout {
  request: number;
  drain: number[];
  mallocs: number[];
  baseline: number;
  frees: number[];
  remallocs: number[];
}

function plan(): { steps: PlanStep[]; layouts: Layout[] } {
  const steps: PlanStep[] = [];
  const layouts: Layout[] = [];
  const push = (step: PlanStep) => steps.push(step) - 1;
  const mallocWithHeader = (size: number) => {
    const m = push({ op: 'malloc', size });
    push({ op: 'header', step: m });
    return m;
  };
  for (const request of REQUESTS) {
    // A free chunk 16 bytes bigger than the request's would be handed out
    // whole (splitting it would leave less than MINSIZE) and land the test
    // chunk in the next tcache bin; take those first, then the size's own.
    for (let i = 0; i < DRAIN; i++) push({ op: 'malloc', size: request + 16 });
    const drain = Array.from({ length: DRAIN }, () => mallocWithHeader(request));
    // Each test chunk is followed by a guard of the same size that is never
    // freed, so a freed chunk that reaches the arena's bins has in-use
    // neighbours and cannot coalesce.
    const mallocs = Array.from({ length: CHUNKS }, () => {
      const m = mallocWithHeader(request);
      mallocWithHeader(request);
      return m;
    });
    const baseline = push({ op: 'mallinfo' });
    const frees = mallocs.map((m) => {
      const f = push({ op: 'free', step: m });
      push({ op: 'mallinfo' });
      return f;
    });
    const remallocs = mallocs.map(() => {
      const m = mallocWithHeader(request);
      push({ op: 'mallinfo' });
      return m;
    });
    layouts.push({ request, drain, mallocs, baseline, frees, remallocs });
  }
  return { steps, layouts };
}

function change(before: Mallinfo, after: Mallinfo): MallinfoChange {
  return {
    smblks: after.smblks - before.smblks,
    fsmblks: after.fsmblks - before.fsmblks,
    uordblks: after.uordblks - before.uordblks,
    fordblks: after.fordblks - before.fordblks,
    ordblks: after.ordblks - before.ordblks,
  };
}

function wentTo(d: MallinfoChange, chunkSize: number): FreeDestination {
  // A chunk in tcache still counts as in use, so mallinfo does not move.
  if (d.smblks === 0 && d.fsmblks === 0 && d.uordblks === 0 && d.fordblks === 0) return 'tcache';
  if (d.smblks === 1 && d.fsmblks === chunkSize && d.uordblks === -chunkSize) return 'fastbin';
  if (d.smblks === 0 && d.fsmblks === 0 && d.uordblks === -chunkSize && d.fordblks === chunkSize) return 'bin';
  return 'unclear';
}

function cameFrom(d: MallinfoChange, chunkSize: number): { from: MallocSource; leftArena?: number } {
  if (d.uordblks === 0 && d.fordblks === 0) return { from: 'tcache' };
  const left = -d.fordblks / chunkSize;
  if (Number.isInteger(left) && left >= 1 && d.uordblks === -d.fordblks) return { from: 'arena', leftArena: left };
  return { from: 'unclear' };
}

function measure(): TcacheRow[] {
  const { steps, layouts } = plan();
  const { steps: results } = runPlan(steps);
  const rows: TcacheRow[] = [];
  for (const layout of layouts) {
    const { request } = layout;
    const binSize = requestToChunkSize(request);
    const base = { request, binSize };
    const sizeOf = (m: number) => results[m + 1].header!.size;
    const end = (m: number) => results[m].address! + BigInt(sizeOf(m));
    const test = layout.mallocs.map((m) => ({ address: results[m].address!, chunkSize: sizeOf(m) }));
    layout.drain.forEach((d, order) => rows.push({ ...base, chunkSize: sizeOf(d), step: 'drain', order, address: results[d].address! }));
    let previous = layout.drain[DRAIN - 1];
    layout.mallocs.forEach((m, order) => {
      const guard = m + 2;
      rows.push({
        ...base, ...test[order], step: 'malloc', order, chunk: order,
        guardAddress: results[guard].address!, guardSize: sizeOf(guard),
        carved: results[m].address === end(previous), guardCarved: results[guard].address === end(m),
      });
      previous = guard;
    });
    let before = results[layout.baseline].mallinfo!;
    layout.frees.forEach((f, order) => {
      const after = results[f + 1].mallinfo!;
      const d = change(before, after);
      rows.push({ ...base, ...test[order], step: 'free', order, chunk: order, mallinfo: after, change: d, went: wentTo(d, test[order].chunkSize) });
      before = after;
    });
    layout.remallocs.forEach((m, order) => {
      const address = results[m].address!;
      const chunkSize = sizeOf(m);
      const after = results[m + 2].mallinfo!;
      const d = change(before, after);
      const found = test.findIndex((t) => t.address === address);
      rows.push({
        ...base, chunkSize, step: 'remalloc', order, ...(found >= 0 ? { chunk: found } : {}), address,
        mallinfo: after, change: d, ...cameFrom(d, chunkSize),
      });
      before = after;
    });
  }
  return rows;
}

/**
 * How many frees of binSize chunks went to tcache before the first that did
 * not (chunks handed out bigger belong to another bin and are skipped), and
 * whether that first one was seen.
 */
export function measuredCapacity(rows: readonly TcacheRow[], request: number): { capacity: number; bounded: boolean } {
  const frees = rows.filter((r) => r.request === request && r.step === 'free' && r.chunkSize === r.binSize);
  const n = frees.findIndex((r) => r.went !== 'tcache');
  return n < 0 ? { capacity: frees.length, bounded: false } : { capacity: n, bounded: true };
}

const list = (values: readonly (number | string | undefined)[]): string => values.map((v) => (v === undefined ? '?' : String(v))).join(', ');

/** Test chunks by number, `?` for a chunk that was none of them, with the legend when one is there. */
const chunkList = (chunks: readonly (number | undefined)[]): string =>
  list(chunks) + (chunks.includes(undefined) ? ' (? = not a test chunk)' : '');

/** `4`, `4 and 8`, `2, 4 and 8`. */
const and = (values: readonly (number | string)[]): string =>
  values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} and ${values[values.length - 1]}`;

/** Findings and surprises of one request size, from its rows. */
function describeSize(rows: TcacheRow[], findings: string[], surprises: string[]): void {
  const { request, binSize } = rows[0];
  const mallocs = rows.filter((r) => r.step === 'malloc');
  const frees = rows.filter((r) => r.step === 'free');
  const inBin = frees.filter((r) => r.chunkSize === binSize);
  const remallocs = rows.filter((r) => r.step === 'remalloc');
  const label = `${request}-byte requests (${binSize}-byte chunks)`;

  // Each test chunk and its guard, in the order they were malloc'd.
  const carves = mallocs.flatMap((r) => [r.carved === true, r.guardCarved === true]);
  const carved = carves.filter(Boolean).length;
  const firstCarve = carves.indexOf(true);
  findings.push(
    `${label}: after ${DRAIN} drain mallocs, ${carved} of ${carves.length} test-chunk and guard mallocs started exactly where the chunk malloc'd before them ended ` +
      (firstCarve >= 0
        ? `(the first at malloc ${firstCarve + 1}): carved back to back from free memory, which malloc only does when it has no cached chunk of the size ` +
          'to hand out, so the tcache bin was empty before the frees.'
        : ': none was seen carved, so the tcache bin may still have held chunks from earlier frees and the count below may be its free slots.'),
  );

  for (const r of frees.filter((row) => row.chunkSize !== binSize)) {
    const extra = r.chunkSize - binSize;
    surprises.push(
      `${label}: test chunk ${r.chunk} got ${withArticle(r.chunkSize)}-byte chunk, ${extra} bytes more than request2size gives` +
        (extra > 0 && extra < MINSIZE
          ? `: a free chunk was handed out whole, as splitting off ${extra} bytes would leave less than ${withArticle(MINSIZE)}-byte minimum chunk`
          : '') +
        `. Its free (to ${r.went}) is in the ${r.chunkSize}-byte bins and left out of the count.`,
    );
  }

  const { capacity, bounded } = measuredCapacity(rows, request);
  const cached = inBin.slice(0, capacity);
  if (capacity > 0) {
    const last = cached[capacity - 1].mallinfo!;
    findings.push(
      `${label}: the first ${capacity} frees of ${binSize}-byte chunks each left mallinfo unchanged (after them uordblks was ${last.uordblks} bytes, ` +
        `fordblks ${last.fordblks}, smblks ${last.smblks}): a chunk in tcache still counts as in use.`,
    );
  }
  if (bounded) {
    const next = inBin[capacity];
    const d = next.change!;
    const what = next.went === 'fastbin'
      ? `raised smblks ${next.mallinfo!.smblks - d.smblks} → ${next.mallinfo!.smblks} and fsmblks by ${d.fsmblks} bytes: the chunk went to a fastbin`
      : next.went === 'bin'
        ? `raised fordblks by ${d.fordblks} bytes (ordblks ${d.ordblks >= 0 ? '+' : ''}${d.ordblks}) with smblks unchanged: the chunk went to the arena's bins, not a fastbin`
        : `moved mallinfo in a way that fits neither a fastbin nor a bin (smblks ${d.smblks}, fsmblks ${d.fsmblks}, uordblks ${d.uordblks}, fordblks ${d.fordblks})`;
    findings.push(`${label}: the ${capacity === 0 ? 'first' : 'next'} free, of test chunk ${next.chunk}, ${what}.`);
    const rest = inBin.slice(capacity);
    const counts = (['fastbin', 'bin', 'tcache', 'unclear'] as const)
      .map((w) => [w, rest.filter((r) => r.went === w).length] as const)
      .filter(([, n]) => n > 0)
      .map(([w, n]) => `${n} to ${w === 'tcache' ? 'tcache after all' : w === 'unclear' ? 'an unclear place' : withArticle(w)}`);
    findings.push(
      `${label}: tcache capacity measured: ${capacity} (${capacity} of ${inBin.length} frees of ${binSize}-byte chunks stayed in tcache; ` +
        `the other ${rest.length}: ${counts.join(', ')}).`,
    );
  } else {
    findings.push(`${label}: all ${inBin.length} frees of ${binSize}-byte chunks left mallinfo unchanged: tcache capacity measured: at least ${capacity}.`);
  }

  // Reuse: which freed chunk each malloc got back, and from where.
  findings.push(`${label}: malloc'ing ${remallocs.length} back returned the test chunks in the order ${chunkList(remallocs.map((r) => r.chunk))}.`);
  const cachedOrder = cached.map((r) => r.chunk!);
  if (capacity > 0) {
    const firstBack = remallocs.slice(0, capacity);
    const lifo = [...cachedOrder].reverse();
    const isLifo = firstBack.every((r, i) => r.chunk === lifo[i] && r.from === 'tcache');
    findings.push(
      `${label}: the ${capacity} chunks that went to tcache were freed as ${list(cachedOrder)} and the first ${capacity} mallocs back ` +
        `returned ${chunkList(firstBack.map((r) => r.chunk))}` +
        (isLifo ? ' with mallinfo unchanged: last freed, first returned (LIFO).' : ', which is not the reverse of the freeing order.'),
    );
    if (!isLifo) surprises.push(`${label}: tcache reuse was not LIFO: freed ${list(cachedOrder)}, returned ${chunkList(firstBack.map((r) => r.chunk))}.`);
  } else {
    const arena = remallocs.filter((r) => r.from === 'arena').length;
    findings.push(`${label}: none of the ${remallocs.length} mallocs back came from tcache: ${arena} lowered fordblks (served by the arena).`);
  }

  // A malloc that took several chunks off the arena's free lists at once:
  // the extra ones did not come back to the caller but were cached.
  const fromArenaFrees = inBin.slice(capacity).map((f) => f.chunk);
  for (const r of remallocs.filter((row) => (row.leftArena ?? 0) > 1)) {
    const following = remallocs.slice(r.order + 1, r.order + r.leftArena!);
    const cachedNext = following.length === r.leftArena! - 1 && following.every((f) => f.from === 'tcache');
    const d = r.change!;
    const fastPart = d.smblks !== 0 ? `smblks fell by ${-d.smblks} and ` : '';
    surprises.push(
      `${label}: malloc back number ${r.order + 1} returned one chunk (${r.chunk ?? 'not a test chunk'}) but ${fastPart}fordblks fell by ${-d.fordblks} bytes: ` +
        `${r.leftArena} chunks left the arena's free lists at once` +
        (cachedNext
          ? `, and the next ${following.length} mallocs left mallinfo unchanged (served from tcache) returning ${chunkList(following.map((f) => f.chunk))}: ` +
            `malloc refilled tcache from the arena's list, which held chunks ${list(fromArenaFrees)} (freed in that order).`
          : '.'),
    );
  }
  // More mallocs served from tcache than frees put there: the rest are the
  // chunks malloc itself moved there when it took several off the arena's lists.
  const fromCache = remallocs.filter((r) => r.from === 'tcache').length;
  if (fromCache > capacity) {
    const extra = fromCache - capacity;
    const refills = remallocs.filter((r) => (r.leftArena ?? 0) > 1);
    const moved = refills.reduce((n, r) => n + r.leftArena! - 1, 0);
    const how = refills.length === 1
      ? `malloc back number ${refills[0].order + 1} took ${refills[0].leftArena} chunks off the arena's free lists at once, returned one and cached the other ${moved}`
      : `mallocs back number ${and(refills.map((r) => r.order + 1))} took ${and(refills.map((r) => r.leftArena!))} chunks off the arena's free lists at once, ` +
        `and each returned one and cached the rest: ${moved} in all`;
    const head = `${label}: ${fromCache} of ${remallocs.length} mallocs back were served from tcache (mallinfo unchanged), ` +
      `though only ${capacity} ${capacity === 1 ? 'free had put a chunk' : 'frees had put chunks'} there; `;
    findings.push(head + (
      refills.length === 0
        ? `no malloc back took several chunks off the arena's free lists at once, so where the other ${extra} came from was not measured.`
        : moved >= extra
          ? `the other ${extra} had been put there by malloc itself: ${how}` +
            (moved > extra ? ` (${moved - extra} of them were still cached at the end).` : '.')
          : `${how}, which accounts for ${moved} of the other ${extra}; where the rest came from was not measured.`
    ));
  }
  const unclear = [...frees, ...remallocs].filter((r) => r.went === 'unclear' || r.from === 'unclear');
  if (unclear.length > 0) {
    const u = unclear[0];
    surprises.push(
      `${label}: ${unclear.length} steps moved mallinfo in a way no single free or malloc of their chunk does ` +
        `(e.g. ${u.step} ${u.order + 1} of ${withArticle(u.chunkSize)}-byte chunk: smblks ${u.change!.smblks}, uordblks ${u.change!.uordblks}, fordblks ${u.change!.fordblks}); ` +
        'mallinfo sums every arena, so another thread allocating at the same time shows up here.',
    );
  }
}

export const tcache: Experiment<TcacheRow, 'tcache'> = {
  name: 'tcache',
  question: 'What does the per-thread cache hold, and when do fastbins take over?',
  // It needs a heap nobody touched: in a long-running process the arena is
  // full of small free fragments, malloc hands many of them out whole (16
  // bytes bigger than asked), and those land in another tcache bin, so too
  // few test chunks share one bin to see it fill up. In-process runs still
  // work: such chunks are left out of the count and reported.
  isolatedByDefault: true,
  run() {
    const rows = measure();
    const findings: string[] = [];
    const surprises: string[] = [];
    const count = tunable('glibc.malloc.tcache_count');
    for (const request of REQUESTS) describeSize(rows.filter((r) => r.request === request), findings, surprises);
    const capacities = REQUESTS.map((request) => {
      const { capacity, bounded } = measuredCapacity(rows, request);
      return bounded ? String(capacity) : `at least ${capacity}`;
    });
    findings.push(
      count === undefined
        ? `GLIBC_TUNABLES does not set glibc.malloc.tcache_count here: the capacities measured (${list(capacities)} for ${list(REQUESTS)}-byte requests) are this glibc's built-in defaults.`
        : `GLIBC_TUNABLES sets glibc.malloc.tcache_count=${count} here; capacities measured: ${list(capacities)} for ${list(REQUESTS)}-byte requests.`,
    );
    return { rows, findings, surprises };
  },
};
