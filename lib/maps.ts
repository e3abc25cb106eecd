// The process map, from /proc/self/maps (or /proc/self/smaps for resident
// sizes), with each region classified by what it holds.
import fs from 'node:fs';
import { inspect } from 'node:util';
import { binding } from './binding';
import { HeapscopeError, typeError } from './errors';
import { hex } from './format';
import { describe, lookup, ownProperty, readArray, readOptions, toAddress } from './validate';
import { InspectContext, MimeBundle, presenter } from './presenters';

/**
 * What a region holds. The kernel only says "file", "anonymous" or a bracketed
 * name; the rest is inferred from permissions and neighbours, first match wins:
 *
 * | kind             | how it is recognised                                                           |
 * |------------------|--------------------------------------------------------------------------------|
 * | `heap`           | `[heap]`: main_arena's brk heap (ends at the program break)                    |
 * | `stack`          | `[stack]` (and `[stack:tid]`, the thread stacks of Linux 3.4 to 4.4)           |
 * | `vdso`           | `[vdso]`                                                                       |
 * | `vvar`           | `[vvar]`, `[vvar_vclock]`                                                      |
 * | `vsyscall`       | `[vsyscall]`                                                                   |
 * | `arena-heap`     | anonymous `rw-p` starting on a 64 MiB (HEAP_MAX_SIZE) boundary, either exactly |
 * |                  | 64 MiB long or followed by adjacent anonymous `---p` regions up to the next    |
 * |                  | 64 MiB boundary: a glibc thread arena's heap_info, grown part                  |
 * | `arena-reserved` | those trailing `---p` regions: the arena heap's room to grow                   |
 * | `text`           | executable file mapping (its path is then an ELF object)                       |
 * | `data`           | writable private file mapping                                                  |
 * | `rodata`         | read-only file mapping of a file that also has a `text` mapping (incl. RELRO)  |
 * | `bss`            | anonymous `rw-p` whose start is the end of an ELF object's last mapping        |
 * | `reserved`       | any other mapping with no access (`---p`): guard pages, V8 reservations, the   |
 * |                  | holes between an ELF's segments                                                |
 * | `file`           | any other file mapping: data files, /dev/shm, `/memfd:…`, `/dev/zero (deleted)`|
 * | `anonymous`      | any other anonymous mapping, named (`[anon:…]`) or not: mmapped chunks, thread |
 * |                  | stacks, V8 pages, JIT code                                                     |
 *
 * Limits of the inference:
 * - `bss`: only the part of .bss past the data segment's last file page gets an
 *   anonymous mapping; the rest lives zero-filled in the `data` mapping (and a
 *   .bss that fits there has no `bss` region at all). The kernel also merges
 *   the bss with an anonymous `rw-p` neighbour above it, and an unrelated
 *   mapping can sit right above a library whose .bss needs no pages. From text
 *   alone ({@link parseMaps}) that is indistinguishable; {@link maps} checks
 *   the object's program headers in memory and calls such a region `anonymous`.
 * - `arena-heap` assumes the default HEAP_MAX_SIZE; with the
 *   `glibc.malloc.hugetlb` tunable, arena heaps are smaller and show as
 *   `anonymous` + `reserved`.
 */
export type RegionKind =
  | 'text'
  | 'rodata'
  | 'data'
  | 'bss'
  | 'heap'
  | 'arena-heap'
  | 'arena-reserved'
  | 'stack'
  | 'vdso'
  | 'vvar'
  | 'vsyscall'
  | 'reserved'
  | 'anonymous'
  | 'file';

/**
 * Addresses (`start`, `end`) are bigints: user addresses reach 2^47 (2^56
 * with 5-level paging) and vsyscall sits at 0xffffffffff600000, past 2^53.
 * Sizes, offsets and resident byte counts are numbers.
 */
export interface MemoryRegion {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /**
   * `end - start` in bytes. Exact below 2^53 (8 PiB), which covers every
   * real region: user space is 2^47 bytes (2^56 with 5-level paging, and
   * then only for mappings asked for above 2^47).
   */
  size: number;
  /** As the kernel prints it, e.g. `r-xp`. */
  perms: string;
  readable: boolean;
  writable: boolean;
  executable: boolean;
  /** `s` rather than `p`: writes reach the file or other processes. */
  shared: boolean;
  /**
   * Offset into the file in bytes (0 for anonymous mappings); exact below
   * 2^53, which covers every file and device offset but one into a sparse
   * file of more than 8 PiB.
   */
  offset: number;
  /** `major:minor` in hex, as printed. */
  dev: string;
  /** 0 for anonymous mappings; exact below 2^53. */
  inode: number;
  /**
   * The file, or the kernel's bracketed name (`[heap]`, `[anon:name]`) as
   * printed; '' for an unnamed anonymous mapping. Without ` (deleted)`.
   */
  path: string;
  /** The path ended with ` (deleted)`: the file was unlinked (always so for memfds). */
  deleted: boolean;
  /** The name of an `[anon:name]` (or `[anon_shmem:name]`) mapping, set with PR_SET_VMA. */
  name?: string;
  kind: RegionKind;
  /** For ELF segments and their bss: the ELF file they belong to. */
  object?: string;
  /** Resident bytes; only with `{ rss: true }`. */
  rss?: number;
  /** Proportional set size: resident bytes divided among the processes sharing them. */
  pss?: number;
  /** Resident bytes that are anonymous (including copy-on-write copies of file pages). */
  anonymous?: number;
}

