// Following one bin's list through copied memory. Nothing read is trusted:
// each chunk is checked before its links are followed, a list is never
// followed further than the arena's memory could hold, and the first
// inconsistency ends the list with a reason, keeping the chunks before it.
import { binRange, MINSIZE } from '../size-classes';
import { hex } from '../format';
import { Arena } from './arenas';
import { AllocatorImage } from './image';
import { bigintOf } from '../exact';
import { holds, MemorySource, NumberedCopies, rangeHolding, readWord, wordIn } from './memory-source';
import { revealNumber, revealPointer } from './safe-linking';
import { defineOwn, own } from '../validate';
import { Bin, BinChunk, binOf, ListedChunks } from './bin-chunks';

const SIZE_BITS = 7n;
const PREV_INUSE = 1n;
const NON_MAIN_ARENA = 4n;

export type { Bin, BinChunk } from './bin-chunks';

/** The sizes a list may hold: one size (fastbins, small bins), a range, or any chunk size (unsorted). */
export interface SizeRule {
  min: number;
  max: number | undefined;
  what: string;
}

export function sizeRule(kind: 'fastbin' | 'regular', index: number): SizeRule {
  if (kind === 'fastbin') {
    const size = (index + 2) * 16;
    return { min: size, max: size, what: `fastbin ${index} (${hex(size)})` };
  }
  if (index === 1) return { min: MINSIZE, max: undefined, what: 'the unsorted bin (any size)' };
  const { min, max } = binRange(index);
  return { min, max, what: `bin ${index} (${max === min ? hex(min) : `${hex(min)}–${max === undefined ? '' : hex(max)}`})` };
}

interface Walk {
  image: AllocatorImage;
  arena: Arena;
  /** The most chunks of the smallest size the list holds that the arena's memory has room for. */
  cap: number;
}

function walkFor(image: AllocatorImage, arena: Arena, rule: SizeRule): Walk {
  const room = arena.systemMem > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(arena.systemMem);
  return { image, arena, cap: Math.floor(room / rule.min) };
}

/**
 * The checks of placeProblem, the cap and sizeOf made by number, for a
 * source that reads words so: a list of a million chunks checked by bigint
 * cost ~1.5 us a chunk. A chunk that fails any of them, or holds a word of
 * 2^53 or more, is checked again by the bigint path, which says why.
 */
interface FastWalk {
  source: NumberedCopies;
  /** The arena's memory, start and end in turn. */
  memory: number[];
  min: number;
  max: number;
  systemMem: number;
  main: boolean;
  cap: number;
  /** What the last chunk that passed holds: its size, the copied range it lies in. */
  size: number;
  range: number;
}

const EXACT_LIMIT = 1n << 53n;

function fastFor(w: Walk, rule: SizeRule): FastWalk | undefined {
  const { numbered } = w.image.memory;
  if (numbered === undefined) return undefined;
  // A loop, not a callback: this runs for every bin, and a closure made per call is compiled again for each walk.
  const bounds: number[] = [];
  for (const r of w.arena.memory) {
    if (r.end > EXACT_LIMIT) return undefined;
    bounds.push(Number(r.start), Number(r.end));
  }
  return {
    source: numbered,
    memory: bounds,
    min: rule.min,
    max: rule.max ?? Infinity,
    systemMem: w.arena.systemMem >= EXACT_LIMIT ? Infinity : Number(w.arena.systemMem),
    main: w.arena.kind === 'main',
    cap: w.cap,
    size: 0,
    range: -1,
  };
}

/**
 * Whether chunk `p`, the list's `listed`-th, passes placeProblem, the cap and
 * sizeOf (its size is then in f.size). Low bits are tested with `&`, exact
 * for a whole number below 2^53: `%` of a double past 2^31 is a call, ~7 ns
 * (a list of 62,490 chunks walked in 4.4–6.6 ms so, 5.7–7.9 with `%`).
 */
function fastChunk(f: FastWalk, p: number, listed: number): boolean {
  if ((p & 15) !== 0 || listed >= f.cap) return false;
  const m = f.memory;
  if (m.length > 0) {
    let inside = false;
    for (let k = 0; k < m.length && !inside; k += 2) inside = p >= m[k] && p + 32 <= m[k + 1];
    if (!inside) return false;
  }
  const range = rangeHolding(f.source, p, 32);
  if (range < 0) return false;
  const word = wordIn(f.source, range, p + 8);
  if (word < 0) return false;
  const low = word & 7;
  if (f.main && (low & 4) !== 0) return false;
  const size = word - low;
  if (size < f.min || size > f.max || (size & 15) !== 0 || size > f.systemMem) return false;
  f.size = size;
  f.range = range;
  return true;
}

