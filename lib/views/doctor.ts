// The views of doctor(): one document (lib/views/document.ts) for the
// terminal, Markdown, HTML and a notebook, and a short REPL line. Every
// number shown is one the diagnosis measured.
import { inspect } from 'node:util';
import type { ArenaDiagnosis, DoctorData, RssRow } from '../doctor/index';
import { capitalised, commandLine, hex, plural, shortBytes } from '../format';
import { toJSONValue } from '../json';
import type { DocumentViews, InspectContext } from '../presenters';
import { DocColumn, DocNote, DocRow, documentHTML, documentMarkdown, documentTerminal, ViewDocument } from './document';
import { stylize } from './inspect';
import type { TerminalOptions } from './terminal';
import { own } from '../validate';

const RIGHT = { align: 'right' as const };
const pct = (part: number, whole: number) => `${whole === 0 ? 0 : Math.round((part / whole) * 100)} %`;

export const RSS_LABELS: Record<RssRow['kind'], string> = {
  'main-heap': 'main heap ([heap])',
  'arena-heaps': 'heaps of arena',
  'mmapped-chunks': 'mmapped chunks',
  code: 'code',
  stacks: 'stacks',
  'other-anonymous': 'other anonymous',
  'library-data': 'library data',
  files: 'other files',
  other: 'other',
};

function rssLabel(r: RssRow): string {
  return r.kind === 'arena-heaps' ? `${RSS_LABELS[r.kind]} ${hex(r.arena!)}` : RSS_LABELS[r.kind];
}

function arenaLabel(a: ArenaDiagnosis): string {
  return a.kind === 'main' ? 'main_arena' : `thread ${hex(a.arena)}`;
}

