// glibc's malloc_info(0, fp) report, read into a typed model.
//
// The XML is written by __malloc_info in glibc's malloc/malloc.c; as of
// glibc 2.36 (checked against the source and the live output) it reads:
//
//   <malloc version="1">
//   <heap nr="N">                      one per arena, main arena first (nr 0),
//   <sizes>                            then main_arena.next, ... (newest first)
//     <size from to total count/>      NFASTBINS fastbin entries, then the
//     ...                              regular bins 2..127, each only if count != 0
//     <unsorted from to total count/>  bin 1, only if count != 0
//   </sizes>
//   <total type="fast" count size/>    chunks in fastbins
//   <total type="rest" count size/>    the top chunk plus every chunk in a bin
//   <system type="current" size/>      ar_ptr->system_mem
//   <system type="max" size/>          ar_ptr->max_system_mem
//   <aspace type="total" size/>        main arena: system_mem; thread arena: sum of heap sizes
//   <aspace type="mprotect" size/>     main arena: system_mem; thread arena: sum of mprotect sizes
//   <aspace type="subheaps" size/>     thread arenas only: the number of heaps (a count)
//   </heap>
//   <total type="fast" .../> <total type="rest" .../> <total type="mmap" count size/>
//   <system type="current"/> <system type="max"/> <aspace type="total"/> <aspace type="mprotect"/>
//   </malloc>
//
// Tcache chunks appear nowhere: glibc counts them as in use.
//
// Every size, total and count is a number. glibc prints them as size_t; a
// value above Number.MAX_SAFE_INTEGER (2^53 − 1, far beyond any heap) is
// rejected rather than rounded.
import { binding } from './binding';
import { HeapscopeError, native, typeError } from './errors';
import { InspectContext, presenter, withInspect } from './presenters';

/** A count of free chunks and their summed size in bytes. */
export interface BlockTotal {
  count: number;
  /** Bytes. */
  size: number;
}

/**
 * One `<size>` line of an arena.
 *
 * - `kind: 'fastbin'`: one fastbin. glibc prints the bin's range, not what
 *   is in it: `to` is the bin's chunk size (a multiple of 16) and `from` is
 *   `to - 15`; `total` is `count * to`.
 * - `kind: 'bin'`: one regular (small or large) bin. `from` and `to` are the
 *   smallest and largest chunks in it and `total` their sum, all taken from
 *   the raw size field (`chunksize_nomask`). A free chunk in a bin always has
 *   PREV_INUSE set and no other flag (glibc writes `size | PREV_INUSE` when it
 *   bins a chunk, in every arena), so these are chunk size + 1: a 2016-byte
 *   chunk reads 2017 and `total` is the bytes plus `count`. They are kept as
 *   printed.
 */
export interface SizeClassEntry {
  kind: 'fastbin' | 'bin';
  from: number;
  to: number;
  total: number;
  count: number;
}

/** The `<unsorted>` line: bin 1, with the same raw-size meaning as a regular bin. */
export interface UnsortedEntry {
  from: number;
  to: number;
  total: number;
  count: number;
}

export interface ArenaInfo {
  /** Position in glibc's arena list: 0 is the main arena. */
  nr: number;
  /** The non-empty fastbins, then the non-empty regular bins, in glibc's order. */
  sizes: SizeClassEntry[];
  /** The unsorted bin, when it is not empty. */
  unsorted?: UnsortedEntry;
  /** Chunks in fastbins. */
  fast: BlockTotal;
  /** The top chunk (always counted, as 1) plus every chunk in the unsorted and regular bins. */
  rest: BlockTotal;
  /** Bytes the arena has from the system now (`system_mem`). */
  systemCurrent: number;
  /** The most `systemCurrent` has been (`max_system_mem`). */
  systemMax: number;
  /** Address space reserved: `system_mem` for the main arena, the heaps' sizes for a thread arena. */
  aspaceTotal: number;
  /** Of that, the part made read-write (`system_mem` for the main arena). */
  aspaceMprotect: number;
  /** Thread arenas only: how many heaps (mmapped sub-heaps) the arena has. */
  subheaps?: number;
}

