// The views of a heap snapshot: one document (lib/views/document.ts) for
// the terminal, Markdown, HTML and a notebook, and a REPL line. Every
// number shown is one of the snapshot's.
import { inspect } from 'node:util';
import { commandLine, hex, plural, shortBytes, span } from '../format';
import { KNOWN_GLIBC_VERSIONS, layoutFor } from '../allocator/layouts';
import type { Counted, FreePlace, HeapSnapshotData, SizeClassCounts, SnapshotArena } from '../heap-snapshot/index';
import { FREE_PLACES, summarize } from '../heap-snapshot/index';
import { toJSONValue } from '../json';
import type { DocumentViews, InspectContext } from '../presenters';
import { DocColumn, DocNote, DocRow, documentHTML, documentMarkdown, ViewDocument } from './document';
import { RSS_LABELS } from './doctor';
import { stylize } from './inspect';

export const RIGHT = { align: 'right' as const };

/** `main_arena` or `thread 0x7f…`. */
export function arenaName(a: { kind: 'main' | 'thread'; address: bigint }): string {
  return a.kind === 'main' ? 'main_arena' : `thread ${hex(a.address)}`;
}

/** A size class's chunk sizes: `48 B`, `1024–1072 B`, `from 512 KiB`. */
export function classLabel(c: { min: number; max: number | null }): string {
  return c.max === null ? `from ${shortBytes(c.min)}` : `${span(c.min, c.max)} B`;
}

/** `12 (384 B)`. */
export function countedCell(c: Counted): string {
  return c.count === 0 ? '0' : `${c.count} (${shortBytes(c.bytes)})`;
}

/** Which process: `this process (1234)` or `process 1234`. */
export function processName(p: { pid: number; self?: boolean }): string {
  return p.self === true ? `this process (${p.pid})` : `process ${p.pid}`;
}

/** The free places as column heads. */
export const PLACE_HEADS: Record<FreePlace, string> = { tcache: 'tcache', fastbin: 'fast', unsorted: 'unsorted', smallbin: 'small', largebin: 'large' };

/**
 * The free places snapshots of these glibc releases can have chunks in:
 * no fastbins from 2.43 (GlibcLayout.fastbins), where the file's fastbin
 * counts are zeros the format keeps; every place for a release whose
 * layout was not read.
 */
export function placesOf(...glibcs: string[]): FreePlace[] {
  const fastbins = glibcs.some((v) => !KNOWN_GLIBC_VERSIONS.includes(v) || layoutFor(v).fastbins);
  return FREE_PLACES.filter((p) => p !== 'fastbin' || fastbins);
}

const CLASSES_SHOWN = 12;

function classRows(a: SnapshotArena, places: readonly FreePlace[]): DocRow[] {
  const bytesOf = (c: SizeClassCounts) => (c.inUse?.bytes ?? 0) + FREE_PLACES.reduce((n, p) => n + (c[p]?.bytes ?? 0), 0);
  return [...a.classes].sort((x, y) => bytesOf(y) - bytesOf(x)).slice(0, CLASSES_SHOWN).map((c) => ({
    cells: [classLabel(c), countedCell(c.inUse ?? { count: 0, bytes: 0 }), ...places.map((p) => countedCell(c[p] ?? { count: 0, bytes: 0 }))],
  }));
}