/** A binned chunk's fd when it passes every check walkRegularBin makes of a chunk whose list came from `prev` (never a large bin's first of a size); -1 otherwise. */
function fastRegular(f: FastWalk, p: number, prev: number, listed: number): number {
  if (!fastChunk(f, p, listed)) return -1;
  const { source, size, range } = f;
  const next = wordIn(source, range, p + 16);
  if (next < 0 || wordIn(source, range, p + 24) !== prev) return -1;
  // freeProblem: the next chunk has P clear and prev_size equal to the size.
  const after = rangeHolding(source, p + size, 16);
  if (after < 0) return -1;
  const word = wordIn(source, after, p + size + 8);
  return word < 0 || (word & 1) !== 0 || wordIn(source, after, p + size) !== size ? -1 : next;
}

/** Lists a fastbin's chunks from `n` while they pass fastChunk (see regularRun); returns where it stopped. */
function fastbinRun(fast: FastWalk, chunks: ListedChunks, watch: CycleWatch, n: number, safeLinking: boolean): number {
  while (n !== 0 && !watch.meets(n) && fastChunk(fast, n, chunks.length)) {
    const stored = wordIn(fast.source, fast.range, n + 16);
    if (stored < 0) break;
    watch.listed(n, chunks.length);
    chunks.push(n, fast.size);
    n = safeLinking ? revealNumber(stored, n + 16) : stored;
  }
  return n;
}

/**
 * Lists the chunks of a regular bin from `n` (reached from `before`) while
 * they pass fastRegular, up to the header at `end`; returns where it
 * stopped. A function of its own, small: inside walkRegularBin, whose
 * bigint path made it ~100 ms of compiling a time, the loop was compiled
 * again at each of the first walks.
 */
function regularRun(fast: FastWalk, chunks: ListedChunks, n: number, before: number, end: number, large: boolean): number {
  while (n !== end) {
    const next = fastRegular(fast, n, before, chunks.length);
    // A large bin's first chunk of a size, which links the sizes, takes the bigint path.
    if (next < 0 || (large && (chunks.length === 0 || fast.size !== chunks.size(chunks.length - 1)))) break;
    chunks.push(n, fast.size);
    before = n;
    n = next;
  }
  return n;
}

/** Why `p` cannot be a chunk of the arena, or undefined; `uncopied` when it could be one, but the copy does not hold it. */
function placeProblem(w: Walk, p: bigint): { reason: string; uncopied?: bigint } | undefined {
  if (p % 16n !== 0n) return { reason: `${hex(p)} is not 16-byte aligned` };
  const { memory } = w.arena;
  if (memory.length > 0 && !memory.some((r) => p >= r.start && p + 32n <= r.end)) {
    return { reason: `${hex(p)} is outside the arena's memory (${memory.map((r) => `${hex(r.start)}–${hex(r.end)}`).join(', ')})` };
  }
  if (!holds(w.image.memory, p, 32)) return { reason: `${hex(p)} is outside the copied memory`, uncopied: p };
  return undefined;
}

/** The chunk's size word checked against the rule and the arena; a number, or why not. */
function sizeOf(w: Walk, p: bigint, rule: SizeRule): number | string {
  const word = readWord(w.image.memory, p + 8n);
  if (typeof word === 'string') return word;
  if (w.arena.kind === 'main' && (word & NON_MAIN_ARENA) !== 0n) return `the chunk at ${hex(p)} has the NON_MAIN_ARENA bit in main_arena`;
  const size = word & ~SIZE_BITS;
  if (size < BigInt(rule.min) || (rule.max !== undefined && size > BigInt(rule.max)) || size % 16n !== 0n || size > w.arena.systemMem) {
    return `the chunk at ${hex(p)} has size ${hex(size)}, outside ${rule.what}`;
  }
  return Number(size);
}

/**
 * Brent's cycle finding, for a singly linked list read chunk by chunk: one
 * chunk is marked, and the mark moves on at 1, 3, 7, 15... chunks, so a
 * list that comes round is met at its mark again within a few times its
 * length, with no set of the chunks met (a Set of 50,000 addresses above
 * 2^31, each a heap number to hash and keep, cost ~600 ns a chunk).
 */
