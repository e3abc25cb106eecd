// The views of a diff of two heap snapshots: one document for the
// terminal, Markdown, HTML and a notebook. Each figure is one of the two
// files' (before, after) or their difference.
import { inspect } from 'node:util';
import { commandLine, plural, shortBytes, signedBytes } from '../format';
import type { ArenaDiff, Counted, FreePlace, HeapDiffData, Pair } from '../heap-snapshot/index';
import { TOTALLED_FIELDS } from '../allocator/totals';
import { toJSONValue } from '../json';
import type { DocumentViews, InspectContext } from '../presenters';
import { DocColumn, DocNote, DocRow, DocSection, documentHTML, documentMarkdown, documentTerminal, ViewDocument } from './document';
import { RSS_LABELS } from './doctor';
import { stylize } from './inspect';
import { arenaName, classLabel, countedCell, PLACE_HEADS, placesOf, RIGHT } from './snapshot';
import type { TerminalOptions } from './terminal';

/** A change in a count with its sign: `+3`, `−2` (U+2212), `0`. */
export function signedCount(delta: number): string {
  return delta > 0 ? `+${delta}` : delta < 0 ? `−${-delta}` : '0';
}

/** `+3 (+96 B)`. */
function countedChange(p: Pair<Counted>): string {
  const dc = p.b.count - p.a.count;
  const db = p.b.bytes - p.a.bytes;
  return dc === 0 && db === 0 ? '0' : `${signedCount(dc)} (${signedBytes(db)})`;
}

const CHANGE_COLUMNS: DocColumn[] = [{ head: 'what', wrap: true }, { head: 'before', ...RIGHT }, { head: 'after', ...RIGHT }, { head: 'change', ...RIGHT }];

/** Bytes before and after, and the change; a figure one file lacks (null) shows as `–`, and then so does the change. */
function bytesRow(what: string, p: Pair<number | null>): DocRow {
  const cell = (n: number | null) => (n === null ? '–' : shortBytes(n));
  const change = p.a === null || p.b === null ? '–' : signedBytes(p.b - p.a);
  return { cells: [what, cell(p.a), cell(p.b), change], ...(p.a === p.b ? {} : { colour: 'cyan' as const }) };
}

function countedRow(what: string, p: Pair<Counted>): DocRow {
  return { cells: [what, countedCell(p.a), countedCell(p.b), countedChange(p)], ...(p.a.count === p.b.count && p.a.bytes === p.b.bytes ? {} : { colour: 'cyan' as const }) };
}

const PLACE_NAMES: Record<FreePlace, string> = { tcache: 'in the tcache', fastbin: 'in fastbins', unsorted: 'in the unsorted bin', smallbin: 'in small bins', largebin: 'in large bins' };

function arenaSections(a: ArenaDiff, places: readonly FreePlace[]): DocSection[] {
  const status = a.status === 'both' ? '' : a.status === 'appeared' ? ' (appeared: only in the second snapshot)' : ' (disappeared: only in the first snapshot)';
  const summary: DocSection = {
    heading: `${arenaName(a)}${status}`,
    table: {
      columns: CHANGE_COLUMNS,
      rows: [
        bytesRow('system memory', a.systemMem),
        countedRow('chunks in use', a.inUse),
        ...places.map((p) => countedRow(`free ${PLACE_NAMES[p]}`, a.free[p])),
        bytesRow('top', a.top),
        bytesRow('resident', a.rss),
        ...(a.outsideHeap === undefined ? [] : [bytesRow('memory outside [heap]', a.outsideHeap)]),
      ],
    },
    notes: a.outsideHeap === undefined ? [] : [{
      text: 'memory outside [heap]: at least this much of main_arena\'s memory lies in memory glibc took with mmap, which its resident figure does not count' +
        (a.outsideHeap.a === null || a.outsideHeap.b === null ? '; – where a file has no such figure (the arena was contiguous then, or the file was written before heapscope kept it).' : '.'),
    }],
  };
  const columns: DocColumn[] = [
    { head: 'chunk size' }, { head: 'in use before', ...RIGHT, drop: 0 }, { head: 'in use after', ...RIGHT, drop: 1 }, { head: 'in use change', ...RIGHT },
    ...places.map((p, i) => ({ head: PLACE_HEADS[p], ...RIGHT, drop: 2 + i })),
  ];
  const rows: DocRow[] = a.classes.map((c) => ({
    cells: [classLabel(c), countedCell(c.inUse.a), countedCell(c.inUse.b), countedChange(c.inUse), ...places.map((p) => countedChange(c.free[p]))],
  }));
  const classes: DocSection = {
    heading: `${arenaName(a)}: size classes that changed, ${a.classes.length} of ${a.classesSeen}`,
    ...(rows.length === 0 ? {} : { table: { columns, rows } }),
    notes: rows.length === 0 ? [{ text: 'No size class changed: the same chunks in use and in each place.' }] : [],
  };
  return [summary, classes];
}