export function snapshotDocument(s: HeapSnapshotData): ViewDocument {
  const total = summarize(s);
  const places = placesOf(s.process.glibc);
  const arenaColumns: DocColumn[] = [
    { head: 'arena', code: true }, { head: 'system', ...RIGHT }, { head: 'in use', ...RIGHT },
    ...places.map((p, i) => ({ head: PLACE_HEADS[p], ...RIGHT, drop: i })), { head: 'top', ...RIGHT }, { head: 'rss', ...RIGHT, drop: 5 },
  ];
  const arenaRows: DocRow[] = s.arenas.map((a) => ({
    cells: [arenaName(a), shortBytes(a.systemMem), countedCell(a.inUse), ...places.map((p) => countedCell(a.free[p])), shortBytes(a.top), shortBytes(a.rss)],
  }));
  const classColumns: DocColumn[] = [{ head: 'chunk size' }, { head: 'in use', ...RIGHT }, ...places.map((p, i) => ({ head: PLACE_HEADS[p], ...RIGHT, drop: i }))];
  const p = s.params;
  return {
    id: 'heapscope-snapshot',
    title: `Heap snapshot: ${processName(s.process)}, ${s.takenAt}, glibc ${s.process.glibc}`,
    notes: [
      ...(s.process.cmdline.length === 0 ? [] : [{ text: `Command line: ${commandLine(s.process.cmdline)}; ${plural(s.process.threads, 'thread')}.` }]),
      { text: `${plural(s.arenas.length, 'arena')}: ${countedCell(total.inUse)} in use, ${countedCell(total.free)} free, ${shortBytes(total.top)} in top; ` +
        `${plural(total.mmapped.count, 'mmapped chunk')} (${shortBytes(total.mmapped.bytes)}); ${shortBytes(s.rss.total)} resident.` },
      ...(s.copy.consistent ? [] : [{ text: `The allocator's copy was still torn after ${plural(s.copy.attempts, 'attempt')} (${s.copy.reason}).`, problem: true }]),
      ...s.incomplete.map((text) => ({ text, problem: true })),
    ],
    sections: [
      {
        heading: 'Arenas: chunks (and bytes) by place',
        table: { columns: arenaColumns, rows: arenaRows },
        notes: [
          { text: `in use: chunks handed out (the tcache structs included); tcache: free to the program, in use to mallinfo2; ${places.filter((p) => p !== 'tcache').map((p) => PLACE_HEADS[p]).join(', ')}: the bins; rss: resident bytes of its memory.` },
          ...s.arenas.flatMap((a) => (a.outsideHeap === undefined || a.outsideHeap === 0 ? [] : [{
            text: `${arenaName(a)}'s rss counts [heap] only: at least ${shortBytes(a.outsideHeap)} of its memory lies outside it (it is not contiguous: glibc took memory with mmap).`,
          }])),
        ],
      },
      ...s.arenas.map((a) => ({
        heading: `${arenaName(a)}: ${a.classes.length === 1 ? 'its one size class' : `the ${Math.min(CLASSES_SHOWN, a.classes.length)} size classes holding the most bytes, of ${a.classes.length}`}`,
        table: { columns: classColumns, rows: classRows(a, places) },
        notes: [] as DocNote[],
      })),
      {
        heading: 'Resident memory by what holds it',
        table: {
          columns: [{ head: 'what', wrap: true }, { head: 'regions', ...RIGHT }, { head: 'mapped', ...RIGHT }, { head: 'resident', ...RIGHT }],
          rows: s.rss.rows.map((r) => ({ cells: [r.kind === 'arena-heaps' ? `${RSS_LABELS[r.kind]} ${hex(r.arena!)}` : RSS_LABELS[r.kind], String(r.count), shortBytes(r.size), shortBytes(r.rss)] })),
        },
        notes: [{ text: `Mmapped chunks: ${s.mmapped.count} found (${shortBytes(s.mmapped.bytes)}, ${shortBytes(s.mmapped.resident)} resident); glibc counts ${s.mmapped.nMmaps} (mp_.n_mmaps), ${shortBytes(s.mmapped.mmappedMem)} (mp_.mmapped_mem).` }],
      },
      {
        heading: 'Parameters in force',
        notes: [{ text: `mmap_threshold ${p.mmapThreshold}, trim_threshold ${p.trimThreshold}, top_pad ${p.topPad}, arena_max ${p.arenaMax}, arena_test ${p.arenaTest}, n_mmaps_max ${p.nMmapsMax}, tcache_count ${p.tcacheCount}, tcache_bins ${p.tcacheBins}${p.noDynThreshold ? ', no_dyn_threshold' : ''}.` }],
      },
    ],
  };
}

/** `HeapSnapshot <process 1234, 2025-…: 6 arenas, 3 MiB in use, 2.3 MiB free, 60 MiB resident>`. */
export function inspectSnapshot(s: HeapSnapshotData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'HeapSnapshot', 'special');
  if (depth < 0) return `[${name}]`;
  const t = summarize(s);
  return `${name} <${processName(s.process)}, ${s.takenAt}: ${plural(t.arenas, 'arena')}, ${shortBytes(t.inUse.bytes)} in use, ${shortBytes(t.free.bytes)} free, ` +
    `${shortBytes(t.top)} top, ${shortBytes(s.rss.total)} resident${s.copy.consistent ? '' : ', torn'}>`;
}

export const snapshotDocumentViews: DocumentViews<HeapSnapshotData> = {
  inspect: inspectSnapshot,
  markdown: (s) => documentMarkdown(snapshotDocument(s)),
  html: (s) => documentHTML(snapshotDocument(s)),
  bundle: (s) => ({ 'text/plain': inspect(s, { colors: false }), 'text/html': documentHTML(snapshotDocument(s)), 'application/json': toJSONValue(s) }),
};
