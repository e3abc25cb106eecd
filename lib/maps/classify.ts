// What each region holds, inferred from the map (the rules: RegionKind in
// region.ts) and, for a bss, checked against the ELF image in memory.
import { binding } from '../binding';
import { defineOwn, lookup } from '../validate';
import { HUGE_PAGES_PATH, MemoryRegion, RegionKind } from './region';

/**
 * glibc's HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX. A bigint,
 * unlike other sizes, because it is only used in address arithmetic: the
 * alignment of, and the distance from, a region's `start`.
 */
const HEAP_MAX_SIZE = 64n << 20n;
/** What imageEnd reads first: the ELF header and, usually, the program headers. */
const FIRST_PAGE = 4096;
/** The longest program header table read (a linker's hold a few dozen entries of 56 bytes). */
const MAX_TABLE = 64n << 10n;

const PSEUDO: Record<string, RegionKind> = {
  '[heap]': 'heap',
  '[stack]': 'stack',
  '[vdso]': 'vdso',
  '[vvar]': 'vvar',
  '[vvar_vclock]': 'vvar',
  '[vsyscall]': 'vsyscall',
};

// Anonymous memory of huge pages is backed by a file the kernel made on
// hugetlbfs and unlinked, whose name the map prints: no file a program mapped.
function isFile(r: Pick<MemoryRegion, 'path'>): boolean {
  return r.path !== '' && !r.path.startsWith('[') && r.path !== HUGE_PAGES_PATH;
}

function isAnonymous(r: MemoryRegion): boolean {
  return r.path === '' || Object.hasOwn(r, 'name');
}

/** A mapping that makes its file an ELF object for classify(). */
export function executableFile(r: Pick<MemoryRegion, 'executable' | 'path'>): boolean {
  return r.executable && isFile(r);
}

/** A mapping that may be part of a thread-arena heap's reserved tail (arenaLength). */
export function reservedTail(r: MemoryRegion): boolean {
  return r.perms === '---p' && isAnonymous(r);
}

function sameFile(a: MemoryRegion, b: MemoryRegion): boolean {
  return a.inode === b.inode && a.dev === b.dev && a.path === b.path;
}

/**
 * Marks each region of `regions` from `from` up to `to` with its kind (and
 * `object`). A kind depends on the region's line, the line before it (a
 * bss), the lines after it (an arena heap's reserved tail, which the range
 * must hold whole) and the file's executable mappings anywhere in the map.
 */
export function classify(regions: MemoryRegion[], from = 0, to = regions.length): void {
  // An ELF object is recognised by its executable segment: data files are not
  // mapped executable. Found by inode first (a number), not by a key string
  // made and hashed for every file region; made when a file region is first
  // met (a range of anonymous regions needs none).
  let elves: Map<number, MemoryRegion[]> | undefined;
  const isElf = (r: MemoryRegion): boolean => {
    elves ??= executableFiles(regions);
    return elves.get(r.inode)?.some((e) => sameFile(e, r)) === true;
  };
  for (let i = from; i < to; i++) {
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
      if (isElf(r)) defineOwn(r, 'object', r.path);
      if (noAccess) r.kind = 'reserved';
      else if (r.executable) r.kind = 'text';
      else if (r.writable && !r.shared) r.kind = 'data';
      else if (Object.hasOwn(r, 'object')) r.kind = 'rodata';
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
      previous?.end === r.start && Object.hasOwn(previous, 'object') && isFile(previous)
    ) {
      r.kind = 'bss';
      defineOwn(r, 'object', previous.object);
    } else r.kind = 'anonymous';
  }
}

/** The executable file mappings of `regions`, by inode. */
function executableFiles(regions: MemoryRegion[]): Map<number, MemoryRegion[]> {
  const elves = new Map<number, MemoryRegion[]>();
  for (const r of regions) {
    if (!executableFile(r)) continue;
    const same = elves.get(r.inode);
    if (same === undefined) elves.set(r.inode, [r]);
    else same.push(r);
  }
  return elves;
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
    if (next === undefined || next.start !== regions[j].end || !reservedTail(next)) return 0;
    j++;
  }
  return regions[j].end === limit ? j - i + 1 : 0;
}

/**
 * Reads each range of the process the map belongs to, all in one call (a
 * read per image cost more than parsing the whole map): the bytes, or
 * undefined where a range cannot be read whole. The bytes may be a view of
 * memory the next call reuses.
 */
export type ReadImages = (ranges: readonly { address: bigint; length: bigint }[]) => (Uint8Array | undefined)[];

/**
 * Where the objects of a process end, by the address of the mapping at their
 * file offset 0 (as `imageSpan` gives them): for this process, the dynamic
 * loader's account of what it loaded, read as the map is.
 */
export type ImageEnds = ReadonlyMap<bigint, bigint>;

/**
 * Unclaims `bss` regions that start at or above the end of their object's
 * memory image (per its PT_LOAD headers): an unrelated mapping that happens
 * to sit right above a library. The end is `known`'s where it has the
 * object, else read from the live ELF header through `read`.
 */
