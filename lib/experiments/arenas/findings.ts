// What the arenas experiment says about its rows: each finding and surprise
// a rule over the figures measured.
import { bytes, hex } from '../../format';
import { Rule, say } from '../rules';
import { ArenaChunkRow, ArenaHeapRow, ArenaReportRow, ArenaRow, GROWTH_BLOCK, HeapInfoRow } from './measure';

/** The rows, sorted by what the rules ask about. */
interface Facts {
  /** The main thread's chunks, the worker's first chunks (same requests) and its growth blocks. */
  main: ArenaChunkRow[];
  worker: ArenaChunkRow[];
  growth: ArenaChunkRow[];
  beforeGrowth?: ArenaHeapRow;
  afterGrowth?: ArenaHeapRow;
  atRead?: ArenaHeapRow;
  /** The heap the first chunks were malloc'd in, as the first snapshot found it. */
  home?: ArenaHeapRow;
  info?: HeapInfoRow;
  /** Arenas in malloc_info before the worker started, and while it ran. */
  before: number;
  after: ArenaReportRow[];
  /** Of those while it ran, the ones whose mprotected size is the worker heap's. */
  matched: ArenaReportRow[];
}

function facts(rows: ArenaRow[]): Facts {
  const chunks = rows.filter((r): r is ArenaChunkRow => r.what === 'chunk');
  const heaps = rows.filter((r): r is ArenaHeapRow => r.what === 'arena-heap');
  const reports = rows.filter((r): r is ArenaReportRow => r.what === 'malloc-info');
  const beforeGrowth = heaps.find((r) => r.snapshot === 'before-growth');
  const afterGrowth = heaps.find((r) => r.snapshot === 'after-growth');
  const after = reports.filter((r) => r.report === 'after');
  return {
    main: chunks.filter((r) => r.thread === 'main'),
    worker: chunks.filter((r) => r.thread === 'worker' && r.phase === 'first'),
    growth: chunks.filter((r) => r.thread === 'worker' && r.phase === 'growth'),
    beforeGrowth,
    afterGrowth,
    atRead: heaps.find((r) => r.snapshot === 'at-read'),
    home: beforeGrowth ?? afterGrowth,
    info: rows.find((r): r is HeapInfoRow => r.what === 'heap-info'),
    before: reports.filter((r) => r.report === 'before').length,
    after,
    matched: after.filter((r) => r.matchesWorker === true),
  };
}

const raw = (rows: ArenaChunkRow[]): string => rows.map((r) => `${r.request} B → ${hex(r.header.rawSize)}`).join(', ');
const withA = (rows: ArenaChunkRow[]): number => rows.filter((r) => r.header.nonMainArena).length;

/** Both snapshots around the growth blocks, when both found the heap. */
const growthPair = (f: Facts): { b: ArenaHeapRow; a: ArenaHeapRow } | undefined =>
  f.beforeGrowth !== undefined && f.afterGrowth !== undefined ? { b: f.beforeGrowth, a: f.afterGrowth } : undefined;

