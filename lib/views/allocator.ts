// The views of arenas(), mallocParams() and bins(): each result becomes a
// document (lib/views/document.ts) for the terminal, Markdown and HTML, plus
// a short REPL line and a notebook bundle. Every number shown is one the
// decode read; sizes of a bin come from its index, as glibc computes them.
import { inspect } from 'node:util';
import type { Arena } from '../allocator/arenas';
import { Bin, sizeRule } from '../allocator/bin-walk';
import type { ArenaBins } from '../allocator/bins';
import type { ArenasData, BinsData, MallocParamsData, SnapshotInfo } from '../allocator/results';
import { capitalised, hex, plural, shortBytes } from '../format';
import { toJSONValue } from '../json';
import type { DocumentViews, InspectContext, MimeBundle } from '../presenters';
import type { ColourName } from '../table-spec';
import { DocColumn, DocNote, DocRow, documentHTML, documentMarkdown, documentTerminal, ViewDocument } from './document';
import { stylize } from './inspect';
import type { TerminalOptions } from './terminal';
import { own } from '../validate';

/** Chunk addresses a bin's row lists in a terminal, and in a document (the JSON has them all). */
export const TERMINAL_CHUNKS = 8;
export const DOCUMENT_CHUNKS = 64;

export function snapshotNotes(s: SnapshotInfo): DocNote[] {
  return [
    s.consistent
      ? { text: `Decoded from one copy of the allocator, made in one native call while nothing changed it (${plural(s.attempts, 'attempt')}).` }
      : { text: `The copy was still torn after ${plural(s.attempts, 'attempt')} (${s.reason}): what follows may mix two moments.`, problem: true },
    ...[own(s, 'madeResident')].flatMap((made) => (made === undefined ? [] : [{ text: `${capitalised(made)}.`, problem: true }])),
  ];
}


/** `main_arena 0x…` or `thread arena 0x…`. */
function arenaName(kind: 'main' | 'thread', address: bigint): string {
  return `${kind === 'main' ? 'main_arena' : 'thread arena'} ${hex(address)}`;
}

// ---------------------------------------------------------------- arenas

/** main_arena's [heap], or how many heaps a thread arena has (their table lists them). */
function memoryText(a: Arena): string {
  if (a.kind === 'thread') return plural(a.heaps.length, 'heap');
  if (a.memory.length === 0) return a.noncontiguous ? 'not contiguous' : 'no [heap]';
  return `[heap] ${hex(a.memory[0].start)}–${hex(a.memory[0].end)}`;
}

/** NONCONTIGUOUS_BIT (2) is the one flag glibc 2.28 on keeps in `flags`. */
function flagsText(flags: number): string {
  return `${hex(flags)} ${flags & 2 ? 'noncontiguous' : 'contiguous'}`;
}

const RIGHT = { align: 'right' as const };