export interface MallocTotals {
  /** Chunks in fastbins, all arenas. */
  fast: BlockTotal;
  /** Top chunks plus binned chunks, all arenas. */
  rest: BlockTotal;
  /** Chunks served directly by mmap (`mp_.n_mmaps`, `mp_.mmapped_mem`). */
  mmap: BlockTotal;
  systemCurrent: number;
  systemMax: number;
  aspaceTotal: number;
  aspaceMprotect: number;
}

export interface MallocInfo {
  /** The `version` attribute of `<malloc>` (1 in every glibc so far). */
  version: number;
  arenas: ArenaInfo[];
  totals: MallocTotals;
  /** The XML exactly as glibc wrote it. */
  raw: string;
}

/**
 * The allocator report of this process: glibc's `malloc_info(0, fp)`, parsed.
 *
 * The addon writes the report to an `open_memstream` stream, whose setup
 * (`calloc(1, BUFSIZ)`, a large request) makes glibc consolidate the fastbins
 * of the calling thread's arena first: that arena reads as having no fastbin
 * chunks. Other threads' arenas are seen as they are.
 */
export function mallocInfo(): MallocInfo {
  const xml = native(() => binding.mallocInfo());
  return parseMallocInfo(xml);
}

// ---------------------------------------------------------------------------
// Interpretation of the element tree.

/**
 * Parses the XML of glibc's `malloc_info(0, fp)`. Pure. Elements and `type`s
 * this version does not know are skipped; a document that is not well-formed,
 * has no `<malloc>` root, or lacks a field the model needs throws a
 * `HeapscopeError` with code `ERR_MALLOC_INFO` (a non-string is a
 * `TypeError` with code `ERR_INVALID_ARG_TYPE`).
 */
export function parseMallocInfo(xml: string): MallocInfo {
  if (typeof xml !== 'string') throw typeError(`parseMallocInfo: xml must be a string, got ${typeof xml}`);
  const root = readXml(xml);
  if (root.name !== 'malloc') throw fail(`the root element is <${root.name}> (${where(xml, root.at)}), not <malloc>`);
  const version = countAttribute(xml, root, 'version');

  const arenas: ArenaInfo[] = [];
  const tally = new Tally(xml, root);
  for (const child of root.children) {
    if (child.name === 'heap') arenas.push(readHeap(xml, child));
    else tally.add(child);
  }
  return withInspect<MallocInfo>((v, d, o) => mallocInfoViews.views.inspect(v, d, o), {
    version,
    arenas,
    totals: {
      fast: tally.block('total', 'fast'),
      rest: tally.block('total', 'rest'),
      mmap: tally.block('total', 'mmap'),
      systemCurrent: tally.size('system', 'current'),
      systemMax: tally.size('system', 'max'),
      aspaceTotal: tally.size('aspace', 'total'),
      aspaceMprotect: tally.size('aspace', 'mprotect'),
    },
    raw: xml,
  });
}

/** How malloc_info()'s report and its arenas show themselves; installed by the view layer. */
export const mallocInfoViews = presenter<{
  inspect(info: MallocInfo, depth: number, options?: InspectContext): string;
  inspectArena(arena: ArenaInfo, depth: number, options?: InspectContext): string;
}>('MallocInfo');