export function doctorDocument(d: DoctorData): ViewDocument {
  const who = d.self ? `this process (${d.pid})` : `process ${d.pid}`;
  const rssRows: DocRow[] = d.rss.rows.map((r) => ({ cells: [rssLabel(r), String(r.count), shortBytes(r.size), shortBytes(r.rss), pct(r.rss, d.rss.total)] }));
  const arenaColumns: DocColumn[] = [
    { head: 'arena', code: true }, { head: 'system', ...RIGHT }, { head: 'in use', ...RIGHT }, { head: 'free', ...RIGHT },
    { head: 'top', ...RIGHT, drop: 6 }, ...(d.fastbins ? [{ head: 'fast', ...RIGHT, drop: 1 }] : []), { head: 'unsorted', ...RIGHT, drop: 2 }, { head: 'small', ...RIGHT, drop: 3 },
    { head: 'large', ...RIGHT, drop: 4 }, { head: 'tcache', ...RIGHT, drop: 0 }, { head: 'largest', ...RIGHT, drop: 5 },
    { head: 'free %', ...RIGHT }, { head: 'rss', ...RIGHT }, { head: 'trim', ...RIGHT },
  ];
  const arenaRows: DocRow[] = d.arenas.map((a) => ({
    // No fast column where glibc has no fastbins (2.43 on).
    cells: [arenaLabel(a), shortBytes(a.systemMem), shortBytes(a.inUse), shortBytes(a.free), shortBytes(a.top), ...(d.fastbins ? [shortBytes(a.bins.fast)] : []),
      shortBytes(a.bins.unsorted), shortBytes(a.bins.small), shortBytes(a.bins.large), shortBytes(a.tcache), shortBytes(a.largestFree),
      pct(a.free, a.systemMem), shortBytes(a.rss), shortBytes(a.trim.resident)],
  }));
  const p = d.params;
  const initial = (key: keyof NonNullable<typeof p.initial>) => (p.initial === undefined ? '?' : String(p.initial[key]));
  // Where mp_ as initialised could not be read, whether a field moved from it is not known either.
  const known = (state: string) => (p.initial === undefined ? '?' : state);
  const paramRows: DocRow[] = [
    { cells: ['mmap_threshold', String(p.mmapThreshold), initial('mmapThreshold'), p.hugePages?.threshold === true ? 'set: = hp_pagesize' : p.noDynThreshold ? 'set (no_dyn_threshold 1)' : known(p.raised ? 'risen when a mmapped chunk was freed' : 'as initialised')] },
    { cells: ['trim_threshold', String(p.trimThreshold), initial('trimThreshold'), known(p.trimThreshold === p.initial?.trimThreshold ? 'as initialised' : p.raised && p.trimThreshold === 2 * p.mmapThreshold ? 'risen with it: 2 × mmap_threshold' : 'changed')] },
    { cells: ['top_pad', String(p.topPad), initial('topPad'), known(p.topPad === p.initial?.topPad ? 'as initialised' : 'changed')] },
    { cells: ['arena_max', String(p.arenaMax), initial('arenaMax'), p.arenaMax === 0 ? '0: 8 arenas per CPU' : `at most ${plural(p.arenaMax, 'arena')}`] },
    { cells: ['n_mmaps_max', String(p.nMmapsMax), '', ''] },
    ...(p.hugePages === undefined ? [] : [{ cells: ['hp_pagesize', String(p.hugePages.pageSize), '', p.hugePages.mainArenaMapped ? 'hugetlb: main_arena mmaps' : 'hugetlb'] }]),
  ];
  const t = d.trimmed;
  const trimNotes: DocNote[] = d.trim.topReason === undefined ? [] : [{ text: d.trim.topReason }];
  const kept = d.trim.hugePagesKept;
  if (kept !== undefined) trimNotes.push({ text: `Left out: ${shortBytes(kept.bytes)} in huge pages (${shortBytes(kept.resident)} resident), which the kernel would keep (see the findings).` });
  if (t !== undefined) {
    trimNotes.push({ text: `malloc_trim(0) was called (it returned ${t.released ? 1 : 0}): RSS went from ${shortBytes(t.rssBefore)} to ${shortBytes(t.rssAfter)}, a drop of ${shortBytes(t.drop)}, ` +
      `against ${shortBytes(t.predicted)} resident in the predicted ranges right before it (${shortBytes(d.trim.resident)} before the snapshot); ${shortBytes(t.stillResident)} of them stayed resident` +
      (t.elsewhere > 0 ? `, and ${shortBytes(t.elsewhere)} more went from the heaps outside them (chunks freed after the snapshot).` : '.') });
    if (t.hugePagesKept !== undefined) {
      trimNotes.push({ text: `Of the ${shortBytes(t.hugePagesKept.before)} resident in huge pages left out of the prediction, ${shortBytes(t.hugePagesKept.after)} stayed resident (pagemap, in the call that trimmed).` });
    }
    if (t.changed.length > 0) trimNotes.push({ text: `malloc's totals moved between the snapshot and the trim (${t.changed.join(', ')}): the prediction describes the heap as the snapshot saw it.`, problem: true });
  }
  return {
    id: 'heapscope-doctor',
    title: `Doctor: ${who}, ${shortBytes(d.rss.total)} resident, glibc ${d.glibc}`,
    notes: [
      ...(d.cmdline.length === 0 ? [] : [{ text: `Command line: ${commandLine(d.cmdline)}; ${plural(d.threads, 'thread')}.` }]),
      ...(d.snapshot.consistent ? [] : [{ text: `The allocator's copy was still torn after ${plural(d.snapshot.attempts, 'attempt')} (${d.snapshot.reason}).`, problem: true }]),
      ...[own(d.snapshot, 'madeResident')].flatMap((made) => (made === undefined ? [] : [{ text: `${capitalised(made)}.`, problem: true }])),
      ...d.incomplete.map((text) => ({ text, problem: true })),
    ],
    sections: [
      {
        heading: 'Advice',
        notes: d.advice.length === 0 ? [{ text: 'None: no figure below passes a threshold that calls for a change (see THRESHOLDS in lib/doctor/findings.ts).' }] : d.advice.map((a) => ({ text: a.text })),
      },
      { heading: 'Findings', notes: d.findings.map((text) => ({ text })) },
      {
        heading: 'Resident memory by what holds it (smaps; mmapped chunks by pagemap)',
        table: { columns: [{ head: 'what', wrap: true }, { head: 'regions', ...RIGHT }, { head: 'mapped', ...RIGHT }, { head: 'resident', ...RIGHT }, { head: 'share', ...RIGHT }], rows: rssRows },
        notes: [
          { text: "Stacks: [stack], and read-write memory right above a one-page guard (glibc's thread stacks). Code: executable file mappings. Library data: their data, bss and read-only parts. Other: vdso, vvar and mappings with no access (reservations)." },
          ...(d.v8 === undefined ? [] : [{ text: `V8's heap spaces: ${shortBytes(d.v8.physical)} physical (${d.v8.spaces.filter((s) => s.physical > 0).map((s) => `${s.name} ${shortBytes(s.physical)}`).join(', ')}).` }]),
        ],
      },
      {
        heading: 'Arenas',
        table: { columns: arenaColumns, rows: arenaRows },
        notes: [
          { text: `free: top + bins${d.fastbins ? ' + fastbins' : ''}, as mallinfo2 counts it (tcache chunks count as in use); free %: free ÷ system; largest: the largest chunk in a bin; rss: resident bytes of its memory (smaps); trim: resident bytes malloc_trim(0) gives back from it.` },
          ...d.arenas.flatMap((a) => (a.outsideHeap === undefined || a.outsideHeap.bytes === 0 ? [] : [{ text: `${arenaLabel(a)}'s rss counts [heap] only: at least ${shortBytes(a.outsideHeap.bytes)} of its memory lies outside it (see the findings).` }])),
          { text: `Totals as mallinfo2 sums them: arena ${d.totals.arena}, uordblks ${d.totals.uordblks}, fordblks ${d.totals.fordblks}, ordblks ${d.totals.ordblks}, smblks ${d.totals.smblks}, fsmblks ${d.totals.fsmblks}, hblks ${d.totals.hblks}, hblkhd ${d.totals.hblkhd}, keepcost ${d.totals.keepcost}.` },
        ],
      },
      {
        heading: 'Parameters in force (mp_), beside mp_ as the libc file initialises it',
        table: { columns: [{ head: 'field', code: true }, { head: 'now', ...RIGHT }, { head: 'initial', ...RIGHT }, { head: 'state', wrap: true }], rows: paramRows },
        notes: p.initialReason === undefined ? [] : [{ text: `The initial values could not be read: ${p.initialReason}`, problem: true }],
      },
      {
        heading: `What malloc_trim(0) gives back: ${shortBytes(d.trim.resident)} resident of ${shortBytes(d.trim.bytes)} in ${plural(d.trim.ranges.length, 'range')}`,
        notes: trimNotes,
      },
    ],
  };
}

