// A test blocked in a synchronous call (a child that never ends, a wait in
// native code) blocks its vitest worker, where no test timeout can fire, and
// the run would wait for it for ever: CI gave up on one after 5400 s with
// nothing to say where. This reporter runs in vitest's main process, whose
// event loop stays free. When no test has started or ended for STALL_MS
// (longer than any test here takes), it prints the file and the test that
// were running and what the worker's processes were waiting in, then kills
// them: that file fails, and so does the run, saying why.
import { spawnSync } from 'node:child_process';
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import { foreignEnv } from './foreign-env';

// HEAPSCOPE_TEST_STALL_MS sets another limit (to see this reporter at work).
const STALL_MS = Number(process.env.HEAPSCOPE_TEST_STALL_MS) || 15 * 60_000;

export default class StallReporter implements Reporter {
  private readonly running = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  onTestModuleStart(module: TestModule): void {
    this.running.set(module.relativeModuleId, '(collecting its tests)');
    this.arm();
  }

  onTestCaseReady(test: TestCase): void {
    this.running.set(test.module.relativeModuleId, test.fullName);
    this.arm();
  }

  onTestCaseResult(): void {
    this.arm();
  }

  onTestModuleEnd(module: TestModule): void {
    this.running.delete(module.relativeModuleId);
    this.arm();
  }

  onTestRunEnd(): void {
    clearTimeout(this.timer);
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.stalled(), STALL_MS);
    // A stall is the workers' business: this timer alone keeps nothing alive.
    this.timer.unref();
  }

  private stalled(): void {
    const files = [...this.running].map(([file, test]) => `  ${file} > ${test}`).join('\n');
    const descendants = processesUnder(process.pid);
    const table = spawnSync('ps', ['-o', 'pid,ppid,stat,etime,wchan:24,args', '-p', descendants.join(',') || String(process.pid)], { encoding: 'utf8', timeout: 10_000, env: foreignEnv() });
    process.stderr.write(
      `\nNo test started or ended for ${STALL_MS / 1000} s. Running (the last test each file started):\n${files || '  (none known)'}\n` +
      `The test processes, and the kernel function each waits in:\n${table.stdout ?? ''}\nThey are killed now: that file fails.\n`,
    );
    for (const pid of descendants.reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
}

/** Every process below `root`, parents before their children, as ps lists them. */
function processesUnder(root: number): number[] {
  const children = spawnSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8', timeout: 10_000, env: foreignEnv() }).stdout ?? '';
  const byParent = new Map<number, number[]>();
  for (const line of children.trim().split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    byParent.set(ppid, [...(byParent.get(ppid) ?? []), pid]);
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const child of byParent.get(pid) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(root);
  return found;
}
