// A child a test waits for synchronously (spawnSync, execFileSync) blocks
// the test file's process: vitest's own timeout cannot fire, and a child that
// never ended would hold the whole run until CI gave up on it. Each such
// child is killed after ten minutes, longer than any of them takes (its
// pipes are closed then too, so a grandchild that still holds them cannot
// keep the call waiting), and its test fails on a status of null with
// signal SIGKILL. Children that wait on a worker of their own wait with a
// deadline too, so that a worker that died says so at once.
// scripts/sanitize.sh sets HEAPSCOPE_TEST_CHILD_TIMEOUT lower: its suite runs
// under ASan's allocator for coverage, failures not judged, and there one
// child walking a heap of 200,000 blocks ran for over six minutes.
export const SYNC_CHILD = { timeout: Number(process.env.HEAPSCOPE_TEST_CHILD_TIMEOUT) || 600_000, killSignal: 'SIGKILL' } as const;