export function renderDoctor(d: DoctorData, options?: TerminalOptions): string {
  return documentTerminal(doctorDocument(d), options);
}

/** `DoctorResult <process 1234: 56 MiB resident, 2 pieces of advice>`, then the advice. */
export function inspectDoctor(d: DoctorData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'DoctorResult', 'special');
  const head = `${name} <${d.self ? 'this process' : `process ${d.pid}`}: ${shortBytes(d.rss.total)} resident, ${plural(d.arenas.length, 'arena')}, ` +
    `malloc_trim(0) gives ${shortBytes(d.trim.resident)}, ${d.advice.length === 0 ? 'no advice' : plural(d.advice.length, 'piece of advice', 'pieces of advice')}`;
  if (depth < 0) return `[${name}]`;
  if (depth === 0 || d.advice.length === 0) return `${head}>`;
  return [head, ...d.advice.map((a) => `  ${a.text}`), `  ${stylize(options, '.findings', 'undefined')}, ${stylize(options, '.toMarkdown()', 'undefined')}>`].join('\n');
}

export const doctorDocumentViews: DocumentViews<DoctorData> = {
  inspect: inspectDoctor,
  markdown: (d) => documentMarkdown(doctorDocument(d)),
  html: (d) => documentHTML(doctorDocument(d)),
  bundle: (d) => ({ 'text/plain': inspect(d, { colors: false }), 'text/html': documentHTML(doctorDocument(d)), 'application/json': toJSONValue(d) }),
};
