// A bin's chunks as the list walks read them: two columns of numbers, the
// addresses and the sizes, made into one BinChunk object each only when a
// caller reads `chunks`. A list of 50,000 chunks read into objects (each
// with a bigint) spent ~300 ns a chunk in V8's young-generation collections
// alone, copying what stayed alive: the decoders that only count, sum or
// place a bin's chunks read the columns instead (binColumns).
import { bigintOf, EXACT_LIMIT } from '../exact';
import { lazyFields, own } from '../validate';

export interface BinChunk {
  /** The chunk (its prev_size word), not the user pointer. */
  address: bigint;
  size: number;
  /** Large bins: the first chunk of each size's run links the runs (the others' nextsize words are stale). */
  fdNextsize?: bigint;
  bkNextsize?: bigint;
}

export interface Bin {
  /** Fastbins 0–9; the unsorted bin 1, small bins 2–63, large bins 64–126 (127 is never used). */
  index: number;
  /** The chunks read: all of them unless `reason` says why the list stopped. */
  count: number;
  /** In list order: from the head (fastbins, fd of the bin header) on. */
  chunks: BinChunk[];
  reason?: string;
  /** Where the list left the copied memory, when that stopped it: a copy that holds it can follow it further. */
  uncopied?: bigint;
}

/**
 * Numbers in blocks of BLOCK, each a plain array of doubles (16 KiB, made
 * in V8's young generation, never by malloc). One array grown by push was
 * fresh memory at every growth, faulted in and copied: ~140 ns a chunk for
 * two columns here, against ~11 in blocks.
 */
const BLOCK = 2048;

class Column {
  private readonly blocks: number[][] = [];
  private last: number[] = [];
  length = 0;

  push(value: number): void {
    const at = this.length % BLOCK;
    if (at === 0) {
      // Filled with a double: the block is an array of doubles from the start, never converted.
      this.last = new Array<number>(BLOCK).fill(NaN);
      this.blocks.push(this.last);
    }
    this.last[at] = value;
    this.length++;
  }

  at(i: number): number {
    return this.blocks[Math.floor(i / BLOCK)][i % BLOCK];
  }

  truncate(length: number): void {
    this.length = length;
    this.blocks.length = Math.ceil(length / BLOCK);
    this.last = this.blocks[this.blocks.length - 1] ?? [];
  }
}

/** The chunks a list walk has read so far. */
export class ListedChunks {
  /** Exact below 2^53; NaN for a chunk above, kept in `objects`. */
  private readonly addresses = new Column();
  private readonly sizes = new Column();
  /** The chunks that carry more than an exact address and a size (a large bin's first of a size; one at 2^53 or above), by index. */
  readonly objects = new Map<number, BinChunk>();

  get length(): number {
    return this.sizes.length;
  }

  push(address: number, size: number): void {
    this.addresses.push(address);
    this.sizes.push(size);
  }

  /** Chunk i's address as a number: exact, or NaN for one at 2^53 or above (see `address`). */
  addressNumber(i: number): number {
    return this.addresses.at(i);
  }

  size(i: number): number {
    return this.sizes.at(i);
  }

  pushChunk(chunk: BinChunk): void {
    const exact = Number(chunk.address) < EXACT_LIMIT;
    if (!exact || own(chunk, 'fdNextsize') !== undefined) this.objects.set(this.length, chunk);
    this.push(exact ? Number(chunk.address) : NaN, chunk.size);
  }

  address(i: number): bigint {
    const made = this.objects.get(i);
    return made === undefined ? bigintOf(this.addresses.at(i)) : made.address;
  }

  chunk(i: number): BinChunk {
    return this.objects.get(i) ?? { address: bigintOf(this.addresses.at(i)), size: this.sizes.at(i) };
  }

  /** Keeps the first `count` chunks. */
  truncate(count: number): void {
    this.addresses.truncate(count);
    this.sizes.truncate(count);
    for (const i of [...this.objects.keys()]) if (i >= count) this.objects.delete(i);
  }
}

const listsOf = new WeakMap<Bin, ListedChunks>();

/** The Bin of a walk's list, its `chunks` made when first read; `reason` and `uncopied` when the list stopped. */
export function binOf(index: number, list: ListedChunks, reason?: string, uncopied?: bigint): Bin {
  const bin = { index, count: list.length } as Bin;
  lazyFields(bin, ['chunks'], () => ({ chunks: Array.from({ length: list.length }, (_, i) => list.chunk(i)) }));
  if (reason !== undefined) bin.reason = reason;
  if (uncopied !== undefined) bin.uncopied = uncopied;
  listsOf.set(bin, list);
  return bin;
}

/** A bin's chunks as columns (see ListedChunks), read without an object each; from its `chunks` for a bin no walk made. */
export function binColumns(bin: Bin): ListedChunks {
  const list = listsOf.get(bin);
  if (list !== undefined && list.length === bin.count) return list;
  const made = new ListedChunks();
  for (const chunk of bin.chunks) made.pushChunk(chunk);
  return made;
}

/** The bytes of a bin's chunks. */
export function binBytes(bin: Bin): number {
  const list = binColumns(bin);
  let bytes = 0;
  for (let i = 0; i < list.length; i++) bytes += list.size(i);
  return bytes;
}
