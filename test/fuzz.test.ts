// The short fuzz run (scripts/fuzz.mjs, 5,000 calls in a child process):
// no signal, every error coded, every invariant kept (with Object.prototype
// polluted too), every export called, live sets empty, uordblks back. The
// full run is `npm run fuzz` (100,000 calls).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { SYNC_CHILD } from './helpers/sync-child';
import { HERE } from './helpers/glibc-here';

// The fuzz runs in a child: no live heap of this process is read.
heapRoomNotNeeded();

const FUZZ = path.resolve(__dirname, '..', 'scripts', 'fuzz.mjs');
// Fixed so a failure here reproduces; HEAPSCOPE_FUZZ_SEED tries another.
const SEED = process.env.HEAPSCOPE_FUZZ_SEED ?? '20261126';

function fuzz(...args: string[]) {
  const seeded = args.includes('--seed') ? args : ['--seed', SEED, ...args];
  const run = spawnSync(process.execPath, [FUZZ, ...seeded], { ...SYNC_CHILD, encoding: 'utf8' });
  const lines = run.stdout.trim().split('\n');
  const report = lines.map((line) => { try { return JSON.parse(line); } catch { return undefined; } }).find(Boolean);
  return { status: run.status, signal: run.signal, output: run.stdout + run.stderr, report, last: lines.at(-1) ?? '' };
}

describe('fuzz', () => {
  it('5,000 random calls, good and bad, from the main thread and two workers: the child survives and cleans up', () => {
    const { status, signal, output, report, last } = fuzz('--calls', '5000');
    expect(signal, output).toBeNull();
    expect(status, output).toBe(0);
    expect(last).toMatch(/^ok: 5000 calls/);
    expect(report.problems).toEqual([]);
    expect(report.calls).toBe(5000);
    // The bad inputs really were bad: each misuse reached its refusal. glibc rejects a mallopt the fuzzer makes only for
    // M_MXFAST above 160, which from 2.43 (no fastbins) it takes and ignores.
    for (const code of ['ERR_DOUBLE_FREE', 'ERR_UNKNOWN_POINTER', 'ERR_FREED', 'EFAULT', 'ERR_OUT_OF_RANGE',
      'ERR_INVALID_ARG_TYPE', 'ERR_ALLOC_FAILED', 'ERR_INVALID_PLAN', 'ERR_UNKNOWN_MALLOPT_PARAM', ...(HERE.fastbins ? ['ERR_MALLOPT_REJECTED'] : []),
      'ERR_ILLEGAL_CONSTRUCTOR', 'ERR_UNKNOWN_EXPERIMENT', 'ERR_INVALID_TUNABLE']) {
      expect(report.codes[code], code).toBeGreaterThan(0);
    }
    expect(Math.abs(report.uordblks.delta)).toBeLessThanOrEqual(report.uordblks.tolerance);
  }, 120_000);

  it('replays a seed: the same kinds of call in the same order, in every thread', () => {
    const [a, b] = [fuzz('--calls', '1000'), fuzz('--calls', '1000')];
    const other = fuzz('--calls', '1000', '--seed', String(Number(SEED) + 1));
    expect(a.report.sequence).toHaveLength(3);
    expect(b.report.sequence).toEqual(a.report.sequence);
    expect(other.report.sequence[0]).not.toBe(a.report.sequence[0]);
  }, 120_000);

  it('fails a run that leaks: the live sets and uordblks both notice', () => {
    const { status, report, last } = fuzz('--calls', '1000', '--leak', '100');
    expect(status).toBe(1);
    expect(last).toMatch(/^FAIL/);
    expect(report.problems).toEqual([
      '100 allocations still live in the main thread',
      "the addon's live set still holds 100 pointers",
      expect.stringMatching(/^mallinfo2\(\)\.uordblks moved by \d+ bytes/),
    ]);
  }, 120_000);

  it('fails a run with an error that has no code, or an export it does not call', () => {
    const { status, report, last } = fuzz('--calls', '1000', '--uncoded', '4', '--forget', 'walkSnapshot');
    expect(status).toBe(1);
    expect(last).toMatch(/^FAIL/);
    expect(report.problems).toEqual([
      'exported but not fuzzed: walkSnapshot (add a call and list it in COVERS)',
      expect.stringMatching(/^4 errors without a string code or broken invariants, e\.g\. .*injected: no code/),
    ]);
  }, 120_000);
});
