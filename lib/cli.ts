#!/usr/bin/env -S node --single-threaded --v8-pool-size=0
// The `heapscope` command: one entry per command in COMMANDS. Its node runs
// without V8's helper threads (the flags above), which malloc and free in
// main_arena all the time: a copy of the allocator taken while they run is
// torn about one time in three, and retaken.
import fs from 'node:fs';
import path from 'node:path';
import { ATTEMPTS_FLAG, attemptsOf, countOf, errorLine, JSON_FLAG, PID_FLAG, pidOf, seconds, viewChoice, ViewName, VIEWS, write } from './cli-common';
import { EXPERIMENT_COMMANDS, REPORT_COMMAND } from './cli-run';
import { Command, commandHelp, globalHelp, Input, parseCommand, usageLine, UsageError } from './command-line';
import { MAX_VIS_COUNT, VIS_COUNT, VisOptions } from './allocator/vis';

// The commands' work that needs the allocator's decoders and the views,
// loaded when one of those commands runs (see cli-views.ts).
const views = () => import('./cli-views');
const snapshots = () => import('./cli-snapshot');

const ARENA_FLAG = { name: 'arena', choices: ['main', 'all'], help: 'main_arena\'s bins (the default), or every arena\'s' };
const RSS_FLAG = { name: 'rss', help: 'add resident, proportional and anonymous bytes from smaps' };

/** arenas, params, bins and maps: this process, or the one --pid names (`extra` has --attempts for all but maps). */
function viewCommand(name: ViewName, summary: string, extra: Command['flags'], examples: string[]): Command {
  return {
    name,
    summary,
    flags: [...extra, JSON_FLAG, PID_FLAG],
    examples,
    async run(input) {
      const pid = pidOf(input);
      const work = await views();
      work.showView(name, viewChoice(input), work.target(pid), `heapscope bins${pid === undefined ? '' : ` --pid ${pid}`} --arena all`);
    },
  };
}

/** vis's --count: how many chunks. */
function visCount(input: Input): VisOptions {
  const count = countOf(input, 'count', 'chunks', MAX_VIS_COUNT);
  return count === undefined ? {} : { count };
}

/** vis's ADDRESS: hexadecimal, as every address heapscope prints. */
function visAddress(input: Input): bigint | undefined {
  const text = input.args[0];
  if (text === undefined) return undefined;
  if (!/^0x[0-9a-f]{1,16}$/i.test(text)) throw new UsageError(`the address is hexadecimal, 0x and at most 16 digits, got ${JSON.stringify(text)}`, input.command);
  return BigInt(text);
}

const visCommand: Command = {
  name: 'vis',
  summary: 'chunks as raw 16-byte lines, each with its size, flags, links and bin',
  args: { usage: '[address]', min: 0, max: 1, help: 'a chunk, or an address inside one (hex, 0x…); default: the first chunk of main_arena\'s [heap]' },
  flags: [
    { name: 'count', value: 'n', help: `how many chunks from there on, within its heap (default ${VIS_COUNT}, at most ${MAX_VIS_COUNT})` },
    JSON_FLAG,
    { name: 'svg', help: 'print the lines as an SVG document' },
    { name: 'html', help: 'print an HTML fragment: a table of the lines, each chunk\'s summary beside it' },
    PID_FLAG,
    ATTEMPTS_FLAG,
  ],
  exclusive: [['json', 'svg', 'html']],
  examples: ['heapscope vis --count 6', 'heapscope vis 0x55d0c0a8e2a0 --count 3 --json', 'heapscope vis --pid 1234 --html > chunks.html'],
  async run(input) {
    const address = visAddress(input);
    const pid = pidOf(input);
    const choice = viewChoice(input, { ...(address === undefined ? {} : { address }), ...visCount(input) });
    const work = await views();
    work.showView('vis', choice, work.target(pid));
  },
};

