// The process map, from /proc/self/maps (or /proc/self/smaps for resident
// sizes), with each region classified by what it holds; and the region
// holding an address. The parts: region.ts (the record and its kinds),
// parse.ts (the text), kept.ts (what a parse keeps for the next text),
// classify.ts (the kinds).
import { HeapscopeError, native, typeError } from '../errors';
import { binding, RANGES_PER_READ } from '../binding';
import { keptBytes, rangeScratch } from '../fresh-memory';
import { withFileBytes } from '../file-bytes';
import { readPacked } from '../remote/read-ranges';
import { IN_WORDS, OP_CODES, RECORD_WORDS, STATUS } from '../plan-codes';
import { describe, descriptor, ownProperty, readArray, readOptions, toAddress } from '../validate';
import { checkBss, ImageEnds, imageSpan, ReadImages } from './classify';
import { parseMaps, parseSmaps } from './parse';
import { MemoryRegion, regionViews } from './region';

export { parseMaps, parseSmaps } from './parse';
export { HUGE_PAGES_PATH, regionViews, untouchedReadsZero } from './region';
export type { MemoryRegion, RegionKind } from './region';

export interface MapsOptions {
  /** Read /proc/self/smaps instead, to fill `rss`, `pss` and `anonymous` (slower). */
  rss?: boolean;
}

/** The current map of this process. `{ rss: true }` adds resident sizes. */
export function maps(options: MapsOptions = {}): MemoryRegion[] {
  return classifiedMap(options, (rss) => (rss ? readProc('/proc/self/smaps') : readMapsText()), readOwnImages, ownImageEnds);
}

/**
 * @internal Where each object the dynamic loader has loaded in this process
 * ends, by the start of its first mapping: the program headers as the loader
 * holds them, read under its lock, with no read of their pages (the bss
 * check's read of the images' first pages cost more than the rest of it).
 */
export function ownImageEnds(): ImageEnds {
  let count = native(() => binding.loadedImages(loadedScratch));
  if (3 * count > loadedScratch.length) {
    loadedScratch = new Float64Array(6 * count);
    count = Math.min(native(() => binding.loadedImages(loadedScratch)), loadedScratch.length / 3);
  }
  // The loader's list changes only with a dlopen or dlclose: the same
  // figures give the same ends, which callers only read.
  if (lastImages !== undefined && sameFigures(lastImages.figures, loadedScratch, 3 * count)) return lastImages.ends;
  const ends = new Map<bigint, bigint>();
  for (let k = 0; k < count; k++) {
    const { base, end } = imageSpan(BigInt(loadedScratch[3 * k]), BigInt(loadedScratch[3 * k + 1]), BigInt(loadedScratch[3 * k + 2]));
    ends.set(base, end);
  }
  lastImages = { figures: loadedScratch.slice(0, 3 * count), ends };
  return ends;
}
let loadedScratch = new Float64Array(3 * 64);
let lastImages: { figures: Float64Array; ends: ImageEnds } | undefined;

function sameFigures(kept: Float64Array, now: Float64Array, length: number): boolean {
  if (kept.length !== length) return false;
  for (let i = 0; i < length; i++) if (kept[i] !== now[i]) return false;
  return true;
}

/**
 * @internal Ranges of this process's memory, in one native call
 * (process_vm_readv on our own pid) per RANGES_PER_READ, into memory the
 * addon mapped, kept between calls: a Buffer per range cost more than the
 * read, and came from malloc; so did the arrays of a result, which the
 * packed form does without, and typed arrays for the words, errnos and
 * bytes (fresh-memory.ts).
 */
