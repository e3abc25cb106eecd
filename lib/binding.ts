// The raw addon and its interface. Nothing outside lib/ sees this shape:
// the public API in the other modules validates, names and wraps it.
import path from 'node:path';
import { HeapscopeError } from './errors';

/** Two header words in front of a user pointer: prev_size, then size with flags. */
export type RawHeader = [prevSize: bigint, size: bigint];

/**
 * Addresses and sizes go in as numbers (whole, below 2^53: every x86_64
 * user address is below 2^47) or bigints; pointers malloc returns come
 * back as numbers.
 */
export type RawWord = number | bigint;

export interface RawPlanResult {
  /** The steps' records, one after another (plan-codes.ts); decoded in plan.ts. */
  words: BigUint64Array;
  /** The /proc/self/maps text of each `maps` step, by step index. */
  texts: (string | undefined)[];
  /** The bytes of each successful `read` step, by step index. */
  buffers: (Buffer | undefined)[];
  /** Steps whose allocations were left live and registered (keep mode). */
  kept: number[];
}

export interface RawAddresses {
  addonFunction: bigint;
  initialisedGlobal: bigint;
  zeroGlobal: bigint;
  stringConstant: bigint;
  stackLocal: bigint;
  libcMalloc: bigint;
  nodeFunction: bigint;
  environmentString: bigint;
  vdso: bigint;
}

export interface RawRemoteRead {
  /** Per range: the bytes read (undefined when none), the errno that stopped it (0: complete), the bytes read. */
  buffers: (Buffer | undefined)[];
  errnos: number[];
  lengths: number[];
  /** Per range: the pages of an anonymous range left zero, never touched. */
  untouched: number[];
  /** Why /proc/PID/pagemap could not be read (0: it was, or no range needed it). */
  pagemapErrno: number;
}

/** The most ranges one readRemote call takes: IOV_MAX (native/remote.cc); more are read in calls of that many. */
export const RANGES_PER_READ = 1024;

export interface RawBinding {
  malloc(size: RawWord): number;
  calloc(count: RawWord, size: RawWord): number;
  realloc(address: RawWord, size: RawWord): number;
  memalign(alignment: RawWord, size: RawWord): number;
  free(address: RawWord): void;
  usableSize(address: RawWord): number;
  isLive(address: RawWord): boolean;
  liveCount(): number;
  /** mode 0: a plain copy; 1: private anonymous memory, never-touched pages left zero; 2: as 1, but null when it met one (native/memory.cc). */
  readMemory(address: RawWord, length: RawWord, mode?: 0 | 1): Buffer;
  readMemory(address: RawWord, length: RawWord, mode: 2): Buffer | null;
  writeAllocation(address: RawWord, offset: RawWord, bytes: Buffer): void;
  fillAllocation(address: RawWord, byte: number): void;
  chunkHeader(address: RawWord): RawHeader;
  programBreak(): bigint;
  /** Writes the ten mallinfo2 fields, in glibc's order, into `out`; returns 2 (mallinfo2 answered) or 1 (mallinfo). */
  mallinfo(out: Float64Array): number;
  mallopt(param: number, value: number): number;
  mallocTrim(pad: bigint): number;
  mallocInfo(): string;
  glibcVersion(): string;
  pageSize(): number;
  /** stat(2) of a path, fstat(2) of a descriptor: inode, size, modification time in ms, 1 for a directory (else 0). */
  fileStat(file: string | number): Float64Array;
  /**
   * With `records`, they are written there in place (at least the records' words, plan-codes.ts) and `words` is that array.
   * From step `releasedFrom` on, the caller gives every read copy back itself (releaseCopies): V8 does not count those as external memory meanwhile.
   * With `compiled` (an id from planId()), the steps are checked on the first run and kept, checked, until another compiled
   * plan runs; until then each run with that id and as many steps runs the kept ones, checks nothing and reads no word of `steps`.
   */
  runPlan(steps: BigUint64Array, keep: boolean, records?: BigUint64Array, releasedFrom?: number, compiled?: number): RawPlanResult;
  /** A new id for runPlan's `compiled`, never given before in this thread. */
  planId(): number;
  addresses(): RawAddresses;
  /**
   * For each object the dynamic loader has loaded (dl_iterate_phdr), as
   * long as `into` holds them: its load bias, its first PT_LOAD's p_vaddr
   * and its highest p_vaddr + p_memsz. Returns how many objects there are.
   */
  loadedImages(into: Float64Array): number;
  /**
   * Copies of another process's memory: `ranges` holds address, length
   * pairs (see native/remote.cc). With `into`, the ranges are read into it
   * one after another and `buffers` is empty.
   */
  readRemote(pid: number, ranges: BigUint64Array, anonymous?: Uint8Array, into?: Uint8Array): RawRemoteRead;
  /** The ranges read into `into` one after another, each one's errno (0: whole) written into `errnos`. */
  readRemote(pid: number, ranges: BigUint64Array, anonymous: undefined, into: Uint8Array, errnos: Int32Array): undefined;
  /**
   * Unmaps now each Buffer that is a whole read copy runPlan handed over
   * and not yet given back, its ArrayBuffer detached first (every view of it
   * then reads as empty); passes over anything else. How many it gave back.
   */
  releaseCopies(buffers: unknown[]): number;
  /**
   * `length` zero bytes (1 to 2^32) from mmap, in huge pages where the
   * kernel gives them, their pages faulted in at once unless `populate` is
   * false: for the columns a walk of a big heap fills. Given back by
   * releaseCopies, or when collected.
   */
  freshBuffer(length: number, populate?: boolean): Buffer;
  /** V8's count of external memory, by which it decides when to collect (read copies a caller releases itself are left out of it). */
  externalMemory(): number;
  /**
   * Gives the kernel back the whole pages of bytes [from, to) of memory the
   * addon mapped and registered as a copy (freshBuffer's, a plan's read, a
   * read of another process; they read as zero after); false, doing
   * nothing, for any other buffer.
   */
  dropPages(buffer: ArrayBuffer, from: number, to: number): boolean;
}

