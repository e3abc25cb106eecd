// Reading glibc malloc's own state (arenas, mp_, global_max_fast, bins,
// tcache) from copied bytes, without debug symbols, for glibc 2.28 to 2.42
// on x86_64; and taking those copies of this process in one native call.
export { followArenas } from './arena-chain';
export type { ArenaChain } from './arena-chain';
export { decodeArenas, heapMaxSize } from './arenas';
export type { Arena, ArenaList } from './arenas';
export { sizeRule, walkFastbin, walkRegularBin } from './bin-walk';
export { decodeBins } from './bins';
export type { ArenaBins, Bin, BinChunk } from './bins';
export { walkArenas } from './heap-walks';
export type { RegionWalk } from './heap-walks';
export { copiesOf, locateGlobals, requireGlobals } from './image';
export type { AllocatorImage } from './image';
export { libcFileOf } from './libc-file';
export type { LibcFile } from './libc-file';
export { maxFastOffset, readGlobalMaxFast } from './max-fast';
export type { GlobalMaxFastReading, MaxFastOffset } from './max-fast';
export { copiedMemory, holds, rangeOf, readBytes, readWord } from './memory-source';
export type { CopiedRange, MemorySource } from './memory-source';
export { decodeParams, MALLOC_PAR_MEANINGS } from './params';
export type { MallocParamField, MallocParams } from './params';
export { placeChunks, placementProblems } from './places';
export type { Placement, PlaceKind, PlacedChunk, RegionPlaces } from './places';
export { decodeAllocator } from './state';
export type { AllocatorState, DecodeOptions } from './state';
export { takeAllocatorSnapshot, tornReason } from './take-snapshot';
export type { AllocatorSnapshot, AllocatorSnapshotOptions } from './take-snapshot';
export { findTcaches } from './tcaches';
export { HEAD_LINES, MAX_VIS_COUNT, readVisOptions, TAIL_LINES, VIS_COUNT, visChunks, WHOLE_LINES } from './vis';
export type { VisChunk, VisData, VisLine, VisOptions } from './vis';
export type { TcacheBinState, TcacheSearch, ThreadCache } from './tcaches';
export { compareMallinfo, decodedTotals, TOTALLED_FIELDS } from './totals';
export type { ArenaTotals, DecodedTotals, MallinfoMismatch, MallinfoTotals, TotalledField } from './totals';
export {
  binAddress, cachedChunks, decodeFields, decodeHeapInfo, decodeMallocPar, decodeMallocState, decodeTcacheEntry,
  decodeTcachePerthread, initialTop,
} from './decode';
export type { ArenaBin, FieldValue, HeapInfo, MallocPar, MallocState, TcacheEntry, TcachePerthread } from './decode';
export { KNOWN_GLIBC_VERSIONS, layoutFor, tcacheLayoutFor } from './layouts';
export type { GlibcLayout, TcacheKey } from './layouts';
export { libcDataRegions } from './libc-data';
export { locateMallocGlobals } from './locate';
export type { MallocGlobals } from './locate';
export type { MainArena, MainArenaState } from './locate-arena';
export type { AddressRange, Candidate, Found, Located, LocateInput, Refusal, RefusalCode } from './locate-input';
export { setMaxFast } from './locate-max-fast';
export type { GlobalMaxFast, MaxFastChange } from './locate-max-fast';
export { protectPointer, revealPointer } from './safe-linking';
export { joinAdjacent, locateIn } from './snapshot';
export type { Snapshot } from './snapshot';
export { cStruct, fieldOf, offsetOf } from './struct-layout';
export type { CType, FieldLayout, StructLayout } from './struct-layout';
export type { TcacheLayout } from './structs';