function readHeap(xml: string, heap: XmlElement): ArenaInfo {
  const nr = countAttribute(xml, heap, 'nr');
  const tally = new Tally(xml, heap);
  let sizesElement: XmlElement | undefined;
  for (const child of heap.children) {
    if (child.name === 'sizes') {
      if (sizesElement !== undefined) throw fail(`a second <sizes> in <heap nr="${nr}"> (${where(xml, child.at)})`);
      sizesElement = child;
    } else {
      tally.add(child);
    }
  }
  if (sizesElement === undefined) throw fail(`<heap nr="${nr}"> (${where(xml, heap.at)}) has no <sizes>`);

  const sizes: SizeClassEntry[] = [];
  let unsorted: UnsortedEntry | undefined;
  // glibc prints the fastbins first, then the regular bins. A fastbin line is
  // the bin's range: to = chunksize (a multiple of MALLOC_ALIGNMENT, 16) and
  // from = to - 15. A regular bin line holds raw size fields of free chunks,
  // which always carry PREV_INUSE and so are odd: it can never look like a
  // fastbin. The first line that does not have the fastbin shape ends the
  // fastbins; every line after it is a regular bin.
  let inFastbins = true;
  for (const child of sizesElement.children) {
    if (child.name === 'size') {
      const entry = readRange(xml, child);
      inFastbins = inFastbins && entry.to % 16 === 0 && entry.to - entry.from === 15;
      sizes.push({ kind: inFastbins ? 'fastbin' : 'bin', ...entry });
    } else if (child.name === 'unsorted') {
      if (unsorted !== undefined) throw fail(`a second <unsorted> in <heap nr="${nr}"> (${where(xml, child.at)})`);
      unsorted = readRange(xml, child);
    }
  }

  const arena: ArenaInfo = {
    nr,
    sizes,
    fast: tally.block('total', 'fast'),
    rest: tally.block('total', 'rest'),
    systemCurrent: tally.size('system', 'current'),
    systemMax: tally.size('system', 'max'),
    aspaceTotal: tally.size('aspace', 'total'),
    aspaceMprotect: tally.size('aspace', 'mprotect'),
  };
  if (unsorted !== undefined) arena.unsorted = unsorted;
  const subheaps = tally.optional('aspace', 'subheaps');
  if (subheaps !== undefined) arena.subheaps = countAttribute(xml, subheaps, 'size');
  return withInspect<ArenaInfo>((v, d, o) => mallocInfoViews.views.inspectArena(v, d, o), arena);
}

function readRange(xml: string, element: XmlElement): UnsortedEntry {
  return {
    from: sizeAttribute(xml, element, 'from'),
    to: sizeAttribute(xml, element, 'to'),
    total: sizeAttribute(xml, element, 'total'),
    count: countAttribute(xml, element, 'count'),
  };
}

/** The `<total|system|aspace type="…">` fields this module reads. */
const FIELDS = new Set([
  'total fast', 'total rest', 'total mmap', 'system current', 'system max',
  'aspace total', 'aspace mprotect', 'aspace subheaps',
]);

/** The `<total|system|aspace type="…">` children of one element, by name and type; others are skipped. */
class Tally {
  private readonly seen = new Map<string, XmlElement>();

  constructor(
    private readonly xml: string,
    private readonly parent: XmlElement,
  ) {}

  add(element: XmlElement): void {
    if (element.name !== 'total' && element.name !== 'system' && element.name !== 'aspace') return;
    const type = element.attributes.get('type');
    if (type === undefined) throw fail(`<${element.name}> without a type attribute (${where(this.xml, element.at)})`);
    const key = `${element.name} ${type}`;
    if (!FIELDS.has(key)) return;
    if (this.seen.has(key)) {
      throw fail(`a second <${element.name} type="${type}"> in ${this.describe()} (${where(this.xml, element.at)})`);
    }
    this.seen.set(key, element);
  }

  optional(name: string, type: string): XmlElement | undefined {
    return this.seen.get(`${name} ${type}`);
  }

  private required(name: string, type: string): XmlElement {
    const element = this.optional(name, type);
    if (element === undefined) throw fail(`${this.describe()} has no <${name} type="${type}">`);
    return element;
  }

  block(name: string, type: string): BlockTotal {
    const element = this.required(name, type);
    return { count: countAttribute(this.xml, element, 'count'), size: sizeAttribute(this.xml, element, 'size') };
  }

  size(name: string, type: string): number {
    return sizeAttribute(this.xml, this.required(name, type), 'size');
  }

