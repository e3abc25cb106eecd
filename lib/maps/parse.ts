// /proc/<pid>/maps and smaps text, parsed into regions and classified.
import { inspect } from 'node:util';
import { HeapscopeError, typeError } from '../errors';
import { bigintOf } from '../exact';
import { hex } from '../format';
import { InspectContext } from '../presenters';
import { defineOwn, describe } from '../validate';
import { classify } from './classify';
import { classifyAround, Kept, Line, lineStart, record, sharedHead, sharedTail } from './kept';
import { MemoryRegion, RegionKind, regionViews } from './region';

const SMAPS_FIELD = /^([A-Za-z_]\w*):(?: +(.*))?$/s;
const DELETED = ' (deleted)';

/** The last maps text parsed, as `parse` kept it. */
let last: Kept | undefined;
/** A longer text (a process of tens of thousands of mappings) is not kept. */
const KEEP_TEXT = 1 << 20;

/**
 * Parses /proc/self/maps text (of this or any x86_64 process) and classifies
 * its regions. A region is a function of its line alone, and between two
 * reads of a process's map most lines are the same (a REPL showing
 * allocations, each with its region; `watch`'s ticks): a line the last text
 * had too is not parsed again, and gets a copy of that line's region. Its
 * kind, which depends on other lines too, is made afresh only where a
 * changed line may have changed it (classifyAround).
 */
export function parseMaps(text: string): MemoryRegion[] {
  if (last !== undefined && last.text === text) {
    const { parsed, kinds, objects } = last;
    return parsed.map((region, i) => marked(region, kinds[i], objects[i]));
  }
  // Only whole lines are kept: a text cut short may go on in the next one.
  const kept: Kept | undefined = typeof text === 'string' && text.length <= KEEP_TEXT && text.endsWith('\n')
    ? { text, ends: [], parsed: [], kinds: [], objects: [] }
    : undefined;
  const regions = parse(text, false, kept, last);
  last = kept;
  return regions;
}

/**
 * Parses /proc/self/smaps text: each maps line followed by `Key: value` lines.
 * Fills `rss`, `pss` and `anonymous` (the kernel prints kB; these are bytes).
 */
export function parseSmaps(text: string): MemoryRegion[] {
  return parse(text, true, undefined, undefined);
}

function malformed(lineNumber: number, why: string): HeapscopeError {
  return new HeapscopeError('ERR_READ_FAILED', `malformed maps text, line ${lineNumber}: ${why}`);
}

/**
 * `kept` gets the text's line ends and each line's region as parsed; a line
 * `before` had too is not parsed again. The lines both texts start and end
 * with are found first; between them, both are in address order, so the
 * only lines of `before` a line can equal are the one after the last line
 * matched, or the one after that (a region gone); past a line parsed
 * afresh, the lines of `before` that start below its end can equal no
 * later line.
 */