export function arenasDocument(r: ArenasData): ViewDocument {
  const threads = r.arenas.filter((a) => a.kind === 'thread').length;
  const system = r.arenas.reduce((n, a) => n + a.systemMem, 0n);
  // 2.43 has no fastbins, so no have_fastchunks to show.
  const fastbins = r.arenas.some((a) => a.haveFastchunks !== undefined);
  const columns: DocColumn[] = [
    { head: 'arena', code: true },
    { head: 'kind' },
    { head: 'memory', drop: 3 },
    { head: 'system_mem', ...RIGHT },
    { head: 'max_system_mem', ...RIGHT, drop: 2 },
    { head: 'top', code: true, drop: 4 },
    { head: 'top size', ...RIGHT },
    { head: 'last_remainder', code: true, drop: 1 },
    ...(fastbins ? [{ head: 'fastchunks', drop: 5 }] : []),
    { head: 'threads', ...RIGHT },
    { head: 'flags', drop: 0 },
  ];
  const rows: DocRow[] = r.arenas.map((a) => ({
    cells: [
      hex(a.address), a.kind, memoryText(a), String(a.systemMem), String(a.maxSystemMem), hex(a.top.address),
      a.top.size === undefined ? '?' : String(a.top.size), hex(a.lastRemainder), ...(fastbins ? [a.haveFastchunks !== 0 ? 'yes' : 'no'] : []),
      String(a.attachedThreads), flagsText(a.flags),
    ],
    ...(a.heapsReason !== undefined || a.top.size === undefined ? { colour: 'yellow' as const } : {}),
  }));
  const problems: DocNote[] = r.arenas.flatMap((a) => [
    ...(a.heapsReason === undefined ? [] : [{ text: `${arenaName(a.kind, a.address)}: its heaps: ${a.heapsReason}`, problem: true }]),
    ...(own(a.top, 'reason') === undefined ? [] : [{ text: `${arenaName(a.kind, a.address)}: its top chunk at ${hex(a.top.address)}: ${a.top.reason}`, problem: true }]),
    ...(a.mutex === 0 ? [] : [{ text: `${arenaName(a.kind, a.address)}: its lock was held when it was copied (mutex ${a.mutex}): a thread was inside a call that locks the arena (malloc, free, mallinfo2 …)`, problem: true }]),
  ]);
  const heaps = r.arenas.filter((a) => a.heaps.length > 0);
  const pagesize = heaps.some((a) => a.heaps.some((h) => h.pagesize !== undefined));
  return {
    id: 'allocator-arenas',
    title: `Arenas: main_arena${threads === 0 ? '' : ` and ${plural(threads, 'thread arena')}`}, ${system} bytes (${shortBytes(system)}) from the system`,
    notes: [
      r.complete
        ? { text: `main_arena's next list leads back to it after ${plural(r.arenas.length, 'arena')}: every arena is here.` }
        : { text: `The arena list stops after ${plural(r.arenas.length, 'arena')}: ${r.reason}`, problem: true },
      ...snapshotNotes(r.snapshot),
    ],
    sections: [
      {
        heading: 'Each arena, in the order of the list',
        table: { columns, rows },
        notes: [
          { text: `system_mem: bytes the arena holds from the kernel; top size: its top chunk; threads: attached_threads${fastbins ? '; fastchunks: have_fastchunks' : ''}.` },
          ...problems,
        ],
      },
      ...(heaps.length === 0 ? [] : [{
        heading: "The thread arenas' heaps (heap_info), newest first",
        table: {
          columns: [
            { head: 'arena', code: true }, { head: 'heap', code: true }, { head: 'size', ...RIGHT }, { head: 'mprotect_size', ...RIGHT },
            { head: 'prev', code: true }, ...(pagesize ? [{ head: 'pagesize', ...RIGHT }] : []),
          ],
          rows: heaps.flatMap((a) => a.heaps.map((h) => ({
            cells: [hex(a.address), hex(h.address), String(h.size), String(h.mprotectSize), hex(h.prev),
              ...(pagesize ? [h.pagesize === undefined ? '' : String(h.pagesize)] : [])],
          }))),
        },
        notes: [{ text: 'size: the part in use; mprotect_size: the part made read-write so far.' }],
      }]),
    ],
  };
}

// ---------------------------------------------------------------- mp_

/** Fields holding an address: shown in hex. */
const ADDRESS_FIELDS = new Set(['sbrk_base']);

function fieldText(name: string, value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => fieldText(name, v)).join(' ');
  if (ADDRESS_FIELDS.has(name) && (typeof value === 'bigint' || typeof value === 'number')) return hex(value);
  return String(value);
}

export function paramsDocument(p: MallocParamsData): ViewDocument {
  const m = p.globalMaxFast;
  const absent = Object.hasOwn(m, 'absent');
  const rows: DocRow[] = p.fields.map((f) => ({ cells: [f.name, fieldText(f.name, f.value), f.meaning] }));
  if (!absent) {
    rows.push({
      cells: ['global_max_fast', m.found ? String(m.value) : '?', 'the largest chunk size the fastbins take (M_MXFAST, glibc.malloc.mxfast): a variable of its own, beside mp_'],
      ...(m.found ? {} : { colour: 'yellow' as const }),
    });
  }
  return {
    id: 'allocator-params',
    title: `mp_ (struct malloc_par) at ${hex(p.address)}: ${plural(p.fields.length, 'field')}${absent ? '' : ', and global_max_fast'}`,
    notes: [{ text: "Every field of this glibc's struct malloc_par, in declaration order, read from the copy of libc's data." }, ...snapshotNotes(p.snapshot)],
    sections: [{
      heading: 'Fields',
      table: { columns: [{ head: 'field', code: true }, { head: 'value', ...RIGHT }, { head: 'meaning', wrap: true }], rows },
      notes: [m.found
        ? { text: `global_max_fast is at ${hex(m.address)}, main_arena + ${hex(m.offset)}: the offset measured for this libc file in forks of this process, each of which moved its own to find it.` }
        : absent ? { text: m.reason } : { text: `global_max_fast was not read: ${m.reason}`, problem: true }],
    }],
  };
}

