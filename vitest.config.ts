import { configDefaults, defineConfig } from 'vitest/config';

// V8's helper threads (concurrent marking, compiling, sweeping) and Node's
// platform workers allocate and free native memory while a test measures
// main_arena. Without them, what is left (libuv's pool) is why measurements
// that need a quiet heap run in a child (helpers/quiet-child).
const NO_HELPER_THREADS = ['--single-threaded', '--v8-pool-size=0'];

// The two files that drive Chromium through playwright-core: loading it
// reads Node's `Headers`, which loads undici, whose HTTP parser is
// WebAssembly. Without the JIT that rejects, unhandled, so these keep it.
// Neither reads a live heap of its own process (heapRoomNotNeeded).
const BROWSER = ['test/views/report-browser.test.ts', 'test/notebook.test.ts'];

export default defineConfig({
  test: {
    // The forks pool keeps every test file on a process's main thread, so it
    // allocates from main_arena; the threads pool would not.
    pool: 'forks',
    // Records reach their views through slots an entry point fills
    // (lib/present.ts); a test process whose heap cannot grow skips (helpers/heap-room).
    setupFiles: ['./test/helpers/present.ts', './test/helpers/heap-room.ts'],
    // A worker blocked in a synchronous call is named and killed (helpers/stall-reporter); each skipped test is listed
    // with its reason at the end (helpers/skip-reporter).
    reporters: ['default', './test/helpers/stall-reporter.ts', './test/helpers/skip-reporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'jitless',
          exclude: [...configDefaults.exclude, ...BROWSER],
          // Without its JIT, V8 reserves no code range, which in about one
          // start in a hundred here landed right above [heap], so that the
          // heap could not grow (helpers/heap-room); nothing in the tests is
          // timed. Without the JIT there is no WebAssembly either: saying so
          // keeps V8 from warning.
          execArgv: [...NO_HELPER_THREADS, '--jitless', '--no-expose-wasm'],
        },
      },
      {
        extends: true,
        test: { name: 'browser', include: BROWSER, execArgv: NO_HELPER_THREADS },
      },
    ],
  },
});