function parse(text: string, smaps: boolean, kept: Kept | undefined, before: Kept | undefined): MemoryRegion[] {
  if (typeof text !== 'string') throw typeError(`text must be a string, got ${describe(text)}`);
  const regions: MemoryRegion[] = [];
  let lineNumber = 0;
  const add = (region: MemoryRegion): void => {
    const previous = regions[regions.length - 1];
    if (previous !== undefined && region.start < previous.end) {
      throw malformed(lineNumber, `region at ${hex(region.start)} is not above the previous one (ends ${hex(previous.end)})`);
    }
    regions.push(region);
  };
  const reuse = kept !== undefined && before !== undefined ? before : undefined;
  const head = reuse === undefined ? 0 : sharedHead(text, reuse);
  const tail = reuse === undefined ? 0 : sharedTail(text, reuse, head);
  // The shared lines are in order: `before`'s parse checked them. Only where
  // they meet the others is checked (bigints compared cost more than the copy).
  if (head > 0) {
    kept!.ends = reuse!.ends.slice(0, head);
    kept!.parsed = reuse!.parsed.slice(0, head);
  }
  for (let i = 0; i < head; i++) regions.push(copyLine(reuse!.parsed[i]));
  lineNumber = head;
  const tailFrom = reuse === undefined ? 0 : reuse.ends.length - tail;
  const middleEnd = text.length - (reuse === undefined ? 0 : reuse.text.length - lineStart(reuse, tailFrom));
  let fields = new Map<string, string>();
  let header = 0;
  const finish = (): void => {
    if (!smaps || regions.length === 0) return;
    const region = regions[regions.length - 1];
    // Huge pages are resident memory the process holds, but smaps' Rss leaves them out (Linux 4.4 and later give them apart).
    defineOwn(region, 'rss', kilobytes(fields, 'Rss', header) + optionalKilobytes(fields, 'Private_Hugetlb', header) + optionalKilobytes(fields, 'Shared_Hugetlb', header));
    defineOwn(region, 'pss', kilobytes(fields, 'Pss', header));
    defineOwn(region, 'anonymous', kilobytes(fields, 'Anonymous', header));
  };
  /** The line of `before` this one is compared with first (its lines between the shared head and tail). */
  let j = head;
  const oldLine = (k: number): string | undefined => (k < tailFrom ? reuse!.text.slice(lineStart(reuse!, k), reuse!.ends[k] - 1) : undefined);
  // Line by line where the text lies, not split into strings first.
  for (let at = reuse === undefined ? 0 : lineStart(reuse, head); at < middleEnd;) {
    const newline = text.indexOf('\n', at);
    const stop = newline < 0 ? text.length : newline;
    lineNumber++;
    // Field names hold no '-', so hex digits then '-' mark a region line.
    if (!smaps || regionLine(text, at, stop)) {
      finish();
      let region: MemoryRegion | undefined;
      if (kept !== undefined) {
        kept.ends.push(stop + 1);
        let source: Line | undefined;
        if (reuse !== undefined) {
          // Compared as strings: startsWith(line, at) cost several times a slice and ===.
          const line = text.slice(at, stop);
          if (line === oldLine(j)) source = reuse.parsed[j++];
          else if (line === oldLine(j + 1)) {
            source = reuse.parsed[j + 1];
            j += 2;
          }
        }
        if (source !== undefined) {
          region = copyLine(source);
          kept.parsed.push(source);
        }
      }
      if (region === undefined) {
        region = parseLine(text, at, stop, lineNumber);
        kept?.parsed.push(keptLine(region));
        if (reuse !== undefined) while (j < tailFrom && reuse.parsed[j].start < region.end) j++;
      }
      add(region);
      if (smaps) fields = new Map();
      header = lineNumber;
    } else {
      const line = text.slice(at, stop);
      const field = SMAPS_FIELD.exec(line);
      if (field === null) throw malformed(lineNumber, `neither a region nor a 'Key: value' line: ${JSON.stringify(line)}`);
      if (regions.length === 0) throw malformed(lineNumber, 'a field before the first region');
      fields.set(field[1], field[2] ?? '');
    }
    at = stop + 1;
  }
  finish();
  const shift = reuse === undefined ? 0 : text.length - reuse.text.length;
  for (let i = tailFrom; i < tailFrom + tail; i++) {
    const region = copyLine(reuse!.parsed[i]);
    lineNumber++;
    if (i === tailFrom) add(region);
    else regions.push(region);
    kept!.ends.push(reuse!.ends[i] + shift);
    kept!.parsed.push(reuse!.parsed[i]);
  }
  if (reuse === undefined || head + tail === 0 || !classifyAround(regions, reuse, head, tail, kept!)) {
    classify(regions);
    if (kept !== undefined) record(regions, kept, 0, regions.length);
  }
  return regions;
}

/** The line from `at` to `stop` starts with hex digits and a '-'. */
function regionLine(text: string, at: number, stop: number): boolean {
  let i = at;
  for (; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) break;
  }
  return i > at && i < stop && text.charCodeAt(i) === 45;
}

/** A `Key: <n> kB` field that older kernels do not print, in bytes; 0 where it is missing. */
function optionalKilobytes(fields: Map<string, string>, key: string, header: number): number {
  return fields.has(key) ? kilobytes(fields, key, header) : 0;
}

