// What `heapscope watch` prints each tick: one line when piped (exact
// bytes, for logs and scripts), a few lines redrawn in place on a terminal
// (short units, a row per arena). Each figure is the tick's snapshot's, its
// trend the difference from the first tick's.
import { hex, plural, shortBytes, signedBytes } from '../format';
import type { Counted, HeapSnapshotData, SnapshotSummary } from '../heap-snapshot/index';
import { FREE_PLACES, summarize } from '../heap-snapshot/index';
import { DocColumn, DocRow, documentTerminal } from './document';
import { arenaName, RIGHT } from './snapshot';
import type { TerminalOptions } from './terminal';

/** A change in exact bytes: `+96`, `−4096` (U+2212), `+0`. */
function signedExact(delta: number): string {
  return delta < 0 ? `−${-delta}` : `+${delta}`;
}

function torn(s: HeapSnapshotData): string {
  return s.copy.consistent ? '' : `  torn after ${s.copy.attempts} copies: ${s.copy.reason}`;
}

/**
 * `<takenAt>  arenas 6  in use 3143792 B in 23456 chunks (+0)  free …  top …
 * mmapped 135168 B in 1 chunks (+0)  rss 60123456 B (+4096)`: exact bytes,
 * each trend since `first`.
 */
export function watchLine(now: HeapSnapshotData, first: HeapSnapshotData): string {
  const n = summarize(now);
  const f = summarize(first);
  const counted = (name: string, pick: (s: SnapshotSummary) => Counted) => {
    const c = pick(n);
    return `${name} ${c.bytes} B in ${plural(c.count, 'chunk')} (${signedExact(c.bytes - pick(f).bytes)})`;
  };
  return [
    now.takenAt,
    `arenas ${n.arenas}`,
    counted('in use', (s) => s.inUse),
    counted('free', (s) => s.free),
    `top ${n.top} B (${signedExact(n.top - f.top)})`,
    counted('mmapped', (s) => s.mmapped),
    `rss ${n.rss} B (${signedExact(n.rss - f.rss)})`,
  ].join('  ') + torn(now);
}

/** A figure of a watch record: its value now and its change since the first tick. */
export interface WatchFigure {
  bytes: number;
  /** Bytes now minus bytes at the first tick. */
  change: number;
}

/** A counted figure of a watch record: chunks and bytes now, and the change of each since the first tick. */
export interface WatchCounted extends WatchFigure {
  count: number;
  countChange: number;
}

/** What `watch --json` prints each tick, one line of JSON: the figures of watchLine, each with its trend as a number. */
export interface WatchRecord {
  tick: number;
  takenAt: string;
  /** When the first tick, which the changes are since, was taken. */
  since: string;
  pid: number;
  arenas: number;
  inUse: WatchCounted;
  free: WatchCounted;
  top: WatchFigure;
  mmapped: WatchCounted;
  rss: WatchFigure;
  /** How the tick's copy was taken: attempts, whether it stood still, and if not why. */
  copy: { attempts: number; consistent: boolean; reason?: string };
}

export function watchRecord(now: HeapSnapshotData, first: HeapSnapshotData, tick: number): WatchRecord {
  const n = summarize(now);
  const f = summarize(first);
  const counted = (pick: (s: SnapshotSummary) => Counted): WatchCounted => {
    const c = pick(n);
    return { count: c.count, bytes: c.bytes, countChange: c.count - pick(f).count, change: c.bytes - pick(f).bytes };
  };
  const { attempts, consistent, reason } = now.copy;
  return {
    tick,
    takenAt: now.takenAt,
    since: first.takenAt,
    pid: now.process.pid,
    arenas: n.arenas,
    inUse: counted((s) => s.inUse),
    free: counted((s) => s.free),
    top: { bytes: n.top, change: n.top - f.top },
    mmapped: counted((s) => s.mmapped),
    rss: { bytes: n.rss, change: n.rss - f.rss },
    copy: { attempts, consistent, ...(reason === undefined ? {} : { reason }) },
  };
}

/** `1.2 MiB (+32 KiB)`. */
function withTrend(now: number, first: number): string {
  return `${shortBytes(now)} (${signedBytes(now - first)})`;
}

/** The frame a terminal shows: a heading, a row per arena and a total row, each figure with its trend since `first`. */
export function watchFrame(now: HeapSnapshotData, first: HeapSnapshotData, tick: number, options?: TerminalOptions): string {
  const n = summarize(now);
  const f = summarize(first);
  const freeBytes = (a: HeapSnapshotData['arenas'][number]) => FREE_PLACES.reduce((t, p) => t + a.free[p].bytes, 0);
  const columns: DocColumn[] = [
    { head: 'arena', code: true }, { head: 'in use', ...RIGHT }, { head: 'free', ...RIGHT }, { head: 'top', ...RIGHT }, { head: 'rss', ...RIGHT, drop: 0 },
  ];
  const rows: DocRow[] = now.arenas.map((a) => {
    const was = first.arenas.find((x) => x.address === a.address);
    return { cells: [arenaName(a), withTrend(a.inUse.bytes, was?.inUse.bytes ?? 0), withTrend(freeBytes(a), was === undefined ? 0 : freeBytes(was)), withTrend(a.top, was?.top ?? 0), withTrend(a.rss, was?.rss ?? 0)] };
  });
  rows.push({ cells: ['all arenas', withTrend(n.inUse.bytes, f.inUse.bytes), withTrend(n.free.bytes, f.free.bytes), withTrend(n.top, f.top), ''], colour: 'bold' });
  const gone = first.arenas.filter((a) => !now.arenas.some((x) => x.address === a.address)).map((a) => hex(a.address));
  return documentTerminal({
    id: 'heapscope-watch',
    title: `process ${now.process.pid}, tick ${tick} at ${now.takenAt} (trends since ${first.takenAt})`,
    notes: now.copy.consistent ? [] : [{ text: `This tick's copy was torn after ${now.copy.attempts} copies: ${now.copy.reason}`, problem: true }],
    sections: [{
      heading: plural(n.arenas, 'arena'),
      table: { columns, rows },
      notes: [
        { text: `mmapped chunks: ${n.mmapped.count} (was ${f.mmapped.count}), ${withTrend(n.mmapped.bytes, f.mmapped.bytes)}; resident: ${withTrend(n.rss, f.rss)}.` },
        ...(gone.length === 0 ? [] : [{ text: `Arenas gone since the first tick: ${gone.join(', ')}.` }]),
      ],
    }],
  }, options);
}