// ---------------------------------------------------------------- bins

type BinKind = 'fast' | 'unsorted' | 'small' | 'large';

const KIND_COLOUR: Record<BinKind, ColourName> = { fast: 'cyan', unsorted: 'magenta', small: 'green', large: 'blue' };

/** Every list of an arena, with its kind, in glibc's order. */
function lists(a: ArenaBins): { kind: BinKind; bin: Bin }[] {
  return [
    ...a.fastbins.map((bin) => ({ kind: 'fast' as const, bin })),
    ...a.unsorted.map((bin) => ({ kind: 'unsorted' as const, bin })),
    ...a.smallbins.map((bin) => ({ kind: 'small' as const, bin })),
    ...a.largebins.map((bin) => ({ kind: 'large' as const, bin })),
  ];
}

function binLabel(kind: BinKind, index: number): string {
  return kind === 'unsorted' ? 'unsorted' : `${kind} ${index}`;
}

/** The chunk sizes a bin holds, from its index as glibc computes them: `32`, `1088–1136`, `any`. */
export function binSizes(kind: BinKind, index: number): string {
  if (kind === 'unsorted') return 'any';
  const { min, max } = sizeRule(kind === 'fast' ? 'fastbin' : 'regular', index);
  return max === undefined ? `${min}+` : max === min ? String(min) : `${min}–${max}`;
}

function chunksText(bin: Bin, limit: number): string {
  const mixed = new Set(bin.chunks.map((c) => c.size)).size > 1;
  const shown = bin.chunks.slice(0, limit).map((c) => (mixed ? `${hex(c.address)}(${c.size})` : hex(c.address)));
  const more = bin.chunks.length - shown.length;
  return [...shown, ...(more > 0 ? [`… ${more} more`] : [])].join(' ');
}

function arenaTotals(a: ArenaBins): { chunks: number; bytes: number; bins: number } {
  const used = lists(a).filter(({ bin }) => bin.count > 0);
  return {
    chunks: used.reduce((n, { bin }) => n + bin.count, 0),
    bytes: used.reduce((n, { bin }) => n + bin.chunks.reduce((m, c) => m + c.size, 0), 0),
    bins: used.length,
  };
}

export function binsDocument(r: BinsData, chunks = DOCUMENT_CHUNKS): ViewDocument {
  const totals = r.arenas.map(arenaTotals);
  const all = totals.reduce((t, a) => ({ chunks: t.chunks + a.chunks, bytes: t.bytes + a.bytes, bins: t.bins + a.bins }), { chunks: 0, bytes: 0, bins: 0 });
  const broken = r.arenas.reduce((n, a) => n + lists(a).filter(({ bin }) => own(bin, 'reason') !== undefined).length, 0);
  const single = r.arenas.length === 1 && r.arenas[0].kind === 'main';
  return {
    id: 'allocator-bins',
    title: `Bins of ${single ? 'main_arena' : plural(r.arenas.length, 'arena')}: ${plural(all.chunks, 'chunk')} (${all.bytes} bytes) in ${plural(all.bins, 'list')}`,
    notes: [
      broken === 0
        ? { text: 'Every list was followed to its end and checked: links agree both ways, each size fits its bin, no cycle.' }
        : { text: `${plural(broken, 'list')} broken: each stops at its first inconsistency, with the chunks read before it; the reasons are below.`, problem: true },
      ...snapshotNotes(r.snapshot),
    ],
    sections: r.arenas.map((a, k) => {
      const t = totals[k];
      const shown = lists(a).filter(({ bin }) => bin.count > 0 || own(bin, 'reason') !== undefined);
      const rows: DocRow[] = shown.map(({ kind, bin }) => ({
        cells: [binLabel(kind, bin.index), binSizes(kind, bin.index), String(bin.count), String(bin.chunks.reduce((n, c) => n + c.size, 0)), chunksText(bin, chunks)],
        colour: own(bin, 'reason') === undefined ? KIND_COLOUR[kind] : 'red',
      }));
      const total = lists(a).length;
      const empty = lists(a).filter(({ bin }) => bin.count === 0 && own(bin, 'reason') === undefined);
      const stale = a.binmap.marked.filter((i) => empty.some(({ kind, bin }) => kind !== 'fast' && bin.index === i));
      const notes: DocNote[] = [
        { text: shown.length === 0 ? `All ${total} lists are empty.` : `The other ${total - shown.length} of the ${total} lists are empty.` },
        ...(a.binmap.marked.length === 0 ? [] : [{
          text: `binmap marks ${plural(a.binmap.marked.length, 'bin')}` +
            (stale.length === 0 ? ', each holding chunks.' : `; ${stale.length} of them ${stale.length === 1 ? 'is' : 'are'} empty now (malloc clears a bit only when a search finds its bin empty).`),
        }]),
        ...shown.filter(({ bin }) => own(bin, 'reason') !== undefined)
          .map(({ kind, bin }) => ({ text: `${binLabel(kind, bin.index)} stops after ${plural(bin.count, 'chunk')}: ${bin.reason}`, problem: true })),
      ];
      return {
        heading: `${arenaName(a.kind, a.arena)}: ` +
          (t.chunks === 0 ? 'no chunk in any list' : `${plural(t.chunks, 'chunk')} (${t.bytes} bytes) in ${plural(t.bins, 'list')}`),
        table: {
          columns: [
            { head: 'bin' }, { head: 'sizes', ...RIGHT }, { head: 'count', ...RIGHT }, { head: 'bytes', ...RIGHT },
            { head: 'chunks (list order)', wrap: true, code: true },
          ],
          rows,
        },
        notes,
      };
    }),
  };
}