/** A `Key: <n> kB` field in bytes (resident memory: far below 2^53). */
function kilobytes(fields: Map<string, string>, key: string, header: number): number {
  const value = fields.get(key);
  const match = value === undefined ? null : /^(\d+) kB$/.exec(value);
  if (match === null) throw malformed(header, `the region has no '${key}: <n> kB' line`);
  return Number(match[1]) * 1024;
}

// The kernel's format is "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu ", then
// padding and the path: /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps])
// ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/s. It is read here by
// hand, a character at a time, and each number is built as it is read: a
// match, its fifteen-field object of strings and a BigInt parsed from a
// string per address cost ~1 us a line. The path is taken verbatim (it may
// hold spaces, and any character but '\n', which the kernel escapes).

/** Where the last field read ended (the index of the character after it). */
let cursor = 0;
/** The last hex field read, when it has more than 13 digits (2^52 and up); else undefined. */
let wide: bigint | undefined;

/** The hex digits [0-9a-f] from `at` up to the character `stop`, as a number (-1: none, or another character). */
function hexField(line: string, at: number, stop: number): number {
  let value = 0;
  let i = at;
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c >= 48 && c <= 57) value = value * 16 + (c - 48);
    else if (c >= 97 && c <= 102) value = value * 16 + (c - 87);
    else break;
  }
  if (i === at || line.charCodeAt(i) !== stop) return -1;
  // Past 13 digits a double may round: read the digits as a bigint instead.
  wide = i - at > 13 ? BigInt(`0x${line.slice(at, i)}`) : undefined;
  cursor = i + 1;
  return value;
}

/** Each of the 16 permission strings ([r-][w-][x-][ps]), indexed by r w x s as bits 3 to 0: one string each, not a slice per line. */
const PERM_STRINGS = Array.from({ length: 16 }, (_, k) =>
  `${k & 8 ? 'r' : '-'}${k & 4 ? 'w' : '-'}${k & 2 ? 'x' : '-'}${k & 1 ? 's' : 'p'}`);

/**
 * A parsed region: its fields are own data properties, as a literal's; the
 * console's inspect hook lives on the prototype, so the region stays plain
 * data to JSON, spreads and equality checks without a defineProperty per
 * region (~135 ns each, more than the rest of the line).
 */
class Region {
  // Declared, so defined on each region before the constructor assigns them
  // (an assignment alone would meet an accessor someone put on Object.prototype).
  start!: bigint;
  end!: bigint;
  size!: number;
  perms!: string;
  readable!: boolean;
  writable!: boolean;
  executable!: boolean;
  shared!: boolean;
  offset!: number;
  dev!: string;
  inode!: number;
  path!: string;
  deleted!: boolean;
  kind!: RegionKind;

  constructor(
    start: bigint, end: bigint, size: number, perms: string, offset: number, dev: string, inode: number,
    path: string, deleted: boolean, name: string | undefined,
  ) {
    const r = this as unknown as MemoryRegion;
    r.start = start;
    r.end = end;
    r.size = size;
    r.perms = perms;
    r.readable = perms.charCodeAt(0) === 114;
    r.writable = perms.charCodeAt(1) === 119;
    r.executable = perms.charCodeAt(2) === 120;
    r.shared = perms.charCodeAt(3) === 115;
    r.offset = offset;
    r.dev = dev;
    r.inode = inode;
    r.path = path;
    r.deleted = deleted;
    r.kind = 'anonymous'; // set by classify(), which needs the neighbours
    if (name !== undefined) defineOwn(r, 'name', name);
  }

  [inspect.custom](this: MemoryRegion, depth: number, options: InspectContext): string {
    return regionViews.views.inspect(this, depth, options);
  }
}

/** A region as its line made it, before classify() marks it. */
function copyLine(from: Line): MemoryRegion {
  return new Region(from.start, from.end, from.size, from.perms, from.offset, from.dev, from.inode, from.path, from.deleted, from.name) as unknown as MemoryRegion;
}

/**
 * A fresh region as a line to keep, its strings in memory of their own (a
 * slice of the text keeps the whole text alive). A literal: its fields are
 * defined, never set through an accessor on Object.prototype.
 */
