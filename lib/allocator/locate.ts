// main_arena, mp_ and global_max_fast, found in copies of libc's data
// without debug symbols, each with the evidence for it or a coded refusal.
import { MallocPar } from './decode';
import { GlibcLayout } from './layouts';
import { findMainArena, MainArena } from './locate-arena';
import { Located, LocateInput } from './locate-input';
import { findGlobalMaxFast, GlobalMaxFast, MaxFastChange } from './locate-max-fast';
import { findMallocPar } from './locate-par';
import { joinAdjacent } from './snapshot';

export interface MallocGlobals {
  layout: GlibcLayout;
  mainArena: Located<MainArena>;
  mallocPar: Located<MallocPar>;
  globalMaxFast: Located<GlobalMaxFast>;
}

/**
 * Locates malloc's globals in `input.data`: main_arena first (its state
 * decides what mp_.sbrk_base must be without [heap]), then mp_, then
 * global_max_fast (see findGlobalMaxFast for `change`).
 */
export function locateMallocGlobals(input: LocateInput, change?: MaxFastChange): MallocGlobals {
  // Every key written, in one order, not spread: a spread copies the shape of
  // whatever it is given, and the locators' code was deoptimized at each new one.
  const joined: LocateInput = { layout: input.layout, data: joinAdjacent(input.data), heap: input.heap, others: input.others };
  const mainArena = findMainArena(joined);
  const arena = mainArena.found ? mainArena.value : undefined;
  const mallocPar = findMallocPar(joined, arena);
  const par = mallocPar.found ? mallocPar.value : undefined;
  const after = change === undefined ? undefined : { ...change, after: joinAdjacent(change.after) };
  const globalMaxFast = findGlobalMaxFast(joined, arena, par, after);
  return { layout: input.layout, mainArena, mallocPar, globalMaxFast };
}
