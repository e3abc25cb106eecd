// A stretch of one arena's memory, chunk by chunk, as its raw 16-byte
// lines with each chunk's header, links and place (pwndbg's
// vis_heap_chunks). A pure function of one decoded snapshot: the chunks are
// the walk's, the places placeChunks' and the bytes the copy's.
import { IS_MMAPPED, NON_MAIN_ARENA, PREV_INUSE } from '../chunk';
import { HeapscopeError, rangeError } from '../errors';
import { hex } from '../format';
import { own, readOptions, toAddress, toIndex } from '../validate';
import { AllocatorImage } from './image';
import { readBytes } from './memory-source';
import { PlacedChunk, Placement, RegionPlaces } from './places';
import { revealPointer } from './safe-linking';

export interface VisOptions {
  /** A chunk's address, or any address inside it (a user pointer too). Default: the first chunk of main_arena's [heap]. */
  address?: bigint;
  /** Chunks to show from there on, within its heap (default VIS_COUNT, at most MAX_VIS_COUNT). */
  count?: number;
}

export const VIS_COUNT = 10;
export const MAX_VIS_COUNT = 1000;
/**
 * A chunk of up to WHOLE_LINES 16-byte lines is shown whole; a longer one
 * shows its first HEAD_LINES (the header, the links and the nextsize words
 * of a large chunk) and its last TAIL_LINES (where an overflow into the
 * next chunk starts). A 128 KiB top chunk would otherwise be 8192 lines.
 */
export const WHOLE_LINES = 8;
export const HEAD_LINES = 4;
export const TAIL_LINES = 2;

export interface VisLine {
  address: bigint;
  /** The two little-endian 64-bit words. */
  words: [bigint, bigint];
  /** The 16 bytes, printable ASCII as itself and every other byte as `.`. */
  ascii: string;
}

export interface VisChunk extends PlacedChunk {
  /** The size word as stored, flags included. */
  rawSize: bigint;
  prevInUse: boolean;
  isMmapped: boolean;
  nonMainArena: boolean;
  /**
   * A free chunk's forward link as glibc follows it: revealed through
   * safe-linking for tcache and fastbin chunks from glibc 2.32 on. A tcache
   * link points at the next entry's user memory (16 bytes into its chunk),
   * the others at a chunk.
   */
  fd?: bigint;
  /** The word stored, when safe-linking changed it. */
  fdStored?: bigint;
  /** The back link of a chunk in the unsorted, a small or a large bin (or free in none). */
  bk?: bigint;
  /** The lines shown, in address order. */
  lines: VisLine[];
  /** Lines left out between the first HEAD_LINES and the last TAIL_LINES (0: every line is shown). */
  omitted: number;
}

export interface VisData {
  /** The arena whose memory this is. */
  arena: bigint;
  region: { kind: RegionPlaces['kind']; start: bigint; end: bigint };
  /** The address asked for, when one was. */
  address?: bigint;
  /** The first chunk shown is chunk `first` of the region's walk (0-based), of `total`. */
  first: number;
  total: number;
  chunks: VisChunk[];
  /** Why the region's walk stopped before its end, when it did: the chunks after that point are unknown. */
  reason?: string;
  /** Whether this glibc stores tcache and fastbin links safe-linked. */
  safeLinking: boolean;
}

/** Options read once, own properties only. */
export function readVisOptions(options: unknown): { address?: bigint; count: number } {
  const o = readOptions(options, 'options', ['address', 'count']);
  const count = o.count === undefined ? VIS_COUNT : toIndex(o.count, 'options.count', MAX_VIS_COUNT);
  if (count < 1) throw rangeError('options.count must be at least 1');
  return { ...(o.address === undefined ? {} : { address: toAddress(o.address, 'options.address') }), count };
}

function regionName(r: RegionPlaces): string {
  return `${r.kind === 'heap' ? "main_arena's [heap]" : `the heap of arena ${hex(r.arena)}`} ${hex(r.start)}–${hex(r.end)}`;
}