function keptLine(r: MemoryRegion): Line {
  const name = Object.hasOwn(r, 'name') ? detached(r.name!) : undefined;
  return {
    start: r.start, end: r.end, size: r.size, perms: r.perms, readable: r.readable, writable: r.writable, executable: r.executable,
    shared: r.shared, offset: r.offset, dev: r.dev, inode: r.inode, path: detached(r.path), deleted: r.deleted, name,
  };
}

/** `s` copied out of the string it was sliced from: a concatenation is flattened into a string of its own. */
const detached = (s: string): string => (' ' + s).slice(1);

/** A copy of a region as parsed, marked as classify() marked it. */
function marked(from: Line, kind: RegionKind, object: string | undefined): MemoryRegion {
  const r = copyLine(from);
  r.kind = kind;
  if (object !== undefined) defineOwn(r, 'object', object);
  return r;
}

function badLine(text: string, at: number, stop: number, lineNumber: number): HeapscopeError {
  return malformed(lineNumber, JSON.stringify(text.slice(at, stop)));
}

/** The region line of `text` from `at` to `stop` (its newline or the text's end). */
function parseLine(text: string, at: number, stop: number, lineNumber: number): MemoryRegion {
  const startNumber = hexField(text, at, 45 /* - */);
  if (startNumber < 0) throw badLine(text, at, stop, lineNumber);
  const startWide = wide;
  const start = startWide ?? bigintOf(startNumber);
  const endNumber = hexField(text, cursor, 32);
  if (endNumber < 0) throw badLine(text, at, stop, lineNumber);
  const endWide = wide;
  const end = endWide ?? bigintOf(endNumber);
  const permsAt = cursor;
  if (permsAt + 4 >= stop || text.charCodeAt(permsAt + 4) !== 32) throw badLine(text, at, stop, lineNumber);
  const r = text.charCodeAt(permsAt);
  const w = text.charCodeAt(permsAt + 1);
  const x = text.charCodeAt(permsAt + 2);
  const p = text.charCodeAt(permsAt + 3);
  if ((r !== 114 && r !== 45) || (w !== 119 && w !== 45) || (x !== 120 && x !== 45) || (p !== 112 && p !== 115)) {
    throw badLine(text, at, stop, lineNumber);
  }
  const permBits = (r === 114 ? 8 : 0) | (w === 119 ? 4 : 0) | (x === 120 ? 2 : 0) | (p === 115 ? 1 : 0);
  const perms = PERM_STRINGS[permBits];
  let offset = hexField(text, permsAt + 5, 32);
  if (offset < 0) throw badLine(text, at, stop, lineNumber);
  if (wide !== undefined) offset = Number(wide);
  const devAt = cursor;
  if (hexField(text, devAt, 58 /* : */) < 0 || hexField(text, cursor, 32) < 0) throw badLine(text, at, stop, lineNumber);
  const dev = text.slice(devAt, cursor - 1);
  const inodeAt = cursor;
  let i = inodeAt;
  let inode = 0;
  for (; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    inode = inode * 10 + (c - 48);
  }
  if (i === inodeAt || (i < stop && text.charCodeAt(i) !== 32)) throw badLine(text, at, stop, lineNumber);
  // Past 15 digits a double may round as it is built: the string's own conversion is the correctly rounded one.
  if (i - inodeAt > 15) inode = Number(text.slice(inodeAt, i));
  while (i < stop && text.charCodeAt(i) === 32) i++;
  if (end <= start) throw malformed(lineNumber, `end ${hex(end)} is not above start ${hex(start)}`);
  const size = startWide === undefined && endWide === undefined ? endNumber - startNumber : Number(end - start);
  const deleted = stop - i >= DELETED.length && text.startsWith(DELETED, stop - DELETED.length);
  const path = i === stop ? '' : text.slice(i, deleted ? stop - DELETED.length : stop);
  const name = path.startsWith('[anon') ? /^\[anon(?:_shmem)?:(.*)\]$/s.exec(path)?.[1] : undefined;
  return new Region(start, end, size, perms, offset, dev, inode, path, deleted, name) as unknown as MemoryRegion;
}
