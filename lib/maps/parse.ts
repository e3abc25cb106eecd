// /proc/<pid>/maps and smaps text, parsed into regions and classified.
import { inspect } from 'node:util';
import { HeapscopeError, typeError } from '../errors';
import { hex } from '../format';
import { InspectContext } from '../presenters';
import { describe } from '../validate';
import { classify } from './classify';
import { MemoryRegion, regionViews } from './region';

// The kernel's format is "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu ", then
// padding and the path. The path is taken verbatim (it may hold spaces, and
// any character but '\n', which the kernel escapes), hence the `s` flag.
const LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/s;
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
      fields = new Map();
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

function parseLine(line: string, lineNumber: number): MemoryRegion {
  const m = LINE.exec(line);
  if (m === null) throw malformed(lineNumber, JSON.stringify(line));
  const [, startHex, endHex, perms, offsetHex, dev, inode, printed = ''] = m;
  const start = BigInt(`0x${startHex}`);
  const end = BigInt(`0x${endHex}`);
  if (end <= start) throw malformed(lineNumber, `end ${hex(end)} is not above start ${hex(start)}`);
  const deleted = printed.endsWith(DELETED);
  const path = deleted ? printed.slice(0, -DELETED.length) : printed;
  const name = /^\[anon(?:_shmem)?:(.*)\]$/s.exec(path)?.[1];
  const region: MemoryRegion = {
    start,
    end,
    size: Number(end - start),
    perms,
    readable: perms[0] === 'r',
    writable: perms[1] === 'w',
    executable: perms[2] === 'x',
    shared: perms[3] === 's',
    offset: Number(BigInt(`0x${offsetHex}`)),
    dev,
    inode: Number(inode),
    path,
    deleted,
    ...(name === undefined ? {} : { name }),
    kind: 'anonymous', // set by classify(), which needs the neighbours
  };
  // Non-enumerable, so the region stays plain data to JSON, spreads and equality checks.
  return Object.defineProperty(region, inspect.custom, {
    value(this: MemoryRegion, depth: number, options: InspectContext) {
      return regionViews.views.inspect(this, depth, options);
    },
  });
}