const REQUIREMENT = 'heapscope requires Linux on x86_64 with glibc 2.28 or later';

function unsupported(found: string): HeapscopeError {
  return new HeapscopeError('ERR_UNSUPPORTED_PLATFORM', `${REQUIREMENT}; found ${found}`);
}

/** Throws unless `glibc` (a version, undefined on another libc) is 2.28 or later. */
function checkGlibc(glibc: string | undefined): string {
  if (glibc === undefined) throw unsupported('a Linux without glibc (musl?)');
  const [major, minor] = glibc.split('.').map(Number);
  if (major < 2 || (major === 2 && minor < 28)) throw unsupported(`glibc ${glibc}`);
  return glibc;
}

/**
 * The addon, on Linux x86_64 with glibc >= 2.28. The version comes from the
 * addon's gnu_get_libc_version() once it loads; only when it does not is
 * Node asked what libc it runs on, through a process report. Made in every
 * process that loads heapscope, the tour's children too, the report cost
 * 6.2–6.6 ms here and freed a ~450 KiB mmapped chunk, which raised
 * mp_.mmap_threshold to 462,848 before anything was measured.
 */
function load(): RawBinding {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw unsupported(`${process.platform} on ${process.arch}`);
  }
  const root = path.join(__dirname, '..');
  let loaded: RawBinding;
  try {
    // node-gyp-build looks in build/Release first, then prebuilds/.
    loaded = require('node-gyp-build')(root) as RawBinding;
  } catch (error) {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    const glibc = checkGlibc(report?.header?.glibcVersionRuntime);
    throw new HeapscopeError(
      'ERR_UNSUPPORTED_PLATFORM',
      `no heapscope binary loads for platform ${process.platform}, arch ${process.arch}, libc glibc ${glibc} ` +
        `(Node ${process.version}, N-API ${process.versions.napi}): ${(error as Error).message}. ` +
        'Build it from source: `npm rebuild heapscope --build-from-source` in your project ' +
        '(needs python3, make, g++ and Node\'s headers; with npm 11, allow its install script first: ' +
        '`npm install-scripts approve heapscope`).',
    );
  }
  checkGlibc(loaded.glibcVersion());
  return loaded;
}

export const binding: RawBinding = load();