export function checkBss(regions: MemoryRegion[], read: ReadImages, known?: ImageEnds): void {
  // What is unclaimed depends on the lines below each bss alone (offsets and
  // files, never kinds), so a claim is settled as soon as its end is known.
  let unknown: { bss: MemoryRegion; base: bigint; length: bigint }[] | undefined;
  for (let i = 1; i < regions.length; i++) {
    const bss = regions[i];
    if (bss.kind !== 'bss') continue;
    const first = firstMapping(regions, i - 1);
    if (first === undefined) continue;
    const end = known?.get(first.start);
    if (end !== undefined) settle(bss, end);
    else (unknown ??= []).push({ bss, base: first.start, length: BigInt(Math.min(FIRST_PAGE, first.size)) });
  }
  // An image that cannot be read (or was unloaded meanwhile) keeps the guess from the text.
  if (unknown !== undefined) imageEnds(unknown, read).forEach((end, k) => { if (end !== undefined) settle(unknown![k].bss, end); });
}

function settle(bss: MemoryRegion, end: bigint): void {
  if (bss.start < end) return;
  bss.kind = 'anonymous';
  delete bss.object;
}

/**
 * The end of each ELF image whose header is at `base` (the first `length`
 * bytes of its first mapping), read through `read`; undefined for one that
 * cannot be read or holds no image.
 */
export function imageEnds(images: readonly { base: bigint; length: bigint }[], read: ReadImages): (bigint | undefined)[] {
  const ends: (bigint | undefined)[] = images.map(() => undefined);
  // The header and, in every ELF a linker makes, the program headers right
  // after it lie in the mapping's first page (at least that long): one read
  // of all the first pages; a table further on is read in a second call.
  const heads = readAll(read, images.map((c) => ({ address: c.base, length: c.length })));
  const far: { k: number; table: ProgramHeaders }[] = [];
  images.forEach((c, k) => {
    const head = heads[k];
    const table = head === undefined ? undefined : programHeaders(head);
    if (table === undefined) return;
    if (table.at + table.length <= BigInt(head!.length)) ends[k] = imageEnd(c.base, head!.subarray(Number(table.at)), table.count, table.size);
    // A table no linker makes (past 64 KiB, or wrapping past 2^64) is no image end to trust.
    else if (table.length <= MAX_TABLE && c.base + table.at + table.length < 1n << 64n) far.push({ k, table });
  });
  const tables = readAll(read, far.map(({ k, table }) => ({ address: images[k].base + table.at, length: table.length })));
  far.forEach(({ k, table }, j) => {
    const bytes = tables[j];
    if (bytes !== undefined) ends[k] = imageEnd(images[k].base, bytes, table.count, table.size);
  });
  return ends;
}

/** `read` of `ranges`, each undefined where the read as a whole failed (a process gone meanwhile). */
function readAll(read: ReadImages, ranges: { address: bigint; length: bigint }[]): (Uint8Array | undefined)[] {
  if (ranges.length === 0) return [];
  try {
    return read(ranges);
  } catch {
    return ranges.map(() => undefined);
  }
}

export interface ProgramHeaders {
  /** Offset of the table from the image's base, and its length in bytes. */
  at: bigint;
  length: bigint;
  count?: number;
  size?: number;
}

/** The mapping at file offset 0 of the ELF image whose last file mapping is regions[last], if the map shows it. */
function firstMapping(regions: MemoryRegion[], last: number): MemoryRegion | undefined {
  const file = regions[last];
  let first = last;
  while (first > 0 && regions[first].offset !== 0 && sameFile(regions[first - 1], file)) first--;
  return regions[first].offset === 0 ? regions[first] : undefined;
}

/** Where a 64-bit ELF header says its program headers are, or undefined for no such header. */
export function programHeaders(head: Uint8Array): ProgramHeaders | undefined {
  if (head.length < 64) return undefined;
  const elf = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (elf.getUint32(0) !== 0x7f454c46 || head[4] !== 2 /* ELFCLASS64 */) return undefined;
  const size = elf.getUint16(0x36, true);
  const count = elf.getUint16(0x38, true);
  return { at: elf.getBigUint64(0x20, true), length: BigInt(size * count), count, size };
}

/** The page-rounded end of the loaded ELF image at `base`, from its `count` program headers of `size` bytes in `table`. */
function imageEnd(base: bigint, table: Uint8Array, count = 0, size = 0): bigint | undefined {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  let low: bigint | undefined;
  let high = 0n;
  for (let k = 0; k < count; k++) {
    const at = k * size;
    if (at + 4 > table.length) return undefined;
    if (view.getUint32(at, true) !== 1 /* PT_LOAD */) continue;
    if (at + 0x30 > table.length) return undefined;
    const vaddr = view.getBigUint64(at + 0x10, true);
    const memsz = view.getBigUint64(at + 0x28, true);
    low ??= vaddr; // PT_LOAD entries are sorted by address, and the first maps file offset 0 at `base`
    if (vaddr + memsz > high) high = vaddr + memsz;
  }
  return low === undefined ? undefined : imageSpan(base - (low & -pageSize()), low, high).end;
}

/**
 * Where an image loaded with bias `bias` starts (its first PT_LOAD's page,
 * whose p_vaddr is `low`) and ends (the page-rounded highest p_vaddr +
 * p_memsz, `high`).
 */
export function imageSpan(bias: bigint, low: bigint, high: bigint): { base: bigint; end: bigint } {
  const page = pageSize();
  return { base: bias + (low & -page), end: bias + ((high + page - 1n) & -page) };
}

const pageSize = (): bigint => BigInt(binding.pageSize());