  private describe(): string {
    const nr = this.parent.attributes.get('nr');
    const label = nr === undefined ? `<${this.parent.name}>` : `<${this.parent.name} nr="${nr}">`;
    return `${label} (${where(this.xml, this.parent.at)})`;
  }
}

/** A byte size or total: a non-negative integer up to Number.MAX_SAFE_INTEGER. */
function sizeAttribute(xml: string, element: XmlElement, name: string): number {
  return integerAttribute(xml, element, name, 'a size');
}

/** A count, number or version: a non-negative integer up to Number.MAX_SAFE_INTEGER. */
function countAttribute(xml: string, element: XmlElement, name: string): number {
  return integerAttribute(xml, element, name, 'a count');
}

function integerAttribute(xml: string, element: XmlElement, name: string, what: string): number {
  const value = element.attributes.get(name);
  if (value === undefined) throw fail(`<${element.name}> (${where(xml, element.at)}) has no ${name} attribute`);
  if (!/^[0-9]+$/.test(value)) {
    throw fail(`<${element.name}> (${where(xml, element.at)}): ${name}="${value}" is not a non-negative integer`);
  }
  // Compared as a bigint: Number() would round a larger value to one that passes.
  if (BigInt(value) > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw fail(`<${element.name}> (${where(xml, element.at)}): ${name}="${value}" is too large for ${what}`);
  }
  return Number(value);
}

function fail(message: string): HeapscopeError {
  return new HeapscopeError('ERR_MALLOC_INFO', `malloc_info: ${message}`);
}

// ---------------------------------------------------------------------------
// A small XML reader for this one format: elements, attributes, whitespace,
// comments, processing instructions (`<?xml …?>`) and CDATA. No DTDs. Text
// inside elements is allowed and ignored; outside the root it is an error.

interface XmlElement {
  name: string;
  attributes: Map<string, string>;
  children: XmlElement[];
  /** Offset of the element's `<` in the document. */
  at: number;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;
const SPACE = /[ \t\r\n]*/y;

function where(xml: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < xml.length; i++) {
    if (xml.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return `line ${line}, column ${offset - start + 1}`;
}

function readXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let pos = xml.charCodeAt(0) === 0xfeff ? 1 : 0;

  const malformed = (message: string, at: number): HeapscopeError =>
    fail(`malformed XML at ${where(xml, at)}: ${message}`);

  const skipPast = (terminator: string, from: number, what: string): number => {
    const end = xml.indexOf(terminator, from);
    if (end < 0) throw malformed(`unterminated ${what}`, from);
    return end + terminator.length;
  };

  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos);
    const textEnd = lt < 0 ? xml.length : lt;
    if (stack.length === 0) {
      const text = xml.slice(pos, textEnd);
      const stray = text.search(/[^ \t\r\n]/);
      if (stray >= 0) {
        throw malformed(root === undefined ? 'text before the root element' : 'text after the root element', pos + stray);
      }
    }
    if (lt < 0) break;
    pos = lt;

    if (xml.startsWith('<!--', pos)) {
      pos = skipPast('-->', pos + 4, 'comment');
      continue;
    }
    if (xml.startsWith('<?', pos)) {
      pos = skipPast('?>', pos + 2, 'processing instruction');
      continue;
    }
    if (xml.startsWith('<![CDATA[', pos)) {
      if (stack.length === 0) throw malformed('CDATA outside the root element', pos);
      pos = skipPast(']]>', pos + 9, 'CDATA section');
      continue;
    }
    if (xml.startsWith('<!', pos)) throw malformed('DTDs and declarations are not supported', pos);

    if (xml.startsWith('</', pos)) {
      NAME.lastIndex = pos + 2;
      const name = NAME.exec(xml)?.[0];
      if (name === undefined) throw malformed('expected a name after "</"', pos + 2);
      SPACE.lastIndex = pos + 2 + name.length;
      SPACE.exec(xml);
      const close = SPACE.lastIndex;
      if (xml[close] !== '>') throw malformed(`expected ">" to end </${name}>`, close);
      const open = stack.pop();
      if (open === undefined) throw malformed(`</${name}> closes nothing`, pos);
      if (open.name !== name) {
        throw malformed(`</${name}> does not close <${open.name}> (opened at ${where(xml, open.at)})`, pos);
      }
      pos = close + 1;
      continue;
    }

