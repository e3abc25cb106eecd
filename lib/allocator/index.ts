// Reading glibc malloc's own state (arenas, mp_, global_max_fast, tcache)
// from copied bytes, without debug symbols, for glibc 2.28 to 2.42 on x86_64.
export { followArenas } from './arena-chain';
export type { ArenaChain } from './arena-chain';
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