/** snapshot, diff and watch. */
const SNAPSHOT_COMMANDS: readonly Command[] = [
  {
    name: 'snapshot',
    summary: 'the decoded heap now (per arena and size class, top, mmapped chunks, RSS by kind) as a JSON file for diff',
    flags: [
      { name: 'out', value: 'file', help: 'write it there and print a summary (default: print the JSON)' },
      PID_FLAG,
      ATTEMPTS_FLAG,
    ],
    examples: ['heapscope snapshot --out before.json', 'heapscope snapshot --pid 1234 --out a.json'],
    run: async (input) => (await snapshots()).snapshotCommand(input),
  },
  {
    name: 'diff',
    summary: 'what changed between two snapshot files: per arena and size class, top, mmapped chunks, RSS by kind',
    args: { usage: '<before.json> <after.json>', min: 2, max: 2, help: 'two files heapscope snapshot wrote', missing: 'diff needs two snapshot files: heapscope diff a.json b.json' },
    flags: [JSON_FLAG, { name: 'html', help: 'print an HTML fragment' }],
    exclusive: [['json', 'html']],
    examples: ['heapscope diff before.json after.json', 'heapscope diff a.json b.json --html > diff.html'],
    run: async (input) => (await snapshots()).diffCommand(input),
  },
  {
    name: 'watch',
    summary: 'a live summary, one snapshot per tick: arenas, in use, free, top, mmapped, RSS, each with its trend',
    flags: [
      { name: 'interval', value: 'time', help: 'time between ticks: 1s (the default), 250ms, 0.5' },
      { name: 'count', value: 'n', help: 'stop after this many ticks (default: until Ctrl-C)' },
      { name: 'json', help: 'print each tick as one line of JSON (newline-delimited), the same figures with their changes as numbers' },
      PID_FLAG,
      { ...ATTEMPTS_FLAG, help: `at each tick, ${ATTEMPTS_FLAG.help}` },
    ],
    examples: ['heapscope watch', 'heapscope watch --pid 1234 --interval 5s', 'heapscope watch --pid 1234 --count 10 > heap.log', 'heapscope watch --pid 1234 --json | jq .rss'],
    run: async (input) => (await snapshots()).watch(input),
  },
];