class CycleWatch {
  private mark = NaN;
  private at = 0;
  private power = 0;

  /** Whether the chunk at `n` (a number, NaN when not exact) is the marked one, met again. */
  meets(n: number): boolean {
    return n === this.mark;
  }

  /** The chunk at `n` was listed, at `index`. */
  listed(n: number, index: number): void {
    if (index - this.at < this.power) return;
    this.mark = n;
    this.at = index;
    this.power = this.power * 2 || 1;
  }
}

/**
 * The index of the first of `chunks`, then `next`, that repeats one before
 * it, or -1: where a set of the chunks met would have stopped the list. Made
 * once, for a list that stops there anyway.
 */
function firstRepeat(chunks: ListedChunks, next: bigint): number {
  const met = new Set<bigint>();
  for (let i = 0; i < chunks.length; i++) {
    if (met.has(chunks.address(i))) return i;
    met.add(chunks.address(i));
  }
  return met.has(next) ? chunks.length : -1;
}

/** A fastbin: singly linked from `head`, links safe-linked where the layout says so. */
export function walkFastbin(image: AllocatorImage, arena: Arena, index: number, head: bigint): Bin {
  const rule = sizeRule('fastbin', index);
  const w = walkFor(image, arena, rule);
  const chunks = new ListedChunks();
  const watch = new CycleWatch();
  const fast = fastFor(w, rule);
  for (let p = head; p !== 0n;) {
    if (fast !== undefined && p < EXACT_LIMIT) {
      // By number while the chunks pass: a bigint compared or converted is a call into the runtime.
      const n = fastbinRun(fast, chunks, watch, Number(p), image.layout.safeLinking);
      p = bigintOf(n);
      if (n === 0) break;
    }
    const stop = (reason: string, uncopied?: bigint): Bin => binOf(index, chunks, reason, uncopied);
    const cycle = (at: number): Bin => {
      // The chunks listed after the first that came back are dropped: they are that chunk's successors again.
      const to = at < chunks.length ? chunks.address(at) : p;
      chunks.truncate(at);
      return stop(`the list comes back to ${hex(to)}: a cycle`);
    };
    const where = placeProblem(w, p);
    if (where !== undefined) {
      const at = chunks.length === 0 ? 'the head' : `the link after ${hex(chunks.address(chunks.length - 1))}`;
      return stop(`${at}: ${where.reason}`, own(where, 'uncopied'));
    }
    const key = p < EXACT_LIMIT ? Number(p) : NaN;
    if (watch.meets(key)) return cycle(firstRepeat(chunks, p));
    if (chunks.length >= w.cap) {
      // The watch may not have met a cycle that came round before the cap yet.
      const repeat = firstRepeat(chunks, p);
      if (repeat >= 0) return cycle(repeat);
      return stop(`the list goes on past ${w.cap} chunks, all the arena's system_mem (${arena.systemMem} bytes) can hold`);
    }
    const size = sizeOf(w, p, rule);
    if (typeof size === 'string') return stop(size);
    const stored = readWord(image.memory, p + 16n);
    if (typeof stored === 'string') return stop(stored);
    watch.listed(key, chunks.length);
    chunks.pushChunk({ address: p, size });
    p = image.layout.safeLinking ? revealPointer(stored, p + 16n) : stored;
  }
  return binOf(index, chunks);
}

/**
 * The unsorted, a small or a large bin: doubly linked around its header at
 * `header` (bin_at), whose fd and bk are `fd` and `bk`. Each chunk's bk must
 * be the one before it, its next chunk must say it is free (P clear,
 * prev_size its size), and large bins run from the largest size down.
 */
