// The commands that run experiments: list, run, tour and report. Several
// experiments run one after another, or isolated children side by side.
// Loaded with cli.ts: what the runs do not need is loaded once they started.
import os from 'node:os';
import { errorLine, JSON_FLAG, seconds, write } from './cli-common';
import { Command, Input, UsageError } from './command-line';
import { HeapscopeError } from './errors';
import type { ExperimentName, RegisteredExperiment } from './experiments/registry';
import { DEFAULT_TIMEOUT, experiment, experiments, run, stopRuns } from './experiments/run';
import { checkTunables } from './experiments/tunables';
import { ExperimentResult } from './experiments/types';
import { toJSON } from './json';
import { ProgressLine } from './progress';

/**
 * The result as a terminal shows it. The views, and present.ts that fills
 * their slots, are loaded for the first story, once the runs have started:
 * with them (and the experiments' code) loaded first, a tour's first
 * children started at 0.19–0.21 s; they start at 0.12–0.14 s now.
 */
async function story(result: ExperimentResult): Promise<string> {
  await import('./present');
  const { renderResult, terminalOptions } = await import('./views/terminal');
  return renderResult(result, terminalOptions(process.stdout));
}

const TIMEOUT_FLAG = { name: 'timeout', value: 'seconds', help: `kill an experiment's child after this long (default ${DEFAULT_TIMEOUT / 1000})` };
const RUN_FLAGS = [
  JSON_FLAG,
  { name: 'isolated', help: 'run each experiment in a fresh child process' },
  { name: 'in-process', help: 'run each experiment in this process' },
  { name: 'tunable', value: 'name=value', repeatable: true, help: 'a glibc malloc tunable for the child' },
  TIMEOUT_FLAG,
];
// An in-process run cannot be interrupted, nor given tunables.
const RUN_EXCLUSIVE = [['isolated', 'in-process'], ['in-process', 'tunable'], ['in-process', 'timeout']];

interface RunSettings {
  json: boolean;
  isolated?: boolean;
  tunables: Record<string, string>;
  timeout?: number;
}

function timeout(input: Input): number | undefined {
  return seconds(input, 'timeout');
}

/** The settings of run and tour, all checked before anything runs. */
function runSettings(input: Input): RunSettings {
  // fromEntries makes every name an own property (`__proto__` too), which checkTunables then refuses.
  const tunables: Record<string, string> = Object.fromEntries(input.values('tunable').map((value) => {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UsageError(`--tunable takes name=value, got ${JSON.stringify(value)}`, input.command);
    return [value.slice(0, eq), value.slice(eq + 1)];
  }));
  return {
    json: input.has('json'),
    isolated: input.has('isolated') ? true : input.has('in-process') ? false : undefined,
    tunables: checkTunables(tunables),
    timeout: timeout(input),
  };
}

/**
 * Isolated runs at once: each is a child process of its own, so one per
 * core runs (two at least), a new one starting whenever one ends, while
 * results are still printed in order. In-process runs run one at a time,
 * alone. (On two cores the tour took 1.42 s with two at once, 1.43–1.49 s
 * with three.)
 */
const AT_ONCE = Math.max(2, os.availableParallelism());