export function diffDocument(d: HeapDiffData): ViewDocument {
  const places = placesOf(d.a.glibc, d.b.glibc);
  const who = (s: HeapDiffData['a']) => `process ${s.pid}`;
  const notes: DocNote[] = [
    { text: `Before: ${who(d.a)}, ${d.a.takenAt}${d.a.cmdline.length === 0 ? '' : ` (${commandLine(d.a.cmdline)})`}, glibc ${d.a.glibc}.` },
    { text: `After: ${who(d.b)}, ${d.b.takenAt}${d.b.cmdline.length === 0 ? '' : ` (${commandLine(d.b.cmdline)})`}, glibc ${d.b.glibc}; ${d.elapsed / 1000} s later.` },
  ];
  if (!d.sameProcess) notes.push({ text: 'The two snapshots are of different processes (pid or command line differ): main_arena is matched with main_arena, thread arenas by address, all the same.', problem: true });
  for (const [name, s] of [['first', d.a], ['second', d.b]] as const) {
    if (!s.consistent) notes.push({ text: `The ${name} snapshot's copy was torn (${s.reason}).`, problem: true });
  }
  const appeared = d.arenas.filter((a) => a.status === 'appeared').length;
  const gone = d.arenas.filter((a) => a.status === 'disappeared').length;
  if (appeared + gone > 0) notes.push({ text: `Thread arenas matched by address: ${appeared} appeared, ${gone} disappeared.` });
  const m = d.mmapped;
  const rssRows = d.rss.rows.map((r) => bytesRow(`${RSS_LABELS[r.kind]} (${r.count.a} → ${plural(r.count.b, 'region')})`, r.rss));
  return {
    id: 'heapscope-diff',
    title: d.sameProcess ? `Diff: ${who(d.a)}, ${d.elapsed / 1000} s apart` : `Diff: ${who(d.a)} → ${who(d.b)}`,
    notes,
    sections: [
      ...d.arenas.flatMap((a) => arenaSections(a, places)),
      {
        heading: 'Mmapped chunks',
        table: {
          columns: CHANGE_COLUMNS,
          rows: [
            countedRow('found by their headers', { a: { count: m.a.count, bytes: m.a.bytes }, b: { count: m.b.count, bytes: m.b.bytes } }),
            bytesRow('resident', { a: m.a.resident, b: m.b.resident }),
            countedRow('glibc counts (mp_.n_mmaps, mmapped_mem)', { a: { count: m.a.nMmaps, bytes: m.a.mmappedMem }, b: { count: m.b.nMmaps, bytes: m.b.mmappedMem } }),
          ],
        },
        notes: [],
      },
      {
        heading: 'Resident memory by kind',
        table: { columns: CHANGE_COLUMNS, rows: [...rssRows, bytesRow('total', d.rss.total)] },
        notes: [],
      },
      {
        heading: 'Totals as mallinfo2() sums them',
        table: {
          columns: [{ head: 'field', code: true }, { head: 'before', ...RIGHT }, { head: 'after', ...RIGHT }, { head: 'change', ...RIGHT }],
          rows: TOTALLED_FIELDS.map((f) => ({ cells: [f, String(d.totals.a[f]), String(d.totals.b[f]), signedCount(d.totals.b[f] - d.totals.a[f])] })),
        },
        notes: [],
      },
    ],
  };
}

export function renderDiff(d: HeapDiffData, options?: TerminalOptions): string {
  return documentTerminal(diffDocument(d), options);
}

/** `HeapDiff <process 1234, 5 s apart: in use +37 chunks (+35 KiB), 6 arenas>`. */
export function inspectDiff(d: HeapDiffData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'HeapDiff', 'special');
  if (depth < 0) return `[${name}]`;
  const inUse = d.arenas.reduce((p, a) => ({ a: { count: p.a.count + a.inUse.a.count, bytes: p.a.bytes + a.inUse.a.bytes }, b: { count: p.b.count + a.inUse.b.count, bytes: p.b.bytes + a.inUse.b.bytes } }),
    { a: { count: 0, bytes: 0 }, b: { count: 0, bytes: 0 } });
  return `${name} <process ${d.a.pid}${d.sameProcess ? '' : ` → ${d.b.pid}`}, ${d.elapsed / 1000} s apart: in use ${countedChange(inUse)}, ${plural(d.arenas.length, 'arena')}, resident ${signedBytes(d.rss.total.b - d.rss.total.a)}>`;
}

export const diffDocumentViews: DocumentViews<HeapDiffData> = {
  inspect: inspectDiff,
  markdown: (d) => documentMarkdown(diffDocument(d)),
  html: (d) => documentHTML(diffDocument(d)),
  bundle: (d) => ({ 'text/plain': inspect(d, { colors: false }), 'text/html': documentHTML(diffDocument(d)), 'application/json': toJSONValue(d) }),
};
