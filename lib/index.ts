// The public API. The raw addon (lib/binding.ts) stays internal.
export {
  Allocation, alignedAlloc, allocationAt, calloc, free, liveAllocations, malloc, mallocUsableSize, realloc,
} from './allocation';
export type { AllocationCall } from './allocation';
export { IS_MMAPPED, NON_MAIN_ARENA, PREV_INUSE } from './chunk';
export type { ChunkHeader } from './chunk';
export { HeapscopeError } from './errors';
export type { ErrorCode } from './errors';
export { mallocInfo, parseMallocInfo } from './malloc-info';
export type { ArenaInfo, BlockTotal, MallocInfo, MallocTotals, SizeClassEntry, UnsortedEntry } from './malloc-info';
export { maps, parseMaps, parseSmaps, regionOf } from './maps';
export type { MapsOptions, MemoryRegion, RegionKind } from './maps';
export { MAX_READ, readMemory } from './memory';
export { runPlan } from './plan';
export type { PlanOp, PlanOptions, PlanResult, PlanStep, StepIndex, StepResult, StepStatus } from './plan';
export {
  glibcVersion, M_ARENA_MAX, M_ARENA_TEST, M_MMAP_MAX, M_MMAP_THRESHOLD, M_MXFAST, M_PERTURB, M_TOP_PAD,
  M_TRIM_THRESHOLD, mallinfo2, mallocTrim, mallopt, MALLOPT_PARAMS, pageSize, programBreak,
} from './stats';
export type { Mallinfo, MalloptParam } from './stats';
export {
  binIndex, binRange, fastbinIndex, largebinIndex, MINSIZE, mmappedChunkSize, requestToChunkSize, sizeClass,
  smallbinIndex, tcacheIndex, usableSizeOf,
} from './size-classes';
export type { BinRange, SizeClass } from './size-classes';
export type { Size } from './validate';
export { mainHeapSnapshot, walkHeap, walkSnapshot } from './walk/index';
export type {
  ChunkState, ChunkTable, HeapChunk, HeapInfo, HeapRegionWalk, HeapWalk, HeapWalkData, MainHeapSnapshot, MallinfoCheck, SnapshotWalk, SnapshotWalkOptions, Tcache,
  TcacheBin, WalkOptions, WalkSVGOptions, WalkTotals,
} from './walk/index';
export { experiment, experiments, run } from './experiments/run';
export type { RunOptions } from './experiments/run';
export type { Environment, Experiment, ExperimentOutput, ExperimentResult } from './experiments/types';
export { KNOWN_TUNABLES } from './experiments/tunables';
export { reportHTML, writeReport } from './report';
export type { Tunables } from './experiments/tunables';
