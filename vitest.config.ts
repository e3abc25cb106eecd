import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The default forks pool keeps every test file on a process's main
    // thread, so it allocates from main_arena; the threads pool would not.
    pool: 'forks',
    // The tests measure a live, multi-threaded process: another thread can
    // free into main_arena in the middle of a measurement. A test is run up
    // to twice more before it counts as failed, and the report lists retries.
    retry: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
