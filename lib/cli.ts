#!/usr/bin/env node
// The `heapscope` command.
import { parseArgs } from 'node:util';
import { HeapscopeError } from './errors';
import { experiments, run } from './experiments/run';
import { ExperimentResult } from './experiments/types';
import { toJSON } from './json';
import { maps } from './maps';
import { writeReport } from './report';
import { renderMaps, renderResult, terminalOptions } from './views/terminal';
import { walkHeap } from './walk/index';
import { renderWalk } from './walk/strip';

const USAGE = `usage: heapscope <command> [options]

commands:
  list                         the experiments and the question each answers
  run <name...> [options]      run experiments
      --json                   print one JSON document (bigints as "0x…" strings)
      --isolated               run in a fresh child process
      --in-process             run in this process
      --tunable name=value     a glibc malloc tunable for the child (repeatable)
  tour [--json]                every experiment, question by question
  maps [--json] [--rss]        this process's memory map, classified
  report --out <file>          every experiment in one self-contained HTML page
  walk [--arena all] [--json]  every chunk of main_arena's heap (all arenas' heaps with --arena all)
       [--svg | --html]        the strip as an SVG document, or an HTML fragment with the summary
  help                         this text`;

class UsageError extends Error {}

function write(text: string): void {
  process.stdout.write(`${text}\n`);
}

function story(result: ExperimentResult): string {
  return renderResult(result, terminalOptions(process.stdout));
}

function parseTunables(values: string[] | undefined): Record<string, string> {
  // fromEntries makes every name an own property (`__proto__` too), which run() then checks.
  return Object.fromEntries((values ?? []).map((value) => {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UsageError(`--tunable takes name=value, got ${JSON.stringify(value)}`);
    return [value.slice(0, eq), value.slice(eq + 1)];
  }));
}

async function runMany(names: string[], options: { json: boolean; isolated?: boolean; tunables: Record<string, string> }): Promise<void> {
  const results: ExperimentResult[] = [];
  for (const name of names) {
    const result = await run(name, { isolated: options.isolated, tunables: options.tunables });
    results.push(result);
    if (!options.json) write(`${story(result)}\n`);
  }
  if (options.json) write(toJSON(results.length === 1 ? results[0] : results));
}

function showMaps(json: boolean, rss: boolean): void {
  const regions = maps({ rss });
  if (json) return write(toJSON(regions));
  write(renderMaps(regions, terminalOptions(process.stdout)));
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        isolated: { type: 'boolean' },
        'in-process': { type: 'boolean' },
        tunable: { type: 'string', multiple: true },
        rss: { type: 'boolean', default: false },
        out: { type: 'string' },
        arena: { type: 'string' },
        svg: { type: 'boolean', default: false },
        html: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`heapscope: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...names] = positionals;
  try {
    if (values.help || command === 'help' || command === undefined) {
      (command === undefined && !values.help ? process.stderr : process.stdout).write(`${USAGE}\n`);
      return command === undefined && !values.help ? 2 : 0;
    }
    if (values.isolated && values['in-process']) throw new UsageError('--isolated and --in-process exclude each other');
    const isolated = values.isolated ? true : values['in-process'] ? false : undefined;
    const tunables = parseTunables(values.tunable);
    switch (command) {
      case 'list':
        for (const e of experiments()) write(`${e.name.padEnd(16)} ${e.question}`);
        return 0;
      case 'run':
        if (names.length === 0) throw new UsageError('run needs at least one experiment name; see `heapscope list`');
        await runMany(names, { json: values.json!, isolated, tunables });
        return 0;
      case 'tour':
        if (!values.json) write('heapscope tour: every answer below was measured just now, in this machine\'s glibc.\n');
        await runMany(experiments().map((e) => e.name), { json: values.json!, isolated, tunables });
        return 0;
      case 'maps':
        showMaps(values.json!, values.rss!);
        return 0;
      case 'report':
        if (values.out === undefined || values.out === '') throw new UsageError('report needs --out <file>');
        await writeReport(values.out);
        write(`heapscope: wrote ${values.out}`);
        return 0;
      case 'walk': {
        const arena = values.arena ?? 'main';
        if (arena !== 'main' && arena !== 'all') throw new UsageError(`--arena takes main or all, got ${JSON.stringify(arena)}`);
        if ([values.json, values.svg, values.html].filter(Boolean).length > 1) throw new UsageError('--json, --svg and --html exclude each other');
        const walk = walkHeap({ arena });
        write(values.json ? toJSON(walk) : values.svg ? walk.toSVG() : values.html ? walk.toHTML() : renderWalk(walk, terminalOptions(process.stdout)));
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    const e = error as Error & { code?: string };
    if (error instanceof UsageError || e.code === 'ERR_UNKNOWN_EXPERIMENT' || e.code === 'ERR_INVALID_TUNABLE') {
      process.stderr.write(`heapscope: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`heapscope: ${error instanceof HeapscopeError ? `${e.code}: ` : ''}${e.message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
