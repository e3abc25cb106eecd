// What each region holds, inferred from the map (the rules: RegionKind in
// region.ts) and, for a bss, checked against the ELF image in memory.
import { binding } from '../binding';
import { lookup } from '../validate';
import { MemoryRegion, RegionKind } from './region';

/**
 * glibc's HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX. A bigint,
 * unlike other sizes, because it is only used in address arithmetic: the
 * alignment of, and the distance from, a region's `start`.
 */
const HEAP_MAX_SIZE = 64n << 20n;
/** What imageEnd reads first: the ELF header and, usually, the program headers. */
const FIRST_PAGE = 4096;

const PSEUDO: Record<string, RegionKind> = {
  '[heap]': 'heap',
  '[stack]': 'stack',
  '[vdso]': 'vdso',
  '[vvar]': 'vvar',
  '[vvar_vclock]': 'vvar',
  '[vsyscall]': 'vsyscall',
};

function isFile(r: MemoryRegion): boolean {
  return r.path !== '' && !r.path.startsWith('[');
}

function isAnonymous(r: MemoryRegion): boolean {
  return r.path === '' || r.name !== undefined;
}

function sameFile(a: MemoryRegion, b: MemoryRegion): boolean {
  return a.inode === b.inode && a.dev === b.dev && a.path === b.path;
}

export function classify(regions: MemoryRegion[]): void {
  // An ELF object is recognised by its executable segment: data files are not
  // mapped executable. Found by inode first (a number), not by a key string
  // made and hashed for every file region.
  const elves = new Map<number, MemoryRegion[]>();
  for (const r of regions) {
    if (!r.executable || !isFile(r)) continue;
    const same = elves.get(r.inode);
    if (same === undefined) elves.set(r.inode, [r]);
    else same.push(r);
  }
  const isElf = (r: MemoryRegion): boolean => elves.get(r.inode)?.some((e) => sameFile(e, r)) === true;
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
      if (isElf(r)) r.object = r.path;
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

/** Reads `length` bytes at `address` of the process the map belongs to; throws where it cannot. */
export type ReadMemory = (address: bigint, length: bigint) => Buffer;

/**
 * Unclaims `bss` regions that start at or above the end of their object's
 * memory image (per its PT_LOAD headers, read from the live ELF header
 * through `read`): an unrelated mapping that happens to sit right above a
 * library.
 */
export function checkBss(regions: MemoryRegion[], read: ReadMemory, known?: ImageEnds): void {
  for (let i = 1; i < regions.length; i++) {
    const r = regions[i];
    if (r.kind !== 'bss') continue;
    const end = imageEnd(regions, i - 1, read, known);
    if (end !== undefined && r.start >= end) {
      r.kind = 'anonymous';
      delete r.object;
    }
  }
}

/**
 * Image ends already read from one process, by the file and the address its
 * first mapping starts at: a library stays mapped where it was loaded, and
 * the headers mapped from its file do not change while it is. Reading them
 * again for every map cost more than parsing the whole map text.
 */
export class ImageEnds {
  private readonly ends = new Map<string, bigint>();

  get(key: string): bigint | undefined {
    return this.ends.get(key);
  }

  set(key: string, end: bigint): void {
    // Bounded: a process that loads and unloads libraries at new addresses forever.
    if (this.ends.size >= 4096) this.ends.clear();
    this.ends.set(key, end);
  }
}

/** The page-rounded end of the loaded ELF image whose last file mapping is regions[last]. */
function imageEnd(regions: MemoryRegion[], last: number, read: ReadMemory, known?: ImageEnds): bigint | undefined {
  const file = regions[last];
  let first = last;
  while (first > 0 && regions[first].offset !== 0 && sameFile(regions[first - 1], file)) first--;
  if (regions[first].offset !== 0) return undefined;
  const base = regions[first].start;
  const image = `${file.dev} ${file.inode} ${file.path} ${base}`;
  const end = known?.get(image);
  if (end !== undefined) return end;
  const found = readImageEnd(base, regions[first].size, read);
  if (found !== undefined) known?.set(image, found);
  return found;
}

function readImageEnd(base: bigint, size: number, read: ReadMemory): bigint | undefined {
  try {
    // The header and, in every ELF a linker makes, the program headers right
    // after it lie in the mapping's first page (at least that long): one read.
    const elf = read(base, BigInt(Math.min(FIRST_PAGE, size)));
    if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 /* ELFCLASS64 */) return undefined;
    const phoff = elf.readBigUInt64LE(0x20);
    const phentsize = elf.readUInt16LE(0x36);
    const phnum = elf.readUInt16LE(0x38);
    const tableEnd = phoff + BigInt(phentsize * phnum);
    const table = tableEnd <= BigInt(elf.length) ? elf.subarray(Number(phoff)) : read(base + phoff, BigInt(phentsize * phnum));
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