export const COMMANDS: readonly Command[] = [
  ...EXPERIMENT_COMMANDS,
  viewCommand('maps', 'this process\'s memory map (or another\'s), classified', [RSS_FLAG], ['heapscope maps --rss', 'heapscope maps --pid 1234']),
  REPORT_COMMAND,
  {
    name: 'walk',
    summary: 'every chunk of every arena and where it is, drawn as a strip',
    flags: [
      { name: 'arena', choices: ['main', 'all'], help: 'every arena\'s regions (the default), or main_arena\'s only' },
      JSON_FLAG,
      { name: 'svg', help: 'print the strip as an SVG document' },
      { name: 'html', help: 'print an HTML fragment: the strip and the totals' },
      PID_FLAG,
      ATTEMPTS_FLAG,
    ],
    exclusive: [['json', 'svg', 'html']],
    examples: ['heapscope walk', 'heapscope walk --arena main --svg > heap.svg', 'heapscope walk --pid 1234 --json'],
    async run(input) {
      const pid = pidOf(input);
      const work = await views();
      work.showView('walk', viewChoice(input), work.target(pid));
    },
  },
  viewCommand('arenas', 'every arena: its memory, top chunk and counters', [ATTEMPTS_FLAG], ['heapscope arenas', 'heapscope arenas --pid 1234 --json']),
  viewCommand('params', 'mp_ field by field, and global_max_fast', [ATTEMPTS_FLAG],
    ['heapscope params', 'GLIBC_TUNABLES=glibc.malloc.top_pad=65536 heapscope params --json', 'heapscope params --pid 1234']),
  viewCommand('bins', 'the chunks in main_arena\'s (or every arena\'s) bins', [ARENA_FLAG, ATTEMPTS_FLAG],
    ['heapscope bins', 'heapscope bins --arena all --json', 'heapscope bins --pid 1234 --arena all']),
  visCommand,
  {
    name: 'doctor',
    summary: 'where the memory is (by region, arena, bin), what malloc_trim(0) would give back, and advice',
    flags: [
      JSON_FLAG,
      PID_FLAG,
      { name: 'trim', help: 'then call malloc_trim(0) here and measure the RSS drop beside the prediction (not with --pid)' },
      ATTEMPTS_FLAG,
    ],
    exclusive: [['pid', 'trim']],
    examples: ['heapscope doctor', 'heapscope doctor --pid 1234', 'heapscope doctor --pid 1234 --json'],
    async run(input) {
      const pid = pidOf(input);
      (await views()).showDoctor(pid, input.has('trim'), input.has('json'), attemptsOf(input));
    },
  },
  ...SNAPSHOT_COMMANDS,
  {
    name: 'exec',
    summary: 'start a program, show one view of its allocator once it is ready, stop it',
    args: {
      usage: '-- <program> [args...]',
      min: 1,
      max: Infinity,
      help: 'the program to start as a child, and its arguments',
      missing: 'exec needs a program to start: heapscope exec [options] -- <program> [args...]',
    },
    flags: [
      { name: 'command', choices: VIEWS, help: 'the view to show (default arenas), as the command of that name shows it' },
      { name: 'ready', value: 'text', help: 'read it once a line of its stdout contains this text (default: its first line)' },
      { name: 'after', value: 'seconds', help: 'read it this long after it started, whatever it prints' },
      { name: 'keep', help: 'let it run on after the view, and wait until it ends (default: SIGTERM)' },
      { ...ARENA_FLAG, help: 'with --command bins: main_arena\'s bins (the default), or every arena\'s; with walk: main_arena\'s regions, or every arena\'s (the default)' },
      { ...RSS_FLAG, help: 'with --command maps: add resident, proportional and anonymous bytes' },
      { name: 'count', value: 'n', help: `with --command vis: how many chunks from the first of main_arena's [heap] (default ${VIS_COUNT}, at most ${MAX_VIS_COUNT})` },
      JSON_FLAG,
      { name: 'svg', help: 'with --command walk or vis: print it as an SVG document' },
      { name: 'html', help: 'with --command walk or vis: print an HTML fragment' },
      { ...ATTEMPTS_FLAG, help: 'with every --command but maps: copies of the allocator to take for one that stood still (default 10, at most 100)' },
    ],
    exclusive: [['ready', 'after'], ['json', 'svg', 'html']],
    examples: [
      'heapscope exec -- python3 server.py',
      'heapscope exec --command bins --arena all --ready listening --json -- ./server --port 8080',
      'heapscope exec --command walk --html --after 30 -- node app.js > heap.html',
    ],
    async run(input) {
      const view = (input.value('command') ?? 'arenas') as ViewName;
      const goesWith = (flag: string, views: readonly ViewName[]) => {
        if (input.has(flag) && !views.includes(view)) throw new UsageError(`--${flag} goes with --command ${views.join(' or ')}`, input.command);
      };
      goesWith('arena', ['bins', 'walk']);
      goesWith('rss', ['maps']);
      goesWith('count', ['vis']);
      goesWith('attempts', VIEWS.filter((v) => v !== 'maps'));
      for (const flag of ['svg', 'html']) goesWith(flag, ['walk', 'vis']);
      const choice = viewChoice(input, visCount(input));
      const after = seconds(input, 'after');
      // Node's timers hold at most 2^31 - 1 ms; a longer one would fire at once.
      if (after !== undefined && after > 2 ** 31 - 1) throw new UsageError(`--after takes at most ${Math.floor((2 ** 31 - 1) / 1000)} seconds (24 days), got ${input.value('after')}`, input.command);
      await (await views()).execView(view, choice, input.args, after === undefined ? { line: input.value('ready') ?? '' } : { afterMs: after }, input.has('keep'));
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
    process.stderr.write(errorLine(error));
    return 1;
  }
}

if (require.main === module) {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      // The reader went away (`heapscope tour | head`): stop quietly, as
      // every Unix tool does. A run's or exec's child is killed on exit.
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  }
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
