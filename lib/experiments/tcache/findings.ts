// What the tcache experiment says about its rows: per request size, each
// finding and surprise a rule over the figures measured; then one about the
// run as a whole.
import { withArticle } from '../../format';
import { MINSIZE } from '../../size-classes';
import { Rule, say } from '../rules';
import { measuredCapacity, REQUESTS, TcacheRow } from './measure';

/** One request size's rows, sorted by what the rules ask about. */
interface Size {
  /** How its sentences start: `40-byte requests (48-byte chunks)`. */
  label: string;
  binSize: number;
  /** The drain mallocs before the test chunks. */
  drained: number;
  mallocs: TcacheRow[];
  frees: TcacheRow[];
  /** The frees of binSize chunks: the ones counted (a chunk handed out bigger is in another bin). */
  inBin: TcacheRow[];
  remallocs: TcacheRow[];
  capacity: number;
  /** A free that did not go to tcache was seen: capacity is exact, not a lower bound. */
  bounded: boolean;
  /** The first `capacity` frees of inBin: the ones tcache took. */
  cached: TcacheRow[];
}

function size(rows: TcacheRow[]): Size {
  const { request, binSize } = rows[0];
  const frees = rows.filter((r) => r.step === 'free');
  const inBin = frees.filter((r) => r.chunkSize === binSize);
  const { capacity, bounded } = measuredCapacity(rows, request);
  return {
    label: `${request}-byte requests (${binSize}-byte chunks)`,
    binSize,
    drained: rows.filter((r) => r.step === 'drain').length,
    mallocs: rows.filter((r) => r.step === 'malloc'),
    frees,
    inBin,
    remallocs: rows.filter((r) => r.step === 'remalloc'),
    capacity,
    bounded,
    cached: inBin.slice(0, capacity),
  };
}

const list = (values: readonly (number | string | undefined)[]): string => values.map((v) => (v === undefined ? '?' : String(v))).join(', ');

/** Test chunks by number, `?` for a chunk that was none of them, with the legend when one is there. */
const chunkList = (chunks: readonly (number | undefined)[]): string =>
  list(chunks) + (chunks.includes(undefined) ? ' (? = not a test chunk)' : '');

