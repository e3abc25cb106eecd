// Plan steps that leave the calling thread's tcache bin of a request size
// holding at least one chunk more (up to mp_.tcache_count), whatever it held.
import { MINSIZE, PlanStep } from '../../lib/index';

/**
 * A block MINSIZE bigger than `request`, shrunk in place by realloc (its
 * chunk is split to exactly request2size(request), whatever chunk malloc
 * handed out), then freed: into the bin, or the bin was full. Its steps
 * start at index `at` of the plan. A malloc of `request` after it is then
 * taken from the bin, and a free after that finds room in it. Mallocs that
 * drain the bin instead do not leave it empty for sure: one that finds it
 * empty refills it from a fastbin or small bin of the size (tcache
 * stashing), up to full.
 */
export function tcacheFill(at: number, request: number): PlanStep[] {
  return [{ op: 'malloc', size: request + MINSIZE }, { op: 'realloc', step: at, size: request }, { op: 'free', step: at + 1 }];
}
