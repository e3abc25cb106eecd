// How far a drop read from /proc/PID/statm can be from the pages that went.
import os from 'node:os';

const PAGE = 4096;

/**
 * Since Linux 6.2 the RSS counters are per-CPU (percpu_counter, batch
 * max(32, 2 × CPUs) pages) and statm reads the shared count without the
 * per-CPU parts, so each reading may lag by a batch per CPU; a drop is two
 * readings. (smaps walks the page tables and is exact; pagemap too.)
 */
export const STATM_SLACK = 2 * Math.max(32, 2 * os.availableParallelism()) * os.availableParallelism() * PAGE;