async function runMany(names: readonly string[], settings: RunSettings, progress?: { line: ProgressLine; label: string }): Promise<void> {
  const results: ExperimentResult[] = [];
  // A name from the command line: run() refuses an unknown one with ERR_UNKNOWN_EXPERIMENT.
  const start = (name: string) => run(name as ExperimentName, { isolated: settings.isolated, tunables: settings.tunables, timeout: settings.timeout });
  const width = names.length > 1 && names.every((name) => isolatedRun(name, settings)) ? AT_ONCE : 1;
  // Indices not started yet, in the order they start. Side by side, a run
  // that takes longest starts first (on two cores the tour took 1.35–1.54 s
  // so, 1.39–1.68 s with bins started in its place).
  const waiting = [...names.keys()];
  if (width > 1) waiting.sort((a, b) => Number(startsFirst(names[b])) - Number(startsFirst(names[a])));
  const started: Promise<ExperimentResult>[] = [];
  let running = 0;
  let stopped = false;
  const startRun = (index: number) => {
    waiting.splice(waiting.indexOf(index), 1);
    running++;
    const promise = start(names[index]);
    started[index] = promise;
    // Each that ends starts the next. Its handler runs before the await below
    // resumes (registered first), so the count is right when the next is due.
    const ended = () => {
      running--;
      startMore(width > 1 ? names.length - 1 : -1);
    };
    // Awaited in order below; a failure ahead of that is reported then, not as unhandled.
    promise.then(ended, ended);
  };
  // Starts waiting runs up to the `upTo`th while fewer than `width` run.
  const startMore = (upTo: number) => {
    while (!stopped && waiting.length > 0 && waiting[0] <= upTo && running < width) startRun(waiting[0]);
  };
  // Stories go on past an experiment that failed (its error in its place,
  // on stderr); JSON is all of them or an error.
  const goOn = !settings.json && names.length > 1;
  const failed: string[] = [];
  try {
    for (const [i, name] of names.entries()) {
      progress?.line.show(`${progress.label}: running ${name} (${i + 1} of ${names.length})`);
      startMore(width > 1 ? names.length - 1 : i);
      // Not started yet only when the runs started first fill every place.
      if (started[i] === undefined) startRun(i);
      let result: ExperimentResult;
      try {
        result = await started[i];
      } catch (error) {
        const e = error as Error & { code?: string };
        if (!goOn || e.code === 'ERR_UNKNOWN_EXPERIMENT' || e.code === 'ERR_INVALID_TUNABLE') throw error;
        progress?.line.clear();
        process.stderr.write(errorLine(error, name));
        failed.push(name);
        continue;
      }
      results.push(result);
      progress?.line.clear();
      if (!settings.json) write(`${await story(result)}\n`);
    }
  } catch (error) {
    // A child started ahead would keep this process waiting for a result nobody reads.
    stopped = true;
    stopRuns();
    throw error;
  } finally {
    progress?.line.clear();
  }
  if (settings.json) write(toJSON(results.length === 1 ? results[0] : results));
  if (failed.length > 0) {
    throw new HeapscopeError('ERR_EXPERIMENT_FAILED', `${failed.length} of ${names.length} experiments did not give a result (${failed.join(', ')}): their errors are above`);
  }
}

/** The experiment named `name`, or undefined for a name run() refuses (ERR_UNKNOWN_EXPERIMENT). */
function registered(name: string): RegisteredExperiment | undefined {
  try {
    return experiment(name as ExperimentName);
  } catch {
    return undefined;
  }
}

/** Whether `name` is a run to start before the others; an unknown name is not. */
function startsFirst(name: string): boolean {
  return registered(name)?.startFirst === true;
}

/** Whether run() will run `name` in a child; an unknown name is not. */
function isolatedRun(name: string, settings: RunSettings): boolean {
  if (settings.isolated !== undefined) return settings.isolated;
  if (Object.keys(settings.tunables).length > 0) return true;
  return registered(name)?.isolatedByDefault ?? false;
}

/** list, run and tour. */
export const EXPERIMENT_COMMANDS: readonly Command[] = [
  {
    name: 'list',
    summary: 'the experiments and the question each answers',
    flags: [],
    examples: ['heapscope list'],
    run() {
      for (const e of experiments()) write(`${e.name.padEnd(16)} ${e.question}`);
    },
  },
  {
    name: 'run',
    summary: 'run experiments and tell what each measured',
    args: {
      usage: '<name...>',
      min: 1,
      max: Infinity,
      help: 'experiments, by the names heapscope list shows',
      missing: 'run needs at least one experiment name; see heapscope list',
    },
    flags: RUN_FLAGS,
    exclusive: RUN_EXCLUSIVE,
    examples: ['heapscope run chunk-sizes free', 'heapscope run tcache --tunable glibc.malloc.tcache_count=3 --json'],
    async run(input) {
      for (const name of input.args) experiment(name as ExperimentName);
      await runMany(input.args, runSettings(input));
    },
  },
  {
    name: 'tour',
    summary: 'every experiment, question by question',
    flags: RUN_FLAGS,
    exclusive: RUN_EXCLUSIVE,
    examples: ['heapscope tour', 'heapscope tour --json > tour.json'],
    async run(input) {
      const settings = runSettings(input);
      if (!settings.json) write('heapscope tour: every answer below was measured just now, in this machine\'s glibc.\n');
      await runMany(experiments().map((e) => e.name), settings, { line: new ProgressLine(process.stderr), label: 'heapscope tour' });
    },
  },
];

export const REPORT_COMMAND: Command = {
  name: 'report',
  summary: 'every experiment in one self-contained HTML page',
  flags: [{ name: 'out', value: 'file', required: true, help: 'where to write the page' }, TIMEOUT_FLAG],
  examples: ['heapscope report --out report.html'],
  async run(input) {
    const file = input.value('out')!;
    const line = new ProgressLine(process.stderr);
    const { writeReport } = await import('./report');
    try {
      await writeReport(file, {
        timeout: timeout(input),
        progress: (name, n, total) => line.show(`heapscope report: running ${name} (${n} of ${total})`),
      });
    } finally {
      line.clear();
    }
    write(`heapscope: wrote ${file}`);
  },
};