/** `4`, `4 and 8`, `2, 4 and 8`. */
const and = (values: readonly (number | string)[]): string =>
  values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} and ${values[values.length - 1]}`;

/** The chunks tcache took, in freeing order; the first mallocs back; whether those returned them last freed first. */
function reuse({ cached, remallocs, capacity }: Size): { freed: number[]; back: TcacheRow[]; isLifo: boolean } {
  const freed = cached.map((r) => r.chunk!);
  const back = remallocs.slice(0, capacity);
  const lifo = [...freed].reverse();
  return { freed, back, isLifo: back.every((r, i) => r.chunk === lifo[i] && r.from === 'tcache') };
}

/** Mallocs back that took several chunks off the arena's free lists at once (tcache refills). */
const refills = ({ remallocs }: Size): TcacheRow[] => remallocs.filter((r) => (r.leftArena ?? 0) > 1);

const SIZE_FINDINGS: Rule<Size>[] = [
  // Whether the tcache bin was empty before the frees: each test chunk and
  // its guard carved back to back from free memory, in malloc order.
  ({ label, drained, mallocs }) => {
    const carves = mallocs.flatMap((r) => [r.carved === true, r.guardCarved === true]);
    const carved = carves.filter(Boolean).length;
    const firstCarve = carves.indexOf(true);
    return `${label}: after ${drained} drain mallocs, ${carved} of ${carves.length} test-chunk and guard mallocs started exactly where the chunk malloc'd before them ended ` +
      (firstCarve >= 0
        ? `(the first at malloc ${firstCarve + 1}): carved back to back from free memory, which malloc only does when it has no cached chunk of the size ` +
          'to hand out, so the tcache bin was empty before the frees.'
        : ': none was seen carved, so the tcache bin may still have held chunks from earlier frees and the count below may be its free slots.');
  },

  // If frees went to tcache: mallinfo did not move for them.
  ({ label, binSize, capacity, cached }) => {
    if (!(capacity > 0)) return undefined;
    const last = cached[capacity - 1].mallinfo!;
    return `${label}: the first ${capacity} frees of ${binSize}-byte chunks each left mallinfo unchanged (after them uordblks was ${last.uordblks} bytes, ` +
      `fordblks ${last.fordblks}, smblks ${last.smblks}): a chunk in tcache still counts as in use.`;
  },

  // If a free did not go to tcache: where the first such went, by the mallinfo change it made.
  ({ label, capacity, bounded, inBin }) => {
    if (!bounded) return undefined;
    const next = inBin[capacity];
    const d = next.change!;
    const what = next.went === 'fastbin'
      ? `raised smblks ${next.mallinfo!.smblks - d.smblks} → ${next.mallinfo!.smblks} and fsmblks by ${d.fsmblks} bytes: the chunk went to a fastbin`
      : next.went === 'bin'
        ? `raised fordblks by ${d.fordblks} bytes (ordblks ${d.ordblks >= 0 ? '+' : ''}${d.ordblks}) with smblks unchanged: the chunk went to the arena's bins, not a fastbin`
        : `moved mallinfo in a way that fits neither a fastbin nor a bin (smblks ${d.smblks}, fsmblks ${d.fsmblks}, uordblks ${d.uordblks}, fordblks ${d.fordblks})`;
    return `${label}: the ${capacity === 0 ? 'first' : 'next'} free, of test chunk ${next.chunk}, ${what}.`;
  },

  // The capacity measured: exact, with where the other frees went, or a lower bound.
  ({ label, binSize, capacity, bounded, inBin }) => {
    if (!bounded) return `${label}: all ${inBin.length} frees of ${binSize}-byte chunks left mallinfo unchanged: tcache capacity measured: at least ${capacity}.`;
    const rest = inBin.slice(capacity);
    const counts = (['fastbin', 'bin', 'tcache', 'unclear'] as const)
      .map((w) => [w, rest.filter((r) => r.went === w).length] as const)
      .filter(([, n]) => n > 0)
      .map(([w, n]) => `${n} to ${w === 'tcache' ? 'tcache after all' : w === 'unclear' ? 'an unclear place' : withArticle(w)}`);
    return `${label}: tcache capacity measured: ${capacity} (${capacity} of ${inBin.length} frees of ${binSize}-byte chunks stayed in tcache; ` +
      `the other ${rest.length}: ${counts.join(', ')}).`;
  },

  // Which freed chunk each malloc back returned.
  ({ label, remallocs }) =>
    `${label}: malloc'ing ${remallocs.length} back returned the test chunks in the order ${chunkList(remallocs.map((r) => r.chunk))}.`,

  // If tcache took chunks: whether they came back last freed, first returned; if not, that the arena served every malloc back.
  (s) => {
    const { label, capacity, remallocs } = s;
    if (!(capacity > 0)) {
      const arena = remallocs.filter((r) => r.from === 'arena').length;
      return `${label}: none of the ${remallocs.length} mallocs back came from tcache: ${arena} lowered fordblks (served by the arena).`;
    }
    const { freed, back, isLifo } = reuse(s);
    return `${label}: the ${capacity} chunks that went to tcache were freed as ${list(freed)} and the first ${capacity} mallocs back ` +
      `returned ${chunkList(back.map((r) => r.chunk))}` +
      (isLifo ? ' with mallinfo unchanged: last freed, first returned (LIFO).' : ', which is not the reverse of the freeing order.');
  },

  // If more mallocs back were served from tcache than frees put there: the
  // rest are the chunks malloc itself moved there when it took several off
  // the arena's lists.
  (s) => {
    const { label, capacity, remallocs } = s;
    const fromCache = remallocs.filter((r) => r.from === 'tcache').length;
    if (!(fromCache > capacity)) return undefined;
    const extra = fromCache - capacity;
    const refilled = refills(s);
    const moved = refilled.reduce((n, r) => n + r.leftArena! - 1, 0);
    const how = refilled.length === 1
      ? `malloc back number ${refilled[0].order + 1} took ${refilled[0].leftArena} chunks off the arena's free lists at once, returned one and cached the other ${moved}`
      : `mallocs back number ${and(refilled.map((r) => r.order + 1))} took ${and(refilled.map((r) => r.leftArena!))} chunks off the arena's free lists at once, ` +
        `and each returned one and cached the rest: ${moved} in all`;
    const head = `${label}: ${fromCache} of ${remallocs.length} mallocs back were served from tcache (mallinfo unchanged), ` +
      `though only ${capacity} ${capacity === 1 ? 'free had put a chunk' : 'frees had put chunks'} there; `;
    return head + (
      refilled.length === 0
        ? `no malloc back took several chunks off the arena's free lists at once, so where the other ${extra} came from was not measured.`
        : moved >= extra
          ? `the other ${extra} had been put there by malloc itself: ${how}` +
            (moved > extra ? ` (${moved - extra} of them were still cached at the end).` : '.')
          : `${how}, which accounts for ${moved} of the other ${extra}; where the rest came from was not measured.`
    );
  },
];