export const readOwnImages: ReadImages = (ranges) => {
  const imageScratch = imageBytes(ranges.reduce((n, r) => n + Number(r.length), 0));
  const { words, errnos } = rangeScratch();
  const whole: boolean[] = [];
  // More than one call takes are read in calls of that many, in order.
  for (let i = 0, into = 0; i < ranges.length; i += RANGES_PER_READ) {
    const part = ranges.slice(i, i + RANGES_PER_READ);
    let length = 0;
    part.forEach((r, k) => {
      words[2 * k] = r.address;
      words[2 * k + 1] = r.length;
      length += Number(r.length);
    });
    readPacked(process.pid, words.subarray(0, 2 * part.length), imageScratch.subarray(into, into + length), errnos.subarray(0, part.length));
    for (let k = 0; k < part.length; k++) whole.push(errnos[k] === 0);
    into += length;
  }
  let at = 0;
  return ranges.map((r, i) => {
    const from = at;
    at += Number(r.length);
    return whole[i] ? imageScratch.subarray(from, at) : undefined;
  });
};
const imageBytes = keptBytes();

/**
 * A process's map, read with `readText` (smaps when `options.rss`) and
 * classified, its bss regions checked against the ends of their ELF images:
 * `knownImages`' where it has the object (this process's loader, for
 * maps()), else from the headers `readImages` reads (this process's, or
 * another's for attach(pid).maps()).
 */
export function classifiedMap(options: MapsOptions, readText: (rss: boolean) => string, readImages: ReadImages, knownImages?: () => ImageEnds): MemoryRegion[] {
  const rss = readOptions(options, 'options', ['rss']).rss ?? false;
  if (typeof rss !== 'boolean') throw typeError(`options.rss must be a boolean, got ${describe(rss)}`);
  const regions = parseSettled(() => readText(rss), rss ? parseSmaps : parseMaps);
  checkBss(regions, readImages, knownImages?.());
  return displayable(regions);
}

/**
 * Parses the map text `read` returns, reading it again (up to three times in
 * all) while it is torn. The kernel produces these files a buffer at a time;
 * a thread that maps, unmaps or grows an arena between two read()s tears the
 * text (a region shown twice or overlapping), which the parser rejects. A
 * re-read is clean.
 */
export function parseSettled(read: () => string, parse: (text: string) => MemoryRegion[]): MemoryRegion[] {
  for (let attempt = 1; ; attempt++) {
    const text = read();
    try {
      return parse(text);
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

/** Notebooks show the list as a table; non-enumerable, so the array stays plain data. */
function displayable(regions: MemoryRegion[]): MemoryRegion[] {
  return Object.defineProperties(regions, SHOW);
}
const SHOW_VALUE = descriptor({ value(this: MemoryRegion[]) { return regionViews.views.bundle(this); } });
const SHOW: PropertyDescriptorMap = { [Symbol.for('Jupyter.display')]: SHOW_VALUE, _toMime: SHOW_VALUE };

/**
 * /proc/self/maps through a plan step: read into memory from mmap. fs would
 * leave a Buffer from malloc behind, freed into main_arena whenever it is
 * collected, in the middle of whatever is measured next. A map over the
 * step's 1 MiB is read with fs.
 */
function readMapsText(): string {
  const result = binding.runPlan(MAPS_PLAN, false, mapsRecords);
  const text = result.texts[0];
  return STATUS[Number(BigInt.asUintN(8, mapsRecords[0]))] === 'ok' && text !== undefined ? text : readProc('/proc/self/maps');
}
/** The one-step plan, and its record, kept between calls (the executor copies the plan before it checks it). */
const MAPS_PLAN = new BigUint64Array(IN_WORDS);
MAPS_PLAN[0] = OP_CODES.maps;
const mapsRecords = new BigUint64Array(RECORD_WORDS[Number(OP_CODES.maps)]);

/**
 * A /proc file of this process as text, read into memory the addon maps
 * (withFileBytes); the text itself is a string in V8's heap.
 */
function readProc(file: string): string {
  try {
    return withFileBytes(file, (bytes) => bytes.toString('utf8'));
  } catch (error) {
    // Memory to read into that could not be mapped keeps its own code.
    if (error instanceof HeapscopeError) throw error;
    const e = error as NodeJS.ErrnoException;
    throw new HeapscopeError('ERR_READ_FAILED', `cannot read ${file}: ${e.message}`, {
      errno: e.errno === undefined ? undefined : Math.abs(e.errno),
      syscall: e.syscall,
    });
  }
}