    // A start tag or an empty-element tag.
    const at = pos;
    NAME.lastIndex = pos + 1;
    const name = NAME.exec(xml)?.[0];
    if (name === undefined) throw malformed('expected an element name after "<"', pos + 1);
    pos += 1 + name.length;
    const attributes = new Map<string, string>();
    let selfClosing = false;
    for (;;) {
      SPACE.lastIndex = pos;
      SPACE.exec(xml);
      const spaced = SPACE.lastIndex > pos;
      pos = SPACE.lastIndex;
      if (pos >= xml.length) throw malformed(`unterminated tag <${name}>`, at);
      if (xml.startsWith('/>', pos)) {
        selfClosing = true;
        pos += 2;
        break;
      }
      if (xml[pos] === '>') {
        pos += 1;
        break;
      }
      if (!spaced) throw malformed(`expected whitespace, ">" or "/>" in <${name}>`, pos);
      NAME.lastIndex = pos;
      const attribute = NAME.exec(xml)?.[0];
      if (attribute === undefined) throw malformed(`expected an attribute name in <${name}>`, pos);
      pos += attribute.length;
      SPACE.lastIndex = pos;
      SPACE.exec(xml);
      pos = SPACE.lastIndex;
      if (xml[pos] !== '=') throw malformed(`expected "=" after ${attribute} in <${name}>`, pos);
      SPACE.lastIndex = pos + 1;
      SPACE.exec(xml);
      pos = SPACE.lastIndex;
      const quote = xml[pos];
      if (quote !== '"' && quote !== "'") throw malformed(`expected a quoted value for ${attribute} in <${name}>`, pos);
      const end = xml.indexOf(quote, pos + 1);
      if (end < 0) throw malformed(`unterminated value of ${attribute} in <${name}>`, pos);
      const value = xml.slice(pos + 1, end);
      if (value.includes('<')) throw malformed(`"<" in the value of ${attribute} in <${name}>`, pos + 1 + value.indexOf('<'));
      if (attributes.has(attribute)) throw malformed(`duplicate attribute ${attribute} in <${name}>`, pos);
      attributes.set(attribute, decodeEntities(value, (message, offset) => malformed(message, pos + 1 + offset)));
      pos = end + 1;
    }

    const element: XmlElement = { name, attributes, children: [], at };
    const parent = stack[stack.length - 1];
    if (parent !== undefined) parent.children.push(element);
    else if (root !== undefined) throw malformed(`a second root element <${name}>`, at);
    else root = element;
    if (!selfClosing) stack.push(element);
  }

  const open = stack[stack.length - 1];
  if (open !== undefined) {
    throw fail(`malformed XML: <${open.name}> opened at ${where(xml, open.at)} is never closed (truncated report?)`);
  }
  if (root === undefined) throw fail('no <malloc> element: the document is empty or has no elements');
  return root;
}

const ENTITIES = new Map([['lt', '<'], ['gt', '>'], ['amp', '&'], ['quot', '"'], ['apos', "'"]]);

function decodeEntities(value: string, malformed: (message: string, offset: number) => HeapscopeError): string {
  return value.replace(/&([^;&]*);?/g, (match, body: string, offset: number) => {
    if (!match.endsWith(';')) throw malformed('"&" that does not start an entity reference', offset);
    const named = ENTITIES.get(body);
    if (named !== undefined) return named;
    const numeric = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(body);
    const code = numeric === null ? NaN : numeric[1] !== undefined ? parseInt(numeric[1], 16) : parseInt(numeric[2], 10);
    if (!Number.isInteger(code) || code === 0 || code > 0x10ffff) throw malformed(`unknown entity &${body};`, offset);
    return String.fromCodePoint(code);
  });
}