const SIZE_SURPRISES: Rule<Size>[] = [
  // Each test chunk handed out bigger than request2size gives: its free is in another bin's count.
  ({ label, binSize, frees }) => frees.filter((row) => row.chunkSize !== binSize).map((r) => {
    const extra = r.chunkSize - binSize;
    return `${label}: test chunk ${r.chunk} got ${withArticle(r.chunkSize)}-byte chunk, ${extra} bytes more than request2size gives` +
      (extra > 0 && extra < MINSIZE
        ? `: a free chunk was handed out whole, as splitting off ${extra} bytes would leave less than ${withArticle(MINSIZE)}-byte minimum chunk`
        : '') +
      `. Its free (to ${r.went}) is in the ${r.chunkSize}-byte bins and left out of the count.`;
  }),

  // If tcache took chunks and did not give them back last freed, first returned.
  (s) => {
    if (!(s.capacity > 0)) return undefined;
    const { freed, back, isLifo } = reuse(s);
    return isLifo ? undefined : `${s.label}: tcache reuse was not LIFO: freed ${list(freed)}, returned ${chunkList(back.map((r) => r.chunk))}.`;
  },

  // Each malloc back that took several chunks off the arena's free lists at
  // once: the extra ones did not come back to the caller but were cached.
  (s) => {
    const { label, capacity, inBin, remallocs } = s;
    const fromArenaFrees = inBin.slice(capacity).map((f) => f.chunk);
    return refills(s).map((r) => {
      const following = remallocs.slice(r.order + 1, r.order + r.leftArena!);
      const cachedNext = following.length === r.leftArena! - 1 && following.every((f) => f.from === 'tcache');
      const d = r.change!;
      const fastPart = d.smblks !== 0 ? `smblks fell by ${-d.smblks} and ` : '';
      return `${label}: malloc back number ${r.order + 1} returned one chunk (${r.chunk ?? 'not a test chunk'}) but ${fastPart}fordblks fell by ${-d.fordblks} bytes: ` +
        `${r.leftArena} chunks left the arena's free lists at once` +
        (cachedNext
          ? `, and the next ${following.length} mallocs left mallinfo unchanged (served from tcache) returning ${chunkList(following.map((f) => f.chunk))}: ` +
            `malloc refilled tcache from the arena's list, which held chunks ${list(fromArenaFrees)} (freed in that order).`
          : '.');
    });
  },

  // If steps moved mallinfo in a way no single free or malloc of their chunk does.
  ({ label, frees, remallocs }) => {
    const unclear = [...frees, ...remallocs].filter((r) => r.went === 'unclear' || r.from === 'unclear');
    if (!(unclear.length > 0)) return undefined;
    const u = unclear[0];
    return `${label}: ${unclear.length} steps moved mallinfo in a way no single free or malloc of their chunk does ` +
      `(e.g. ${u.step} ${u.order + 1} of ${withArticle(u.chunkSize)}-byte chunk: smblks ${u.change!.smblks}, uordblks ${u.change!.uordblks}, fordblks ${u.change!.fordblks}); ` +
      'mallinfo sums every arena, so another thread allocating at the same time shows up here.';
  },
];

/** The whole run: every size's rows, and mp_.tcache_count read after it. */
interface Run {
  rows: TcacheRow[];
  tcacheCount: number;
  /** Earlier runs: how many test chunks each handed out whole. */
  missed: number[];
  /** The release, where its layout says it has no fastbins (2.43 on). */
  noFastbins?: string;
}

const RUN_FINDINGS: Rule<Run>[] = [
  // If the plan was measured again: how many test chunks the earlier runs handed out whole.
  ({ missed }) => missed.length === 0 ? undefined
    : `In run${missed.length > 1 ? 's' : ''} 1${missed.length > 1 ? `–${missed.length}` : ''} of this plan ${missed.join(', ')} test chunks ` +
      'were handed out whole, 16 bytes over their size (a free chunk that size had outlived the drain), so the plan was measured again ' +
      `with a longer drain; run ${missed.length + 1} is shown.`,

  // The capacities measured against the count glibc holds in mp_.
  ({ rows, tcacheCount }) => {
    const capacities = REQUESTS.map((request) => {
      const { capacity, bounded } = measuredCapacity(rows, request);
      return bounded ? String(capacity) : `at least ${capacity}`;
    });
    return `mp_.tcache_count, read after the run, is ${tcacheCount}; capacities measured: ${list(capacities)} for ${list(REQUESTS)}-byte requests.`;
  },

  // If this glibc has no fastbins and no free went to one: what the frees past a full tcache bin did instead.
  ({ rows, noFastbins }) => {
    const past = rows.filter((r) => r.step === 'free' && r.went !== 'tcache');
    if (noFastbins === undefined || past.length === 0 || past.some((r) => r.went === 'fastbin' || r.change!.smblks !== 0)) return undefined;
    return `Fastbins never took over here: glibc ${noFastbins} has none (removed in 2.43), and none of the ${past.length} frees the tcache did not take ` +
      `moved smblks; ${past.filter((r) => r.went === 'bin').length} of them went to the arena's bins.`;
  },
];

export function describeRows(
  rows: TcacheRow[], tcacheCount: number, missed: number[] = [], noFastbins?: string,
): { findings: string[]; surprises: string[] } {
  const sizes = REQUESTS.map((request) => size(rows.filter((r) => r.request === request)));
  return {
    findings: [...sizes.flatMap((s) => say(SIZE_FINDINGS, s)), ...say(RUN_FINDINGS, { rows, tcacheCount, missed, ...(noFastbins === undefined ? {} : { noFastbins }) })],
    surprises: sizes.flatMap((s) => say(SIZE_SURPRISES, s)),
  };
}
