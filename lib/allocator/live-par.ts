// mp_ of this process, read now, for the experiments: what glibc uses, never
// a default. mp_ does not move for the life of a process, so it is located
// once and later readings copy its bytes only.
import { maps } from '../maps';
import { runPlan } from '../plan';
import { glibcVersion } from '../stats';
import { decodeMallocPar, MallocPar } from './decode';
import { locateGlobals, requireGlobals } from './image';
import { GlibcLayout, layoutFor } from './layouts';
import { libcDataRegions } from './libc-data';
import { findMallocPar } from './locate-par';
import { joinAdjacent } from './snapshot';
import { readStep, takeAllocatorSnapshot } from './take-snapshot';

let located: { address: bigint; layout: GlibcLayout } | undefined;

/**
 * mp_'s address from libc's data read live, in one plan. Its mark is
 * sbrk_base, [heap]'s start, which no other thread's malloc moves: a copy
 * read while another thread mallocs still finds it there, or finds
 * nothing. No freeze and no copy of [heap] (in an experiment's child the
 * frozen snapshot this spares took 18–25 ms). Undefined when it is not
 * found so, or there is no [heap]: then a whole snapshot decides.
 */
export function locateLive(layout: GlibcLayout): bigint | undefined {
  const regions = maps();
  const libc = libcDataRegions(regions);
  const heap = regions.find((r) => r.kind === 'heap');
  if (libc.length === 0 || heap === undefined) return undefined;
  const steps = runPlan([...libc.map((r) => readStep(r, BigInt(r.size))), { op: 'break' }]).steps;
  const end = steps[libc.length].programBreak!;
  if (steps.some((s) => s.status !== 'ok') || end <= heap.start) return undefined;
  const data = joinAdjacent(libc.map((r, i) => ({ base: r.start, bytes: steps[i].bytes! })));
  const par = findMallocPar({ layout, data, heap: { start: heap.start, end } }, undefined);
  return par.found ? par.address : undefined;
}

/** mp_'s fields as glibc holds them at this moment. Throws ERR_ALLOCATOR_NOT_FOUND or ERR_UNKNOWN_GLIBC_LAYOUT. */
export function liveMallocPar(): MallocPar {
  if (located === undefined) {
    const layout = layoutFor(glibcVersion());
    const address = locateLive(layout) ?? requireGlobals(locateGlobals(takeAllocatorSnapshot({ probe: false }).image)).mallocPar;
    located = { address, layout };
  }
  const { address, layout } = located;
  const [read] = runPlan([{ op: 'read', address, length: layout.mallocPar.size }]).steps;
  return decodeMallocPar(read.bytes!, 0, layout, address);
}
