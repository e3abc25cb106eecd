// The public API. The raw addon (lib/binding.ts) stays internal.
import './present';
export {
  Allocation, alignedAlloc, allocationAt, calloc, free, liveAllocations, malloc, mallocUsableSize, realloc,
} from './allocation';
export type { AllocationCall } from './allocation';
export { IS_MMAPPED, NON_MAIN_ARENA, PREV_INUSE } from './chunk';
export type { ChunkHeader } from './chunk';
export { HeapscopeError } from './errors';
export type { ErrorCode } from './errors';
export { hex } from './format';
export { mallocInfo, parseMallocInfo } from './malloc-info';
export type { ArenaInfo, BlockTotal, MallocInfo, MallocTotals, SizeClassEntry, UnsortedEntry } from './malloc-info';
export { maps, parseMaps, parseSmaps, regionOf } from './maps';
export type { MapsOptions, MemoryRegion, RegionKind } from './maps';
export { MAX_READ, readMemory } from './memory';
export { CompiledPlan, compilePlan, runPlan } from './plan';
export type { PlanOp, PlanOptions, PlanResult, PlanStep, StepIndex, StepResult, StepStatus } from './plan';
export {
  glibcVersion, M_ARENA_MAX, M_ARENA_TEST, M_MMAP_MAX, M_MMAP_THRESHOLD, M_MXFAST, M_PERTURB, M_TOP_PAD,
  M_TRIM_THRESHOLD, mallinfo2, mallocTrim, mallopt, MALLOPT_PARAMS, pageSize, programBreak,
} from './stats';
export type { Mallinfo, MalloptParam } from './stats';
export {
  binIndex, binRange, fastbinIndex, largebinIndex, MINSIZE, mmappedChunkSize, requestToChunkSize,
  smallbinIndex, tcacheIndex, usableSizeOf,
} from './size-classes';
export type { BinRange, MmappedTail } from './size-classes';
export { sizeClass } from './size-class';
export type { SizeClass } from './size-class';
export type { Size } from './validate';
export { mainHeapSnapshot, walkHeap, walkSnapshot } from './walk/index';
export { allocatorSnapshot, allocatorTotals, arenas, bins, chunkPlaces, mallocParams, tcaches, vis } from './allocator-state';
export type {
  AllocatorSnapshot, AllocatorSnapshotOptions, AllocatorTotalsResult, ArenasResult, BinsResult, ChunkPlacesResult, MallocParamsResult,
  SnapshotInfo, TcachesResult, VisOptions, VisResult,
} from './allocator-state';
export { doctor, THRESHOLDS as DOCTOR_THRESHOLDS } from './doctor/index';
export type {
  Advice, ArenaDiagnosis, DoctorData, DoctorOptions, DoctorResult, MmappedChunks, ParamsInForce, RssKind, RssRow, TrimMeasured,
  TrimPrediction, TrimRange, V8Heap,
} from './doctor/index';
export { diffHeapSnapshots, heapSnapshot, readHeapSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION } from './heap-snapshot/index';
export type {
  ArenaDiff, ClassDiff, Counted, DiffSide, FreePlace, HeapDiff, HeapDiffData, HeapSnapshot, HeapSnapshotData, HeapSnapshotOptions, Pair, SizeClassCounts,
  SnapshotArena, SnapshotMmapped, SnapshotProcess,
} from './heap-snapshot/index';
export { attach } from './remote/attach';
export type { AttachedProcess, RemoteSnapshot, RemoteSnapshotOptions } from './remote/attach';
export type { DecodedTotalsResult } from './allocator/results';
export type { LibcFile } from './allocator/libc-file';
export type { Arena } from './allocator/arenas';
export type { HeapInfo as ArenaHeap, MallocPar } from './allocator/decode';
export type { ArenaBins, Bin, BinChunk } from './allocator/bins';
export type { GlobalMaxFastReading } from './allocator/max-fast';
export type { CopiedRange, MemorySource } from './allocator/memory-source';
export type { MallocParamField, MallocParams } from './allocator/params';
export type { PlaceKind, PlacedChunk, RegionPlaces } from './allocator/places';
export type { VisChunk, VisLine } from './allocator/vis';
export type { TcacheBinState, ThreadCache } from './allocator/tcaches';
export type { ArenaTotals, MallinfoMismatch, MallinfoTotals, TotalledField } from './allocator/totals';
export type {
  ChunkTable, HeapChunk, HeapRegionWalk, HeapWalk, HeapWalkData, MainHeapSnapshot, MallinfoCheck, Offsets, SnapshotWalk, SnapshotWalkOptions,
  WalkOptions, WalkSVGOptions, WalkTotals,
} from './walk/index';
export { experiment, experiments, run } from './experiments/run';
export type { RunOptions } from './experiments/run';
export type { Environment, Experiment, ExperimentOutput, ExperimentResult } from './experiments/types';
export type { ExperimentName, ExperimentRows } from './experiments/registry';
// Each experiment's rows, and the types their fields are made of.
export type { ArenaChunkRow, ArenaHeapRow, ArenaReportRow, ArenaRow, ArenaThread, HeapInfoRow } from './experiments/arenas';
export type { ChunkSizeRow } from './experiments/chunk-sizes';
export type { FreePhase, FreeRow, FreeRunStepRow, FreeStepRow } from './experiments/free';
export type { HeapGrowthRow } from './experiments/heap-growth';
export type { KernelCallRow, KernelStepRole, KernelVerdict } from './experiments/kernel-calls';
export type { LayoutBoundary, LayoutProbe, LayoutRow, LayoutSegment, PlacedRegion } from './experiments/layout';
export type { FreeRunRow, MapsDiff } from './experiments/measure';
export type {
  MmapThresholdRow, ProbeRole, ServedBy, ThresholdPhase, ThresholdProbeRow, ThresholdTrimRow,
} from './experiments/mmap-threshold';
export type { PagingBlock, PagingMoment, PagingRow } from './experiments/paging';
export type { FreeDestination, MallinfoChange, MallocSource, TcacheRow, TcacheStep } from './experiments/tcache';
export type { BinKind, BinLine, BinsRow, ChunkPlace, FrameParams, BinsStage } from './experiments/bins';
export { KNOWN_TUNABLES } from './experiments/tunables';
export { reportHTML, writeReport } from './report';
export type { ReportOptions } from './report';
export type { Tunables } from './experiments/tunables';
