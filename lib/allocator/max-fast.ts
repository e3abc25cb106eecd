// global_max_fast: a lone byte or word in libc's .bss, told from its
// neighbours only by moving it (locate-max-fast.ts). Moving it changes the
// process, so it is moved in children forked for it (a plan's freeze with
// `maxFast`: the child sets the limit, this process keeps its own), as an
// offset from main_arena, and cached per libc file: every process that
// maps the same file has it at the same offset.
import { hex } from '../format';
import { maps } from '../maps';
import { PlanStep, runPlan } from '../plan';
import { glibcVersion } from '../stats';
import { noMaxFast, setMaxFast } from './locate-max-fast';
import { AllocatorImage } from './image';
import { GlibcLayout, layoutFor } from './layouts';
import { libcDataRegions } from './libc-data';
import { LibcFile, libcFileOf } from './libc-file';
import { locateMallocGlobals } from './locate';
import { readBytes } from './memory-source';
import { readC, Snapshot } from './snapshot';

export type MaxFastOffset = { offset: bigint } | { reason: string };

/** What global_max_fast holds in an image, or why it cannot be told. */
export type GlobalMaxFastReading =
  | {
    found: true;
    address: bigint;
    /** The largest chunk size that goes to a fastbin. */
    value: number;
    /** From main_arena, as measured in children forked from a process mapping the same libc file. */
    offset: bigint;
    /** The libc file it was measured for. */
    libc: string;
  }
  | { found: false; reason: string }
  /** This glibc has none (2.43 on). */
  | { found: false; absent: true; reason: string };

/** The reading for a glibc that has no global_max_fast, or undefined where it has one. */
function absentMaxFast(layout: GlibcLayout): GlobalMaxFastReading | undefined {
  return layout.globalMaxFast === 'none' ? { found: false, absent: true, reason: noMaxFast(layout.version) } : undefined;
}

const cache = new Map<string, MaxFastOffset>();

/**
 * The limits the forked children set, in turn. Each copy is compared with
 * the one before it: this process's own (whatever limit it has: the
 * default 128, a tunable's, a mallopt's), then a child's at 64, then one at
 * 32, so that one of the two moves it whatever it was.
 */
const REQUESTS = [64, 32];

/**
 * global_max_fast's offset from main_arena in `libc`: measured the first
 * time a libc file is asked about, then cached. It is measured in forks of
 * this process, so `libc` must be the file this process maps (same path,
 * device, inode, size and mtime), or the answer is a reason instead.
 */
export function maxFastOffset(libc: LibcFile): MaxFastOffset {
  const known = cache.get(libc.key);
  if (known !== undefined) return known;
  const measured = measureInForks(libc);
  cache.set(libc.key, measured);
  return measured;
}

/**
 * One plan of three freezes, each copying libc's data: the first as this
 * process is, the others in a child that set its fastbin limit first.
 * (Three forks of this process: 44 ms in a plain `node` process here,
 * where a `node` child that did the same took 0.13 s of CPU.)
 */
function measureInForks(libc: LibcFile): MaxFastOffset {
  const regions = maps();
  const mine = libcFileOf(regions);
  if (mine === undefined) return { reason: 'this process maps no libc, and it is measured in forks of this process' };
  // Another process's libc first: that this process's glibc has no global_max_fast (2.43 on) says nothing of that one's.
  if (mine.key !== libc.key) return { reason: `it is measured in forks of this process, which maps another libc (${mine.key}) than this one (${libc.key})` };
  // No forks where there is nothing to find (2.43 on).
  const layout = layoutFor(glibcVersion());
  if (layout.globalMaxFast === 'none') return { reason: noMaxFast(layout.version) };
  const data = libcDataRegions(regions);
  if (data.length === 0) return { reason: 'this process maps no writable data of libc' };
  const heap = regions.find((r) => r.kind === 'heap');
  const steps: PlanStep[] = [];
  const copies = [undefined, ...REQUESTS].map((maxFast) => {
    const freeze = steps.push(maxFast === undefined ? { op: 'freeze' } : { op: 'freeze', maxFast }) - 1;
    const brk = steps.push({ op: 'break' }) - 1;
    const reads = data.map((r) => steps.push({ op: 'read', address: r.start, length: r.size }) - 1);
    steps.push({ op: 'thaw' });
    return { maxFast, freeze, brk, reads };
  });
  const results = runPlan(steps).steps;
  const failed = copies.find((c) => results[c.freeze].status !== 'ok');
  if (failed !== undefined) {
    const why = failed.maxFast === undefined ? 'the freeze' : `the freeze that set the fastbin limit to ${failed.maxFast}`;
    return { reason: `${why} failed (errno ${results[failed.freeze].errno}): no child to read` };
  }
  const snapshots = copies.map((c): Snapshot[] => data.map((r, i) => ({ base: r.start, bytes: results[c.reads[i]].bytes! })));
  const reasons: string[] = [];
  for (let i = 1; i < copies.length; i++) {
    const before = copies[i - 1];
    const input = { layout, data: snapshots[i - 1], ...(heap === undefined ? {} : { heap: { start: heap.start, end: results[before.brk].programBreak! } }) };
    const request = copies[i].maxFast!;
    const g = locateMallocGlobals(input, { after: snapshots[i], request });
    if (!g.mainArena.found) return { reason: `main_arena: ${g.mainArena.reason}` };
    if (g.globalMaxFast.found) return { offset: g.globalMaxFast.address - g.mainArena.address };
    reasons.push(`mallopt(M_MXFAST, ${request}): ${g.globalMaxFast.reason}`);
  }
  return { reason: `it could not be told: ${reasons.join('; ')}` };
}

/**
 * global_max_fast read from the image at main_arena + the measured offset,
 * checked to be a value set_max_fast gives; `measured` undefined where it was
 * not measured for this libc. A glibc without one (2.43) says so first.
 */
export function readGlobalMaxFast(image: AllocatorImage, mainArena: bigint, measured: MaxFastOffset | undefined, libc: string): GlobalMaxFastReading {
  const absent = absentMaxFast(image.layout);
  if (absent !== undefined) return absent;
  if (measured === undefined) return { found: false, reason: 'its offset from main_arena was not measured for this libc' };
  // Own fields only: an Object.prototype.reason or .offset is none of ours.
  if (!Object.hasOwn(measured, 'offset')) return { found: false, reason: `its offset from main_arena is not known: ${(measured as { reason: string }).reason}` };
  const { offset } = measured as { offset: bigint };
  const address = mainArena + offset;
  const width = image.layout.globalMaxFast === 'size_t' ? 8 : 1;
  const bytes = readBytes(image.memory, address, width);
  if (typeof bytes === 'string') return { found: false, reason: `main_arena + ${hex(offset)} cannot be read: ${bytes}` };
  const value = Number(readC(bytes, 0, width === 8 ? 'size_t' : 'uint8_t'));
  // 0 until malloc starts; then set_max_fast of 8 to 160 (or of less, which gives 16 from 2.31 and 0 before).
  const possible = value === 0 || (value % 16 === 0 && value >= 16 && value <= setMaxFast(160));
  if (!possible) {
    return { found: false, reason: `main_arena + ${hex(offset)} holds ${value}, which set_max_fast never gives: the measured offset does not fit this libc` };
  }
  return { found: true, address, value, offset, libc };
}
