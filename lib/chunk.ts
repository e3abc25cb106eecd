// What the two header words in front of a user pointer say about its chunk.
import { inspect } from 'node:util';
import { native } from './errors';
import { binding } from './binding';
import { InspectContext, presenter } from './presenters';

/** Size-field flag bits (malloc.c: PREV_INUSE, IS_MMAPPED, NON_MAIN_ARENA). */
export const PREV_INUSE = 0x1n;
export const IS_MMAPPED = 0x2n;
export const NON_MAIN_ARENA = 0x4n;
const SIZE_BITS = PREV_INUSE | IS_MMAPPED | NON_MAIN_ARENA;

/** On x86_64 the header is prev_size then size: 2 × 8 bytes before the user pointer. */
export const CHUNK_HEADER_SIZE = 16n;

export interface ChunkHeader {
  /** Start of the chunk: 16 bytes before the user pointer. */
  address: bigint;
  /** Chunk size in bytes, flags masked off. */
  size: number;
  /** The size word as stored, with flags. */
  rawSize: bigint;
  /**
   * The prev_size word as stored. It is a size only when the previous chunk
   * is free (or, for an mmapped chunk, the slack in front of it); otherwise
   * it is the previous chunk's user data, so it stays a raw 64-bit bigint.
   */
  prevSize: bigint;
  /** P: the previous chunk is in use (or in tcache/fastbin, which look in use). */
  prevInUse: boolean;
  /** M: the chunk was mmapped on its own. */
  isMmapped: boolean;
  /** A: the chunk belongs to a thread arena, not main_arena. */
  nonMainArena: boolean;
}

export function decodeHeader(userAddress: bigint, prevSize: bigint, rawSize: bigint): ChunkHeader {
  return headerOf(userAddress - CHUNK_HEADER_SIZE, prevSize, rawSize, Number(rawSize & ~SIZE_BITS), Number(rawSize & SIZE_BITS));
}

/** A header whose size word is already split into its size (below 2^53) and flag bits: no BigInt arithmetic. */
export function headerOf(address: bigint, prevSize: bigint, rawSize: bigint, size: number, flags: number): ChunkHeader {
  return new Header(address, prevSize, rawSize, size, flags) as unknown as ChunkHeader;
}

/** How a chunk header shows itself; installed by the view layer. */
export const chunkHeaderViews = presenter<{ inspect(header: ChunkHeader, depth: number, options?: InspectContext): string }>('ChunkHeader');

/**
 * A decoded header: own data fields, as a literal's; the inspect hook is on
 * the prototype, so the header stays plain data to JSON, spreads and
 * equality checks without an Object.defineProperty per header.
 */
class Header {
  constructor(address: bigint, prevSize: bigint, rawSize: bigint, size: number, flags: number) {
    const h = this as unknown as ChunkHeader;
    h.address = address;
    h.size = size;
    h.rawSize = rawSize;
    h.prevSize = prevSize;
    h.prevInUse = (flags & 1) !== 0;
    h.isMmapped = (flags & 2) !== 0;
    h.nonMainArena = (flags & 4) !== 0;
  }

  [inspect.custom](this: ChunkHeader, depth: number, options: InspectContext): string {
    return chunkHeaderViews.views.inspect(this, depth, options);
  }
}

/** Reads the header in front of `userAddress` through the safe path (EFAULT, never SIGSEGV). */
export function readChunkHeader(userAddress: bigint): ChunkHeader {
  const [prevSize, rawSize] = native(() => binding.chunkHeader(userAddress));
  return decodeHeader(userAddress, prevSize, rawSize);
}

export type ChunkFlags = Pick<ChunkHeader, 'prevInUse' | 'isMmapped' | 'nonMainArena'>;

/** The size-field flags that are set, by their malloc.c letters, in bit order: P, M, A. */
export function flagLetters(header: ChunkFlags): string[] {
  return [header.prevInUse && 'P', header.isMmapped && 'M', header.nonMainArena && 'A'].filter((f): f is string => typeof f === 'string');
}

/** The size-field flags: `[P]`, `[P M]`, `[M]`, `[P A]`; `[]` when none is set. */
export function chunkFlags(header: ChunkFlags): string {
  return `[${flagLetters(header).join(' ')}]`;
}