/** The region and the index of the chunk holding `address`; ERR_NOT_IN_HEAP, saying why, when none does. */
function locate(placement: Placement, address: bigint | undefined): { region: RegionPlaces; index: number } {
  const { regions } = placement;
  if (address === undefined) {
    const region = regions.find((r) => r.kind === 'heap' && r.chunks.length > 0) ?? regions.find((r) => r.chunks.length > 0);
    if (region === undefined) throw new HeapscopeError('ERR_NOT_IN_HEAP', 'the snapshot holds no chunk of any arena (no [heap], no thread-arena heap)');
    return { region, index: 0 };
  }
  const region = regions.find((r) => r.start <= address && address < r.end);
  if (region === undefined) {
    const heaps = regions.length === 0 ? 'none was copied' : `the heaps are ${regions.map(regionName).join(', ')}`;
    throw new HeapscopeError('ERR_NOT_IN_HEAP', `${hex(address)} is in no arena's heap (${heaps}); an mmapped chunk lies outside them all`);
  }
  const { chunks } = region;
  if (chunks.length === 0 || address < chunks[0].address) {
    const first = chunks.length === 0 ? `it has no chunk${own(region, 'reason') === undefined ? '' : `: ${region.reason}`}` : `its first chunk is at ${hex(chunks[0].address)}`;
    throw new HeapscopeError('ERR_NOT_IN_HEAP', `${hex(address)} lies in ${regionName(region)} before any chunk (${region.kind === 'heap' ? 'alignment' : 'heap_info and malloc_state'}): ${first}`);
  }
  // Chunks are in address order and tile the region up to where the walk stopped.
  let lo = 0;
  let hi = chunks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (chunks[mid].address <= address) lo = mid;
    else hi = mid - 1;
  }
  const c = chunks[lo];
  if (address >= c.address + BigInt(c.size)) {
    throw new HeapscopeError('ERR_NOT_IN_HEAP', `${hex(address)} lies in ${regionName(region)} past the last chunk its walk read (${hex(c.address)}, ${hex(c.size)} bytes)` +
      (own(region, 'reason') === undefined ? '' : `: ${region.reason}`));
  }
  return { region, index: lo };
}

function word(bytes: Uint8Array, offset: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 8).getBigUint64(0, true);
}

function line(bytes: Uint8Array, base: bigint, offset: number): VisLine {
  let ascii = '';
  for (let i = offset; i < offset + 16; i++) ascii += bytes[i] >= 0x20 && bytes[i] < 0x7f ? String.fromCharCode(bytes[i]) : '.';
  return { address: base + BigInt(offset), words: [word(bytes, offset), word(bytes, offset + 8)], ascii };
}

/** Places whose chunks hold glibc's links in their first user words. */
const SINGLY_LINKED = new Set(['tcache', 'fastbin']);
const DOUBLY_LINKED = new Set(['unsorted', 'smallbin', 'largebin', 'unlisted']);

function visChunk(image: AllocatorImage, placed: PlacedChunk): VisChunk {
  const bytes = readBytes(image.memory, placed.address, placed.size);
  // The walk read every chunk from the copy: it is there.
  if (typeof bytes === 'string') throw new HeapscopeError('ERR_INTERNAL', `the chunk at ${hex(placed.address)} the walk read is not in the copy: ${bytes}`);
  const rawSize = word(bytes, 8);
  const chunk: VisChunk = {
    ...placed, rawSize, prevInUse: (rawSize & PREV_INUSE) !== 0n, isMmapped: (rawSize & IS_MMAPPED) !== 0n, nonMainArena: (rawSize & NON_MAIN_ARENA) !== 0n, lines: [], omitted: 0,
  };
  if (placed.size >= 32 && SINGLY_LINKED.has(placed.place)) {
    const stored = word(bytes, 16);
    if (image.layout.safeLinking) {
      chunk.fd = revealPointer(stored, placed.address + 16n);
      chunk.fdStored = stored;
    } else chunk.fd = stored;
  } else if (placed.size >= 32 && DOUBLY_LINKED.has(placed.place)) {
    chunk.fd = word(bytes, 16);
    chunk.bk = word(bytes, 24);
  }
  const count = placed.size / 16;
  const shown = count <= WHOLE_LINES
    ? Array.from({ length: count }, (_, i) => i)
    : [...Array.from({ length: HEAD_LINES }, (_, i) => i), ...Array.from({ length: TAIL_LINES }, (_, i) => count - TAIL_LINES + i)];
  chunk.lines = shown.map((i) => line(bytes, placed.address, i * 16));
  chunk.omitted = count - shown.length;
  return chunk;
}

/**
 * `options.count` chunks from the one holding `options.address` (default:
 * the first of main_arena's [heap]), never past the end of its heap.
 * Throws ERR_NOT_IN_HEAP when no walked chunk holds the address.
 */
export function visChunks(image: AllocatorImage, placement: Placement, options: { address?: bigint; count: number }): VisData {
  const { region, index } = locate(placement, options.address);
  const chunks = region.chunks.slice(index, index + options.count).map((c) => visChunk(image, c));
  return {
    arena: region.arena,
    region: { kind: region.kind, start: region.start, end: region.end },
    ...(options.address === undefined ? {} : { address: options.address }),
    first: index,
    total: region.chunks.length,
    chunks,
    ...(own(region, 'reason') === undefined ? {} : { reason: region.reason }),
    safeLinking: image.layout.safeLinking,
  };
}