const FINDINGS: Rule<Facts>[] = [
  // Which thread's chunks carry the A bit.
  ({ main, worker }) =>
    `The worker thread's chunks had the A bit (NON_MAIN_ARENA, 0x4) set in ${withA(worker)} of ${worker.length} size words (${raw(worker)}); ` +
    `the main thread's chunks of the same requests had it set in ${withA(main)} of ${main.length} (${raw(main)}).`,

  // Where the main thread's chunks lay.
  ({ main }) => {
    const places = [...new Set(main.map((r) => `${r.region} at ${r.regionStart === undefined ? '?' : hex(r.regionStart)}`))];
    return `The main thread's ${main.length} chunks lay in ${places.join(' and ')}.`;
  },

  // If the worker's chunks were in no arena heap, say where they were instead.
  ({ home, worker }) => home === undefined
    ? `The worker's first chunk lay in a region of kind ${worker[0]?.region ?? 'unknown'}, not an arena-heap: no 64 MiB arena heap to measure.`
    : undefined,

  // If they were, describe that heap as they found it...
  ({ home }) => home === undefined ? undefined
    : `The worker's chunks lay in an arena-heap region at ${hex(home.start)}, ` +
      (home.misalignment === 0 ? 'a multiple of 64 MiB' : `${home.misalignment} bytes past a 64 MiB boundary`) +
      `: ${bytes(home.rwSize)} rw-p, then ${bytes(home.reservedSize)} ---p in ${home.reservedRegions} arena-reserved region(s), ${bytes(home.total)} in all.`,

  // ...and say where the growth blocks went.
  ({ home, growth }) => {
    if (home === undefined) return undefined;
    const inHome = growth.filter((r) => r.regionStart === home.start).length;
    const mapped = growth.filter((r) => r.header.isMmapped).length;
    return `Of the ${growth.length} blocks of ${bytes(GROWTH_BLOCK)} malloc'd next in the worker, ${withA(growth)} had the A bit, ${mapped} were mmapped ` +
      `and ${inHome} lay in that same region.`;
  },

  // If the heap was seen before and after the growth blocks: whether its rw-p part grew, and how.
  (f) => {
    const pair = growthPair(f);
    if (pair === undefined) return undefined;
    const { b, a } = pair;
    const grew = a.rwSize - b.rwSize;
    return grew > 0
      ? `Those blocks grew the rw-p part from ${bytes(b.rwSize)} to ${bytes(a.rwSize)} (+${bytes(grew)}) while the ---p part went ` +
        `from ${bytes(b.reservedSize)} to ${bytes(a.reservedSize)}: the whole stayed ${bytes(a.total)}` +
        `${a.start === b.start ? ' at the same start' : `, but the start moved from ${hex(b.start)} to ${hex(a.start)}`}, ` +
        'so the heap grew by turning reserved pages read-write, not by mapping new memory.'
      : `The rw-p part stayed at ${bytes(a.rwSize)} (it was ${bytes(b.rwSize)}): the blocks fit in memory the heap already had.`;
  },

  // ...and whether mallinfo's arena moved by the same amount.
  (f) => {
    const pair = growthPair(f);
    if (pair === undefined) return undefined;
    const { b, a } = pair;
    const grew = a.rwSize - b.rwSize;
    const system = (a.mallinfoArena ?? 0) - (b.mallinfoArena ?? 0);
    return `Over the same steps mallinfo's arena (system bytes of all arenas) went from ${b.mallinfoArena} to ${a.mallinfoArena} ` +
      `(${system >= 0 ? '+' : ''}${system}${system === grew ? ', exactly the rw-p growth' : `, against ${grew} of rw-p growth`}).`;
  },

  // If heap_info was read: its words, and whether mprotect_size is the rw-p part the map showed then.
  ({ info, atRead }) => {
    if (info === undefined) return undefined;
    const mprotectAgrees = atRead !== undefined && atRead.rwSize === info.mprotectSize;
    return `The region's first words (heap_info), read while the worker waited: ar_ptr = ${hex(info.arPtr)}, ${info.arPtrOffset} bytes into the region ` +
      (info.arPtrInside ? '(inside its rw-p part: the arena\'s malloc_state lives in its own heap)' : '(outside the region)') +
      `; prev = ${hex(info.prev)}${info.prev === 0n ? ' (no earlier heap)' : ''}; size = ${info.size}; mprotect_size = ${info.mprotectSize}` +
      (atRead === undefined ? '.' : mprotectAgrees
        ? `, equal to the rw-p part in the map read at that moment.`
        : `, while the map read at that moment showed ${atRead.rwSize} bytes rw-p.`);
  },

  // If malloc_state.top was read: where the top chunk ends, against heap_info.size.
  ({ info }) => {
    if (info?.top === undefined || info.topSize === undefined || info.topOffset === undefined) return undefined;
    const topEnd = info.top + BigInt(info.topSize);
    const endOffset = Number(topEnd - info.start);
    return `malloc_state.top (the word at ar_ptr + ${info.topOffset}) = ${hex(info.top)}, ${Number(info.top - info.start)} bytes into the region; ` +
      `that chunk's size field says ${info.topSize} bytes, so it ends ${endOffset} bytes into the region` +
      (endOffset === info.size ? ', exactly at heap_info.size: the arena carves from its own top chunk at the end of its heap\'s used part.' : `, while heap_info.size is ${info.size}.`);
  },

  // How many arenas malloc_info listed, and which one is the worker's.
  ({ before, after, matched, info }) =>
    `malloc_info listed ${before} arenas before the worker started and ${after.length} while it ran; ` +
    (matched.length === 1
      ? `heap nr=${matched[0].nr} (${matched[0].aspaceMprotect} bytes mprotected) matches the worker heap's mprotect_size.`
      : `${matched.length} of them have an mprotected size equal to the worker heap's mprotect_size${info === undefined ? ' (not read)' : ` (${info.mprotectSize})`}.`),
];

const SURPRISES: Rule<Facts>[] = [
  // If the A bit did not tell the worker's chunks from the main thread's.
  ({ main, worker }) => withA(worker) < worker.length || withA(main) > 0
    ? `The A bit did not split the chunks by thread: worker ${withA(worker)} of ${worker.length}, main ${withA(main)} of ${main.length}.`
    : undefined,

  // If the heap's reservation changed size while it grew.
  (f) => {
    const pair = growthPair(f);
    return pair === undefined || pair.a.total === pair.b.total ? undefined
      : `The arena heap's reservation changed size while it grew: ${pair.b.total} → ${pair.a.total} bytes.`;
  },

  // If heap_info's ar_ptr is not in the heap's rw-p part.
  ({ info }) => info !== undefined && !info.arPtrInside
    ? `heap_info's ar_ptr ${hex(info.arPtr)} does not lie in the heap's rw-p part starting at ${hex(info.start)}.`
    : undefined,

  // If starting one worker did not add exactly one arena.
  ({ before, after, matched }) => {
    const added = after.length - before;
    if (added === 0) return `Starting a worker thread left malloc_info's arena count at ${before}: the worker was given an arena that already existed.`;
    if (added === 1) return undefined;
    return `Starting one worker thread took malloc_info from ${before} to ${after.length} arenas, ${added} more, not 1: ` +
      `only ${matched.length === 1 ? `nr=${matched[0].nr}` : 'one of them'} is tied to the worker (by heap_info's mprotect_size); ` +
      `the other ${added - 1} appeared over the same time, in threads these numbers do not identify.`;
  },
];

export function describeRows(rows: ArenaRow[]): { findings: string[]; surprises: string[] } {
  const f = facts(rows);
  return { findings: say(FINDINGS, f), surprises: say(SURPRISES, f) };
}