export interface MapsOptions {
  /** Read /proc/self/smaps instead, to fill `rss`, `pss` and `anonymous` (slower). */
  rss?: boolean;
}

/**
 * glibc's HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX. A bigint,
 * unlike other sizes, because it is only used in address arithmetic: the
 * alignment of, and the distance from, a region's `start`.
 */
const HEAP_MAX_SIZE = 64n << 20n;

// The kernel's format is "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu ", then
// padding and the path. The path is taken verbatim (it may hold spaces, and
// any character but '\n', which the kernel escapes), hence the `s` flag.
const LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/s;
const SMAPS_FIELD = /^([A-Za-z_]\w*):(?: +(.*))?$/s;
const DELETED = ' (deleted)';

const PSEUDO: Record<string, RegionKind> = {
  '[heap]': 'heap',
  '[stack]': 'stack',
  '[vdso]': 'vdso',
  '[vvar]': 'vvar',
  '[vvar_vclock]': 'vvar',
  '[vsyscall]': 'vsyscall',
};

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

/** The current map of this process. `{ rss: true }` adds resident sizes. */
export function maps(options: MapsOptions = {}): MemoryRegion[] {
  const rss = readOptions(options, 'options', ['rss']).rss ?? false;
  if (typeof rss !== 'boolean') throw typeError(`options.rss must be a boolean, got ${describe(rss)}`);
  const file = rss ? '/proc/self/smaps' : '/proc/self/maps';
  // The kernel produces these files a buffer at a time; a thread that maps,
  // unmaps or grows an arena between two read()s tears the text (a region
  // shown twice or overlapping), which the parser rejects. A re-read is clean.
  for (let attempt = 1; ; attempt++) {
    const text = readProc(file);
    try {
      const regions = rss ? parseSmaps(text) : parseMaps(text);
      checkBss(regions);
      return displayable(regions);
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

/**
 * The region holding `address` (start <= address < end), or undefined in a
 * hole. Reads the map now unless `regions` (sorted, as parsed) is given.
 */
export function regionOf(address: bigint, regions?: readonly MemoryRegion[]): MemoryRegion | undefined {
  toAddress(address);
  const list = regions === undefined ? maps() : readArray(regions, 'regions') as MemoryRegion[];
  // A caller's list is checked where the search looks: each region it
  // meets must have bigint bounds.
  const bound = (i: number, key: 'start' | 'end'): bigint => {
    const region: unknown = list[i];
    const value = typeof region === 'object' && region !== null ? ownProperty(region, key, `regions[${i}]`) : undefined;
    if (typeof value !== 'bigint') throw typeError(`regions[${i}] must be a MemoryRegion with bigint start and end, got ${describe(region)}`);
    return value;
  };
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bound(mid, 'end') <= address) lo = mid + 1;
    else hi = mid;
  }
  return lo < list.length && bound(lo, 'start') <= address ? list[lo] : undefined;
}

/** How a region and a list of them show themselves; installed by the view layer. */
export const regionViews = presenter<{
  inspect(region: MemoryRegion, depth: number, options?: InspectContext): string;
  bundle(regions: readonly MemoryRegion[]): MimeBundle;
}>('MemoryRegion');

/** Notebooks show the list as a table; non-enumerable, so the array stays plain data. */
function displayable(regions: MemoryRegion[]): MemoryRegion[] {
  const show = { value(this: MemoryRegion[]) { return regionViews.views.bundle(this); } };
  return Object.defineProperties(regions, { [Symbol.for('Jupyter.display')]: show, _toMime: show });
}

function readProc(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new HeapscopeError('ERR_READ_FAILED', `cannot read ${file}: ${e.message}`, {
      errno: e.errno === undefined ? undefined : Math.abs(e.errno),
      syscall: e.syscall,
    });
  }
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

function isFile(r: MemoryRegion): boolean {
  return r.path !== '' && !r.path.startsWith('[');
}

function isAnonymous(r: MemoryRegion): boolean {
  return r.path === '' || r.name !== undefined;
}

function fileKey(r: MemoryRegion): string {
  return `${r.dev} ${r.inode} ${r.path}`;
}

function classify(regions: MemoryRegion[]): void {
  // An ELF object is recognised by its executable segment: data files are not mapped executable.
  const elves = new Set(regions.filter((r) => r.executable && isFile(r)).map(fileKey));
  for (let i = 0; i < regions.length; i++) {
    const r = regions[i];
    const arena = arenaLength(regions, i);
    if (arena > 0) {
      r.kind = 'arena-heap';
      for (let j = i + 1; j < i + arena; j++) regions[j].kind = 'arena-reserved';
      i += arena - 1;
      continue;
    }
    const noAccess = !r.readable && !r.writable && !r.executable;
    if (isFile(r)) {
      if (elves.has(fileKey(r))) r.object = r.path;
      if (noAccess) r.kind = 'reserved';
      else if (r.executable) r.kind = 'text';
      else if (r.writable && !r.shared) r.kind = 'data';
      else if (r.object !== undefined) r.kind = 'rodata';
      else r.kind = 'file';
      continue;
    }
    const previous = regions[i - 1];
    const pseudo = lookup(PSEUDO, r.path);
    if (pseudo !== undefined) r.kind = pseudo;
    else if (/^\[stack:\d+\]$/.test(r.path)) r.kind = 'stack';
    else if (noAccess) r.kind = 'reserved';
    else if (
      r.perms === 'rw-p' && isAnonymous(r) &&
      previous?.end === r.start && previous.object !== undefined && isFile(previous)
    ) {
      r.kind = 'bss';
      r.object = previous.object;
    } else r.kind = 'anonymous';
  }
}

/**
 * How many regions from `i` make up one glibc thread-arena heap, or 0. glibc
 * maps HEAP_MAX_SIZE of PROT_NONE at a HEAP_MAX_SIZE-aligned address and
 * mprotects it read-write from the bottom as the arena grows, so the heap is
 * a rw-p part up to exactly the next 64 MiB boundary. The `---p` tail may be
 * two regions (shrink_heap remaps without MAP_NORESERVE, so they don't merge).
 * Requiring the exact end keeps out V8's code range, whose 64 MiB-aligned
 * start is a small rw-p followed by a guard page and then rwx code.
 */
function arenaLength(regions: MemoryRegion[], i: number): number {
  const r = regions[i];
  if (r.perms !== 'rw-p' || !isAnonymous(r) || r.start % HEAP_MAX_SIZE !== 0n) return 0;
  const limit = r.start + HEAP_MAX_SIZE;
  let j = i;
  while (regions[j].end < limit) {
    const next = regions[j + 1];
    if (next === undefined || next.start !== regions[j].end || next.perms !== '---p' || !isAnonymous(next)) return 0;
    j++;
  }
  return regions[j].end === limit ? j - i + 1 : 0;
}

/**
 * Unclaims `bss` regions that start at or above the end of their object's
 * memory image (per its PT_LOAD headers, read from the live ELF header): an
 * unrelated mapping that happens to sit right above a library.
 */
function checkBss(regions: MemoryRegion[]): void {
  for (let i = 1; i < regions.length; i++) {
    const r = regions[i];
    if (r.kind !== 'bss') continue;
    const end = imageEnd(regions, i - 1);
    if (end !== undefined && r.start >= end) {
      r.kind = 'anonymous';
      delete r.object;
    }
  }
}

/** The page-rounded end of the loaded ELF image whose last file mapping is regions[last]. */
function imageEnd(regions: MemoryRegion[], last: number): bigint | undefined {
  const key = fileKey(regions[last]);
  let first = last;
  while (first > 0 && regions[first].offset !== 0 && fileKey(regions[first - 1]) === key) first--;
  if (regions[first].offset !== 0) return undefined;
  const base = regions[first].start;
  try {
    const elf = binding.readMemory(base, 64n);
    if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 /* ELFCLASS64 */) return undefined;
    const phoff = elf.readBigUInt64LE(0x20);
    const phentsize = elf.readUInt16LE(0x36);
    const phnum = elf.readUInt16LE(0x38);
    const table = binding.readMemory(base + phoff, BigInt(phentsize * phnum));
    let low: bigint | undefined;
    let high = 0n;
    for (let k = 0; k < phnum; k++) {
      const ph = table.subarray(k * phentsize);
      if (ph.readUInt32LE(0) !== 1 /* PT_LOAD */) continue;
      const vaddr = ph.readBigUInt64LE(0x10);
      const memsz = ph.readBigUInt64LE(0x28);
      low ??= vaddr; // PT_LOAD entries are sorted by address, and the first maps file offset 0 at `base`
      if (vaddr + memsz > high) high = vaddr + memsz;
    }
    if (low === undefined) return undefined;
    const page = BigInt(binding.pageSize());
    const roundUp = (v: bigint): bigint => (v + page - 1n) & -page;
    return base - (low & -page) + roundUp(high);
  } catch {
    return undefined; // unreadable or unloaded meanwhile: keep the guess from the text
  }
}
