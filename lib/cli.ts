#!/usr/bin/env node
// The `heapscope` command: one entry per command in COMMANDS.
import './present';
import fs from 'node:fs';
import path from 'node:path';
import { Command, commandHelp, globalHelp, Input, parseCommand, usageLine, UsageError } from './command-line';
import type { ExperimentName } from './experiments/registry';
import { DEFAULT_TIMEOUT, experiment, experiments, run } from './experiments/run';
import { checkTunables } from './experiments/tunables';
import { ExperimentResult } from './experiments/types';
import { toJSON } from './json';
import { maps } from './maps';
import { ProgressLine } from './progress';
import { writeReport } from './report';
import { arenas, bins, mallocParams } from './allocator-state';
import { renderArenas, renderBins, renderParams } from './views/allocator';
import { renderMaps, renderResult, terminalOptions } from './views/terminal';
import { walkHeap } from './walk/index';
import { renderWalk } from './views/walk-strip';

function write(text: string): void {
  process.stdout.write(`${text}\n`);
}

function story(result: ExperimentResult): string {
  return renderResult(result, terminalOptions(process.stdout));
}

const JSON_FLAG = { name: 'json', help: 'print one JSON document (bigints as "0x…" strings)' };
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
  const text = input.value('timeout');
  if (text === undefined) return undefined;
  const seconds = /^\s*[\d.]+(e[-+]?\d+)?\s*$/i.test(text) ? Number(text) : Number.NaN;
  if (!(seconds > 0) || !Number.isFinite(seconds)) {
    throw new UsageError(`--timeout takes a positive number of seconds, got ${JSON.stringify(text)}`, input.command);
  }
  return seconds * 1000;
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

async function runMany(names: readonly string[], settings: RunSettings, progress?: { line: ProgressLine; label: string }): Promise<void> {
  const results: ExperimentResult[] = [];
  try {
    for (const [i, name] of names.entries()) {
      progress?.line.show(`${progress.label}: running ${name} (${i + 1} of ${names.length})`);
      // A name from the command line: run() refuses an unknown one with ERR_UNKNOWN_EXPERIMENT.
      const result = await run(name as ExperimentName, { isolated: settings.isolated, tunables: settings.tunables, timeout: settings.timeout });
      results.push(result);
      progress?.line.clear();
      if (!settings.json) write(`${story(result)}\n`);
    }
  } finally {
    progress?.line.clear();
  }
  if (settings.json) write(toJSON(results.length === 1 ? results[0] : results));
}

