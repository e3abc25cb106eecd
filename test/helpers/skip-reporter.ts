// Every skipped test says why (its note to `skip`), but vitest's default
// reporter prints only how many were skipped: a run whose heap-room check
// skipped a whole file (helpers/heap-room) left no trace of the room it
// measured. This reporter prints each skipped test with its note once the
// run ends, so that every log, CI's included, says what was skipped and why.
import type { Reporter, TestCase } from 'vitest/node';

export default class SkipReporter implements Reporter {
  private readonly skipped: string[] = [];

  onTestCaseResult(test: TestCase): void {
    const result = test.result();
    if (result.state !== 'skipped') return;
    this.skipped.push(`  ${test.module.relativeModuleId} > ${test.fullName}: ${result.note ?? '(skipped where it is declared: its name says when it runs)'}`);
  }

  onTestRunEnd(): void {
    if (this.skipped.length === 0) return;
    process.stdout.write(`\nSkipped, and why (${this.skipped.length}):\n${this.skipped.join('\n')}\n`);
  }
}
