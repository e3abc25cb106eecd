// A run's third child runs even when its break cannot grow (lib/experiments/
// run.ts), and a break can be blocked after the child checked it (a mapping
// placed right above it later). An experiment that meets a blocked break says
// so, from main_arena's NONCONTIGUOUS_BIT; its tests that need the break to
// move skip then, with that sentence as the reason.
import type { ExperimentResult } from '../../lib/experiments/types';

/** The result's own sentence about a break brk() could not grow, or undefined. */
export function blockedBreakSaid(result: ExperimentResult<object>): string | undefined {
  return [...result.surprises, ...result.findings].find((s) => s.includes('brk() could not grow the heap'));
}
