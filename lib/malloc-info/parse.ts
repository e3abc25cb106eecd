// glibc's malloc_info(0, fp) report, parsed into the model of records.ts.
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
//   <total type="fast" count size/>    chunks in fastbins (none from 2.43, which dropped them)
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
// Every size, total and count is a number. glibc prints them as size_t; a
// value above Number.MAX_SAFE_INTEGER (2^53 − 1, far beyond any heap) is
// rejected rather than rounded.
import { typeError } from '../errors';
import { withInspect } from '../presenters';
import { ArenaInfo, BlockTotal, MallocInfo, mallocInfoViews, SizeClassEntry, UnsortedEntry } from './records';
import { fail, readXml, where, XmlElement } from './xml';

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
      ...tally.fast(),
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
    ...tally.fast(),
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

  /** The fastbins' total, where glibc writes one (to 2.42). */
  fast(): { fast?: BlockTotal } {
    return this.optional('total', 'fast') === undefined ? {} : { fast: this.block('total', 'fast') };
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
