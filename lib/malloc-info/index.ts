// glibc's malloc_info(0, fp) report of this process, read into a typed model:
// the model in records.ts, the parsing of glibc's XML in parse.ts (over the
// small XML reader of xml.ts).
import { binding } from '../binding';
import { native } from '../errors';
import { parseMallocInfo } from './parse';
import { MallocInfo } from './records';

export { parseMallocInfo } from './parse';
export { mallocInfoViews } from './records';
export type { ArenaInfo, BlockTotal, MallocInfo, MallocTotals, SizeClassEntry, UnsortedEntry } from './records';

/**
 * The allocator report of this process: glibc's `malloc_info(0, fp)`, parsed.
 *
 * The addon writes the report to an `open_memstream` stream, whose setup
 * (`calloc(1, BUFSIZ)`, a large request) makes glibc consolidate the fastbins
 * of the calling thread's arena first: that arena reads as having no fastbin
 * chunks. Other threads' arenas are seen as they are.
 */
export function mallocInfo(): MallocInfo {
  const xml = native(() => binding.mallocInfo());
  return parseMallocInfo(xml);
}