// ---------------------------------------------------------------- terminal

export function renderArenas(r: ArenasData, options?: TerminalOptions): string {
  return documentTerminal(arenasDocument(r), options);
}

export function renderParams(p: MallocParamsData, options?: TerminalOptions): string {
  return documentTerminal(paramsDocument(p), options);
}

/** Empty lists are left out; each listed bin shows its first TERMINAL_CHUNKS chunks. */
export function renderBins(r: BinsData, options?: TerminalOptions): string {
  return documentTerminal(binsDocument(r, TERMINAL_CHUNKS), options);
}

// ---------------------------------------------------------------- REPL

/** Arenas listed one a line; more are counted. */
const ARENA_LINES = 8;

function more<T>(items: readonly T[], line: (item: T) => string): string[] {
  const lines = items.slice(0, ARENA_LINES).map((item) => `  ${line(item)}`);
  if (items.length > ARENA_LINES) lines.push(`  … ${plural(items.length - ARENA_LINES, 'more arena')}`);
  return lines;
}

function hint(options: InspectContext | undefined, text: string): string {
  return stylize(options, text, 'undefined');
}

/** `ArenasResult <3 arenas, 4.1 MiB from the system; the list is complete>`, then one line an arena. */
export function inspectArenas(r: ArenasData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'ArenasResult', 'special');
  if (depth < 0) return `[${name} ${plural(r.arenas.length, 'arena')}]`;
  const system = r.arenas.reduce((n, a) => n + a.systemMem, 0n);
  const head = `${name} <${stylize(options, String(r.arenas.length), 'number')} ${r.arenas.length === 1 ? 'arena' : 'arenas'}, ${shortBytes(system)} from the system; ` +
    `${r.complete ? 'the list is complete' : `the list stops: ${r.reason}`}${r.snapshot.consistent ? '' : '; torn copy'}`;
  if (depth === 0) return `${head}>`;
  return [
    head,
    ...more(r.arenas, (a) => `${arenaName(a.kind, a.address)}: ${shortBytes(a.systemMem)} from the system, ` +
      `top ${a.top.size === undefined ? '?' : shortBytes(a.top.size)}, ${plural(a.attachedThreads, 'thread')}`),
    `  ${hint(options, '.arenas[n]')}: each arena's fields; ${hint(options, '.toMarkdown()')}, ${hint(options, '.toHTML()')}>`,
  ].join('\n');
}

/** The fields people set or ask about first, when this version has them. */
const HEADLINE = ['trim_threshold', 'top_pad', 'mmap_threshold', 'arena_max', 'n_mmaps', 'tcache_count', 'tcache_max_bytes'];

