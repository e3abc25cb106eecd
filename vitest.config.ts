import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The forks pool keeps every test file on a process's main thread, so it
    // allocates from main_arena; the threads pool would not.
    pool: 'forks',
    // V8's helper threads (concurrent marking, compiling, sweeping) allocate
    // and free native memory while a test measures main_arena; without them
    // nothing else in the test process touches the heap mid-measurement.
    execArgv: ['--single-threaded'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
