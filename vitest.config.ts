import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The forks pool keeps every test file on a process's main thread, so it
    // allocates from main_arena; the threads pool would not.
    pool: 'forks',
    // V8's helper threads (concurrent marking, compiling, sweeping) and
    // Node's platform workers allocate and free native memory while a test
    // measures main_arena. Without them, what is left (libuv's pool) is why
    // measurements that need a quiet heap run in a child (helpers/quiet-child).
    execArgv: ['--single-threaded', '--v8-pool-size=0'],
    // Records reach their views through slots an entry point fills
    // (lib/present.ts); a test process whose heap cannot grow skips (helpers/heap-room).
    setupFiles: ['./test/helpers/present.ts', './test/helpers/heap-room.ts'],
    // A worker blocked in a synchronous call is named and killed (helpers/stall-reporter).
    reporters: ['default', './test/helpers/stall-reporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
