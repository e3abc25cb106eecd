// How heapscope starts a node child that measures its own heap.

/**
 * V8's helper threads (concurrent GC, compilation) free memory the main
 * thread allocated; with tcache full or off those chunks go straight into
 * main_arena's bins in the middle of a plan. The child runs without them,
 * and without Node's platform workers, which --single-threaded leaves
 * running. With no helper thread V8 also compiles optimized code on the
 * main thread, and a child's run is over before that pays back: in the ten
 * experiments' children, one search of libc's data took 0.1–1 ms in baseline
 * code and 10–16 ms when TurboFan compiled it first, and the children took
 * 2.74 s in all, 2.01 s stopped at Sparkplug (`--max-opt=1`). V8's young
 * generation is kept to 1 MiB a semi-space (16 by default): a child's
 * garbage then reuses the pages it already touched instead of growing into
 * fresh ones, each a page fault (about 10 µs where faults are dear). The
 * bins child took 13,700 faults instead of 17,150 and 0.63 s of CPU
 * instead of 0.68, the ten children 2.44 s instead of 2.56.
 */
export const QUIET_NODE_FLAGS: readonly string[] = ['--single-threaded', '--v8-pool-size=0', '--max-opt=1', '--max-semi-space-size=1'];

/**
 * The environment for such a child: this process's, without
 * NODE_EXTRA_CA_CERTS. Node reads and parses those certificates as it
 * starts, before any code of ours runs: with the 220 KB bundle of this
 * machine's Debian, each start took 45 ms more and left 1.1 MB of
 * OpenSSL's records in the child's main_arena, in the heap it measures. No
 * child of heapscope makes a TLS connection.
 */
export function quietEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}