export const COMMANDS: readonly Command[] = [
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
  {
    name: 'maps',
    summary: 'this process\'s memory map, classified',
    flags: [JSON_FLAG, { name: 'rss', help: 'add resident, proportional and anonymous bytes from /proc/self/smaps' }],
    examples: ['heapscope maps --rss'],
    run(input) {
      const regions = maps({ rss: input.has('rss') });
      write(input.has('json') ? toJSON(regions) : renderMaps(regions, terminalOptions(process.stdout)));
    },
  },
  {
    name: 'report',
    summary: 'every experiment in one self-contained HTML page',
    flags: [{ name: 'out', value: 'file', required: true, help: 'where to write the page' }, TIMEOUT_FLAG],
    examples: ['heapscope report --out report.html'],
    async run(input) {
      const file = input.value('out')!;
      const line = new ProgressLine(process.stderr);
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
  },
  {
    name: 'walk',
    summary: 'every chunk of main_arena\'s heap, drawn as a strip',
    flags: [
      { name: 'arena', choices: ['main', 'all'], help: 'main_arena\'s heap (the default), or every arena\'s heaps' },
      JSON_FLAG,
      { name: 'svg', help: 'print the strip as an SVG document' },
      { name: 'html', help: 'print an HTML fragment: the strip and the totals' },
    ],
    exclusive: [['json', 'svg', 'html']],
    examples: ['heapscope walk', 'heapscope walk --arena all --svg > heap.svg'],
    run(input) {
      const walk = walkHeap({ arena: (input.value('arena') ?? 'main') as 'main' | 'all' });
      write(input.has('json') ? toJSON(walk) : input.has('svg') ? walk.toSVG() : input.has('html') ? walk.toHTML() : renderWalk(walk, terminalOptions(process.stdout)));
    },
  },
  {
    name: 'arenas',
    summary: 'every arena: its memory, top chunk and counters',
    flags: [JSON_FLAG],
    examples: ['heapscope arenas', 'heapscope arenas --json'],
    run(input) {
      const result = arenas();
      write(input.has('json') ? toJSON(result) : renderArenas(result, terminalOptions(process.stdout)));
    },
  },
  {
    name: 'params',
    summary: 'mp_ field by field, and global_max_fast',
    flags: [JSON_FLAG],
    examples: ['heapscope params', 'GLIBC_TUNABLES=glibc.malloc.top_pad=65536 heapscope params --json'],
    run(input) {
      const result = mallocParams();
      write(input.has('json') ? toJSON(result) : renderParams(result, terminalOptions(process.stdout)));
    },
  },
  {
    name: 'bins',
    summary: 'the chunks in main_arena\'s (or every arena\'s) bins',
    flags: [
      { name: 'arena', choices: ['main', 'all'], help: 'main_arena\'s bins (the default), or every arena\'s' },
      JSON_FLAG,
    ],
    examples: ['heapscope bins', 'heapscope bins --arena all --json'],
    run(input) {
      const result = bins();
      const all = input.value('arena') === 'all';
      const shown = all ? result : { ...result, arenas: result.arenas.filter((a) => a.kind === 'main') };
      if (input.has('json')) return write(toJSON(shown));
      const others = result.arenas.length - shown.arenas.length;
      write(renderBins(shown, terminalOptions(process.stdout)) +
        (others === 0 ? '' : `\n\n${others} thread arena${others === 1 ? '' : 's'} not shown: heapscope bins --arena all`));
    },
  },
  {
    name: 'help',
    summary: 'this text, or a command\'s options and an example',
    args: { usage: '[command]', min: 0, max: 1, help: 'the command to explain' },
    flags: [],
    examples: ['heapscope help run'],
    run(input) {
      write(input.args.length === 0 ? globalHelp(COMMANDS) : commandHelp(command(input.args[0], input.command)));
    },
  },
];

function command(name: string, from?: Command): Command {
  const found = COMMANDS.find((c) => c.name === name);
  if (found === undefined) throw new UsageError(`no command named ${JSON.stringify(name)}`, from);
  return found;
}

function version(): string {
  // dist/cli.js and lib/cli.ts both sit one level below package.json.
  return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
}

async function dispatch(argv: readonly string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === '--version' || first === '-V') {
    if (rest.length > 0) throw new UsageError(`${first} takes no arguments, got ${rest.map((a) => JSON.stringify(a)).join(' ')}`);
    return write(version());
  }
  if (first === '--help' || first === '-h') return dispatch(['help', ...rest]);
  if (first.startsWith('-')) throw new UsageError(`the command comes first, got ${first}`);
  const chosen = command(first);
  const input = parseCommand(chosen, rest, COMMANDS);
  if (input === 'help') return write(commandHelp(chosen));
  await input.command.run(input);
}

/** Runs the command line `argv` (without node and the script) and returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0) {
    process.stderr.write(`${globalHelp(COMMANDS)}\n`);
    return 2;
  }
  try {
    await dispatch(argv);
    return 0;
  } catch (error) {
    const e = error as Error & { code?: string };
    // Names and tunables are checked before anything runs: bad ones are bad usage.
    if (error instanceof UsageError || e.code === 'ERR_UNKNOWN_EXPERIMENT' || e.code === 'ERR_INVALID_TUNABLE') {
      const chosen = error instanceof UsageError ? error.command : COMMANDS.find((c) => c.name === argv[0]);
      const usage = chosen === undefined
        ? globalHelp(COMMANDS)
        : `${usageLine(chosen)}\n(heapscope ${chosen.name} --help lists its options)`;
      process.stderr.write(`heapscope: ${e.message}\n${usage}\n`);
      return 2;
    }
    // The code first, as every error has one (Node's own messages already start with theirs).
    const code = typeof e.code === 'string' && !e.message.startsWith(e.code) ? `${e.code}: ` : '';
    process.stderr.write(`heapscope: ${code}${e.message}\n`);
    return 1;
  }
}

if (require.main === module) {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      // The reader went away (`heapscope tour | head`): stop quietly, as
      // every Unix tool does. A run's child is killed on exit.
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  }
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
