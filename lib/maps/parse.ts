// /proc/<pid>/maps and smaps text, parsed into regions and classified.
import { inspect } from 'node:util';
import { HeapscopeError, typeError } from '../errors';
import { bigintOf } from '../exact';
import { hex } from '../format';
import { InspectContext } from '../presenters';
import { describe } from '../validate';
import { classify } from './classify';
import { MemoryRegion, regionViews } from './region';

const SMAPS_FIELD = /^([A-Za-z_]\w*):(?: +(.*))?$/s;
const DELETED = ' (deleted)';

/** Parses /proc/self/maps text (of this or any x86_64 process) and classifies its regions. */
export function parseMaps(text: string): MemoryRegion[] {
  return parse(text, false);
}

/**
 * Parses /proc/self/smaps text: each maps line followed by `Key: value` lines.
 * Fills `rss`, `pss` and `anonymous` (the kernel prints kB; these are bytes).
 */
export function parseSmaps(text: string): MemoryRegion[] {
  return parse(text, true);
}

function malformed(lineNumber: number, why: string): HeapscopeError {
  return new HeapscopeError('ERR_READ_FAILED', `malformed maps text, line ${lineNumber}: ${why}`);
}

function parse(text: string, smaps: boolean): MemoryRegion[] {
  if (typeof text !== 'string') throw typeError(`text must be a string, got ${describe(text)}`);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const regions: MemoryRegion[] = [];
  let fields = new Map<string, string>();
  let header = 0;
  const finish = (): void => {
    if (!smaps || regions.length === 0) return;
    const region = regions[regions.length - 1];
    region.rss = kilobytes(fields, 'Rss', header);
    region.pss = kilobytes(fields, 'Pss', header);
    region.anonymous = kilobytes(fields, 'Anonymous', header);
  };
  lines.forEach((line, index) => {
    const lineNumber = index + 1;
    // Field names hold no '-', so hex digits then '-' mark a region line.
    if (!smaps || /^[0-9a-f]+-/.test(line)) {
      finish();
      const region = parseLine(line, lineNumber);
      const previous = regions[regions.length - 1];
      if (previous !== undefined && region.start < previous.end) {
        throw malformed(lineNumber, `region at ${hex(region.start)} is not above the previous one (ends ${hex(previous.end)})`);
      }
      regions.push(region);
      if (smaps) fields = new Map();
      header = lineNumber;
      return;
    }
    const field = SMAPS_FIELD.exec(line);
    if (field === null) throw malformed(lineNumber, `neither a region nor a 'Key: value' line: ${JSON.stringify(line)}`);
    if (regions.length === 0) throw malformed(lineNumber, 'a field before the first region');
    fields.set(field[1], field[2] ?? '');
  });
  finish();
  classify(regions);
  return regions;
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

const PERMS = [[114, 45], [119, 45], [120, 45], [112, 115]]; // [r-] [w-] [x-] [ps]

/**
 * A parsed region: its fields are own data properties, as a literal's; the
 * console's inspect hook lives on the prototype, so the region stays plain
 * data to JSON, spreads and equality checks without a defineProperty per
 * region (~135 ns each, more than the rest of the line).
 */
class Region {
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
    if (name !== undefined) r.name = name;
    r.kind = 'anonymous'; // set by classify(), which needs the neighbours
  }

  [inspect.custom](this: MemoryRegion, depth: number, options: InspectContext): string {
    return regionViews.views.inspect(this, depth, options);
  }
}

function parseLine(line: string, lineNumber: number): MemoryRegion {
  const bad = (): HeapscopeError => malformed(lineNumber, JSON.stringify(line));
  const startNumber = hexField(line, 0, 45 /* - */);
  if (startNumber < 0) throw bad();
  const startWide = wide;
  const start = startWide ?? bigintOf(startNumber);
  const endNumber = hexField(line, cursor, 32);
  if (endNumber < 0) throw bad();
  const endWide = wide;
  const end = endWide ?? bigintOf(endNumber);
  const at = cursor;
  for (let k = 0; k < 4; k++) {
    const c = line.charCodeAt(at + k);
    if (c !== PERMS[k][0] && c !== PERMS[k][1]) throw bad();
  }
  if (line.charCodeAt(at + 4) !== 32) throw bad();
  const perms = line.slice(at, at + 4);
  let offset = hexField(line, at + 5, 32);
  if (offset < 0) throw bad();
  if (wide !== undefined) offset = Number(wide);
  const devAt = cursor;
  if (hexField(line, devAt, 58 /* : */) < 0 || hexField(line, cursor, 32) < 0) throw bad();
  const dev = line.slice(devAt, cursor - 1);
  const inodeAt = cursor;
  let i = inodeAt;
  while (i < line.length && line.charCodeAt(i) >= 48 && line.charCodeAt(i) <= 57) i++;
  if (i === inodeAt || (i < line.length && line.charCodeAt(i) !== 32)) throw bad();
  const inode = Number(line.slice(inodeAt, i));
  while (i < line.length && line.charCodeAt(i) === 32) i++;
  const printed = line.slice(i);
  if (end <= start) throw malformed(lineNumber, `end ${hex(end)} is not above start ${hex(start)}`);
  const size = startWide === undefined && endWide === undefined ? endNumber - startNumber : Number(end - start);
  const deleted = printed.endsWith(DELETED);
  const path = deleted ? printed.slice(0, -DELETED.length) : printed;
  const name = path.startsWith('[anon') ? /^\[anon(?:_shmem)?:(.*)\]$/s.exec(path)?.[1] : undefined;
  return new Region(start, end, size, perms, offset, dev, inode, path, deleted, name) as unknown as MemoryRegion;
}
