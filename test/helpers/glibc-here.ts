// This process's glibc as heapscope's layout table has it (the tests run on
// a release it knows), for the expectations that differ from 2.43 on: an
// mmapped chunk's size 16 bytes short of its mapping, no fastbins.
import { GlibcLayout, layoutFor } from '../../lib/allocator/layouts';
import { glibcVersion } from '../../lib/stats';

export const HERE: GlibcLayout = layoutFor(glibcVersion());

/** Bytes of an mmapped chunk's mapping past its size: 0, or 16 from 2.43. */
export const MMAPPED_TAIL = HERE.mmappedTail;
