// heapscope snapshot, diff and watch: the decoded heap saved to a file,
// two files compared, and a live summary one snapshot per tick.
import fs from 'node:fs';
import { countOf, JSON_FLAG, PID_FLAG, pidOf, write } from './cli-common';
import { Command, Input, UsageError } from './command-line';
import { HeapscopeError } from './errors';
import { diffHeapSnapshots, HeapSnapshot, heapSnapshot, readHeapSnapshot } from './heap-snapshot/index';
import { toJSON } from './json';
import { attach } from './remote/attach';
import { renderDiff } from './views/snapshot-diff';
import { inspectSnapshot } from './views/snapshot';
import { terminalOptions } from './views/terminal';
import { watchFrame, watchLine, watchRecord } from './views/watch';

/** Node's timers hold at most 2^31 − 1 ms. */
const MAX_INTERVAL = 2 ** 31 - 1;
const MAX_COUNT = 1e9;

/** --interval: `1s`, `250ms`, `0.5` (seconds); default 1 s. */
function interval(input: Input): number {
  const text = input.value('interval');
  if (text === undefined) return 1000;
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text);
  const ms = m === null ? Number.NaN : Number(m[1]) * (m[2] === 'ms' ? 1 : 1000);
  if (!(ms >= 1 && ms <= MAX_INTERVAL)) {
    throw new UsageError(`--interval takes a time from 1ms to ${Math.floor(MAX_INTERVAL / 1000)}s (e.g. 1s, 250ms, 0.5), got ${JSON.stringify(text)}`, input.command);
  }
  return ms;
}

function readFile(file: string): HeapSnapshot {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new HeapscopeError('ERR_READ_FAILED', `cannot read ${file}: ${e.message}`, { errno: e.errno === undefined ? undefined : Math.abs(e.errno), syscall: e.syscall });
  }
  try {
    return readHeapSnapshot(text);
  } catch (error) {
    if (error instanceof HeapscopeError) error.message = `${file}: ${error.message}`;
    throw error;
  }
}

/** The snapshot of the process --pid names, or of this one, taken now. */
function taker(input: Input): () => HeapSnapshot {
  const pid = pidOf(input);
  const target = pid === undefined ? undefined : attach(pid);
  return target === undefined ? heapSnapshot : () => target.heapSnapshot();
}

/** Ticks until --count or SIGINT; each tick's snapshot drawn in place on a terminal, one line each when piped, one JSON line each with --json. */
async function watch(input: Input): Promise<void> {
  const every = interval(input);
  const ticks = countOf(input, 'count', 'ticks', MAX_COUNT);
  const take = taker(input);
  const json = input.has('json');
  const tty = !json && process.stdout.isTTY === true;
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.on('SIGINT', stop);
  try {
    let first: HeapSnapshot | undefined;
    let drawn = 0;
    for (let tick = 1; !stopped; tick++) {
      const now = take();
      first ??= now;
      if (tty) {
        const frame = watchFrame(now, first, tick, terminalOptions(process.stdout));
        // Back to the first line of the last frame, and clear from there down.
        process.stdout.write(`${drawn === 0 ? '' : `\x1b[${drawn}F\x1b[J`}${frame}\n`);
        drawn = frame.split('\n').length;
      } else write(json ? toJSON(watchRecord(now, first, tick), 0) : watchLine(now, first));
      if (ticks !== undefined && tick >= ticks) break;
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, every);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', stop);
  }
}

export const SNAPSHOT_COMMANDS: readonly Command[] = [
  {
    name: 'snapshot',
    summary: 'the decoded heap now (per arena and size class, top, mmapped chunks, RSS by kind) as a JSON file for diff',
    flags: [
      { name: 'out', value: 'file', help: 'write it there and print a summary (default: print the JSON)' },
      PID_FLAG,
    ],
    examples: ['heapscope snapshot --out before.json', 'heapscope snapshot --pid 1234 --out a.json'],
    run(input) {
      const file = input.value('out');
      const s = taker(input)();
      if (file === undefined) return write(toJSON(s));
      fs.writeFileSync(file, `${toJSON(s)}\n`);
      write(`heapscope: wrote ${file}: ${inspectSnapshot(s, 0)}`);
    },
  },
  {
    name: 'diff',
    summary: 'what changed between two snapshot files: per arena and size class, top, mmapped chunks, RSS by kind',
    args: { usage: '<before.json> <after.json>', min: 2, max: 2, help: 'two files heapscope snapshot wrote', missing: 'diff needs two snapshot files: heapscope diff a.json b.json' },
    flags: [JSON_FLAG, { name: 'html', help: 'print an HTML fragment' }],
    exclusive: [['json', 'html']],
    examples: ['heapscope diff before.json after.json', 'heapscope diff a.json b.json --html > diff.html'],
    run(input) {
      const d = diffHeapSnapshots(readFile(input.args[0]), readFile(input.args[1]));
      write(input.has('json') ? toJSON(d) : input.has('html') ? d.toHTML() : renderDiff(d, terminalOptions(process.stdout)));
    },
  },
  {
    name: 'watch',
    summary: 'a live summary, one snapshot per tick: arenas, in use, free, top, mmapped, RSS, each with its trend',
    flags: [
      { name: 'interval', value: 'time', help: 'time between ticks: 1s (the default), 250ms, 0.5' },
      { name: 'count', value: 'n', help: 'stop after this many ticks (default: until Ctrl-C)' },
      { name: 'json', help: 'print each tick as one line of JSON (newline-delimited), the same figures with their changes as numbers' },
      PID_FLAG,
    ],
    examples: ['heapscope watch', 'heapscope watch --pid 1234 --interval 5s', 'heapscope watch --pid 1234 --count 10 > heap.log', 'heapscope watch --pid 1234 --json | jq .rss'],
    run: watch,
  },
];
