// mp_ of this process, read now, for the experiments: what glibc uses, never
// a default. mp_ does not move for the life of a process, so it is located
// once (one allocator snapshot) and later readings copy its bytes only.
import { runPlan } from '../plan';
import { glibcVersion } from '../stats';
import { decodeMallocPar, MallocPar } from './decode';
import { locateGlobals, requireGlobals } from './image';
import { GlibcLayout, layoutFor } from './layouts';
import { takeAllocatorSnapshot } from './take-snapshot';

let located: { address: bigint; layout: GlibcLayout } | undefined;

/** mp_'s fields as glibc holds them at this moment. Throws ERR_ALLOCATOR_NOT_FOUND or ERR_UNKNOWN_GLIBC_LAYOUT. */
export function liveMallocPar(): MallocPar {
  if (located === undefined) {
    const layout = layoutFor(glibcVersion());
    const snapshot = takeAllocatorSnapshot({ probe: false });
    const { mallocPar } = requireGlobals(locateGlobals(snapshot.image));
    located = { address: mallocPar, layout };
  }
  const { address, layout } = located;
  const [read] = runPlan([{ op: 'read', address, length: layout.mallocPar.size }]).steps;
  return decodeMallocPar(read.bytes!, 0, layout, address);
}