export function walkRegularBin(image: AllocatorImage, arena: Arena, index: number, header: bigint, fd: bigint, bk: bigint): Bin {
  const rule = sizeRule('regular', index);
  const w = walkFor(image, arena, rule);
  const chunks = new ListedChunks();
  // No set of the chunks met: the first chunk met again has a bk that is not
  // the chunk before it (it was checked to be another when the chunk was
  // first met), so a cycle ends the list at the bk check, or at the cap, and
  // only there is the list searched for the chunk, to say which it is.
  const large = index >= 64;
  const fast = fastFor(w, rule);
  let prev = header;
  for (let p = fd; p !== header;) {
    if (fast !== undefined && p < EXACT_LIMIT && prev < EXACT_LIMIT && header < EXACT_LIMIT) {
      // By number while the chunks pass: a bigint compared or converted is a call into the runtime.
      const end = Number(header);
      const start = chunks.length;
      const n = regularRun(fast, chunks, Number(p), Number(prev), end, large);
      if (chunks.length > start) prev = chunks.address(chunks.length - 1);
      if (n === end) break;
      p = bigintOf(n);
    }
    const last = chunks.length === 0 ? undefined : chunks.size(chunks.length - 1);
    const stop = (reason: string, uncopied?: bigint): Bin => binOf(index, chunks, reason, uncopied);
    const where = placeProblem(w, p);
    if (where !== undefined) {
      const at = prev === header ? "the header's fd" : `fd of ${hex(prev)}`;
      return stop(`${at}: ${where.reason}`, own(where, 'uncopied'));
    }
    const cycle = (): string | undefined => {
      for (let i = 0; i < chunks.length; i++) if (chunks.address(i) === p) return `the list comes back to ${hex(p)} without returning to the bin's header: a cycle`;
      return undefined;
    };
    if (chunks.length >= w.cap) return stop(cycle() ?? `the list goes on past ${w.cap} chunks, all the arena's system_mem (${arena.systemMem} bytes) can hold`);
    const size = sizeOf(w, p, rule);
    if (typeof size === 'string') return stop(size);
    const [next, back] = [readWord(image.memory, p + 16n), readWord(image.memory, p + 24n)];
    if (typeof next === 'string') return stop(next);
    if (typeof back === 'string') return stop(back);
    if (back !== prev) return stop(cycle() ?? `the chunk at ${hex(p)} has bk ${hex(back)}, but the list reached it from ${hex(prev)}`);
    const free = freeProblem(w, p, size);
    if (free !== undefined) return stop(free);
    if (large && last !== undefined && size > last) return stop(`the chunk at ${hex(p)} (${hex(size)}) is larger than the one before it (${hex(last)}): a large bin runs from large to small`);
    const chunk: BinChunk = { address: p, size };
    if (large && last !== size) {
      const [fdn, bkn] = [readWord(image.memory, p + 32n), readWord(image.memory, p + 40n)];
      if (typeof fdn === 'string') return stop(fdn);
      if (typeof bkn === 'string') return stop(bkn);
      defineOwn(chunk, 'fdNextsize', fdn);
      defineOwn(chunk, 'bkNextsize', bkn);
    }
    chunks.pushChunk(chunk);
    prev = p;
    p = next;
  }
  if (bk !== prev) return binOf(index, chunks, `the bin's bk is ${hex(bk)}, but its list ends at ${hex(prev)}`);
  if (large) {
    const reason = nextsizeProblem([...chunks.objects.values()]);
    if (reason !== undefined) return binOf(index, chunks, reason);
  }
  return binOf(index, chunks);
}

/** A binned chunk is free: the chunk after it has P clear and prev_size equal to its size. */
function freeProblem(w: Walk, p: bigint, size: number): string | undefined {
  const after = p + BigInt(size);
  const [prevSize, word] = [readWord(w.image.memory, after), readWord(w.image.memory, after + 8n)];
  if (typeof prevSize === 'string') return `the chunk after ${hex(p)}: ${prevSize}`;
  if (typeof word === 'string') return `the chunk after ${hex(p)}: ${word}`;
  if ((word & PREV_INUSE) !== 0n) return `the chunk after ${hex(p)} (at ${hex(after)}) says ${hex(p)} is in use (its P bit is set)`;
  if (prevSize !== BigInt(size)) return `the chunk after ${hex(p)} has prev_size ${hex(prevSize)}, not its size ${hex(size)}`;
  return undefined;
}

/** The first chunk of each size links to the next smaller size's first (fd_nextsize) and back, around. */
function nextsizeProblem(chunks: readonly BinChunk[]): string | undefined {
  const leaders = chunks.filter((c) => own(c, 'fdNextsize') !== undefined);
  for (let k = 0; k < leaders.length; k++) {
    const fd = leaders[(k + 1) % leaders.length].address;
    const bk = leaders[(k - 1 + leaders.length) % leaders.length].address;
    const c = leaders[k];
    if (c.fdNextsize !== fd) return `the chunk at ${hex(c.address)} has fd_nextsize ${hex(c.fdNextsize!)}, but the next size down starts at ${hex(fd)}`;
    if (c.bkNextsize !== bk) return `the chunk at ${hex(c.address)} has bk_nextsize ${hex(c.bkNextsize!)}, but the next size up starts at ${hex(bk)}`;
  }
  return undefined;
}