/** `MallocParamsResult <mp_ 0x…: trim_threshold 131072, …, global_max_fast 128>`. */
export function inspectParams(p: MallocParamsData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'MallocParamsResult', 'special');
  const where = stylize(options, hex(p.address), 'number');
  if (depth < 0) return `[${name} mp_ ${where}]`;
  const values = HEADLINE.flatMap((n) => {
    const f = p.fields.find((x) => x.name === n);
    return f === undefined ? [] : [`${n} ${stylize(options, fieldText(n, f.value), 'number')}`];
  });
  const m = p.globalMaxFast;
  if (!Object.hasOwn(m, 'absent')) values.push(`global_max_fast ${m.found ? stylize(options, String(m.value), 'number') : '?'}`);
  const head = `${name} <mp_ ${where}: ${values.join(', ')}`;
  if (depth === 0) return `${head}>`;
  return `${head}\n  ${hint(options, '.fields')}: all ${p.fields.length} with their meanings; ${hint(options, '.values')}: by camel-cased name; ${hint(options, '.toMarkdown()')}>`;
}

function listsLine(a: ArenaBins): string {
  const t = arenaTotals(a);
  if (t.chunks === 0) return 'no chunk in any list';
  const kinds = (['fast', 'unsorted', 'small', 'large'] as const).flatMap((kind) => {
    const used = lists(a).filter((l) => l.kind === kind && l.bin.count > 0);
    const n = used.reduce((s, l) => s + l.bin.count, 0);
    return n === 0 ? [] : [kind === 'unsorted' ? `unsorted ${n}` : `${kind} ${n} in ${plural(used.length, 'bin')}`];
  });
  return kinds.join(', ');
}

/** `BinsResult <3 arenas: 24 chunks (12 KiB) in 9 lists; every list complete>`, then one line an arena. */
export function inspectBins(r: BinsData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'BinsResult', 'special');
  if (depth < 0) return `[${name} ${plural(r.arenas.length, 'arena')}]`;
  const totals = r.arenas.map(arenaTotals);
  const chunks = totals.reduce((n, t) => n + t.chunks, 0);
  const bytes = totals.reduce((n, t) => n + t.bytes, 0);
  const used = totals.reduce((n, t) => n + t.bins, 0);
  const broken = r.arenas.reduce((n, a) => n + lists(a).filter((l) => own(l.bin, 'reason') !== undefined).length, 0);
  const head = `${name} <${plural(r.arenas.length, 'arena')}: ${stylize(options, String(chunks), 'number')} chunks (${shortBytes(bytes)}) ` +
    `in ${plural(used, 'list')}; ${broken === 0 ? 'every list complete' : `${plural(broken, 'list')} broken`}${r.snapshot.consistent ? '' : '; torn copy'}`;
  if (depth === 0) return `${head}>`;
  return [
    head,
    ...more(r.arenas, (a) => `${arenaName(a.kind, a.arena)}: ${listsLine(a)}`),
    `  ${hint(options, '.arenas[n].fastbins')}, ${hint(options, '.unsorted')}, ${hint(options, '.smallbins')}, ${hint(options, '.largebins')}: ` +
      `{ index, count, chunks }; ${hint(options, '.toMarkdown()')}>`,
  ].join('\n');
}

// ---------------------------------------------------------------- notebook

function bundle<T extends object>(value: T, doc: ViewDocument): MimeBundle {
  return {
    'text/plain': inspect(value, { colors: false }),
    'text/html': documentHTML(doc),
    'application/json': toJSONValue(value),
  };
}

/** What present.ts installs in allocatorViews. */
export const allocatorStateViews: {
  arenas: DocumentViews<ArenasData>;
  params: DocumentViews<MallocParamsData>;
  bins: DocumentViews<BinsData>;
} = {
  arenas: {
    inspect: inspectArenas,
    markdown: (r) => documentMarkdown(arenasDocument(r)),
    html: (r) => documentHTML(arenasDocument(r)),
    bundle: (r) => bundle(r, arenasDocument(r)),
  },
  params: {
    inspect: inspectParams,
    markdown: (p) => documentMarkdown(paramsDocument(p)),
    html: (p) => documentHTML(paramsDocument(p)),
    bundle: (p) => bundle(p, paramsDocument(p)),
  },
  bins: {
    inspect: inspectBins,
    markdown: (r) => documentMarkdown(binsDocument(r)),
    html: (r) => documentHTML(binsDocument(r)),
    bundle: (r) => bundle(r, binsDocument(r)),
  },
};
