// The work of heapscope snapshot, diff and watch: the decoded heap saved to
// a file, two files compared, and a live summary one snapshot per tick.
// Loaded by cli.ts when one of them runs (as cli-views.ts is).
import './present';
import fs from 'node:fs';
import { attemptsOf, countOf, pidOf, write } from './cli-common';
import { Input, UsageError } from './command-line';
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

/** The snapshot of the process --pid names, or of this one, taken now (up to --attempts copies). */
function taker(input: Input): () => HeapSnapshot {
  const pid = pidOf(input);
  const options = { attempts: attemptsOf(input) };
  const target = pid === undefined ? undefined : attach(pid);
  return target === undefined ? () => heapSnapshot(options) : () => target.heapSnapshot(options);
}

/** Ticks until --count or SIGINT; each tick's snapshot drawn in place on a terminal, one line each when piped, one JSON line each with --json. */
export async function watch(input: Input): Promise<void> {
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

/** snapshot: the JSON of a snapshot taken now, or written to --out with a summary printed. */
export function snapshotCommand(input: Input): void {
  const file = input.value('out');
  const s = taker(input)();
  if (file === undefined) return write(toJSON(s));
  fs.writeFileSync(file, `${toJSON(s)}\n`);
  write(`heapscope: wrote ${file}: ${inspectSnapshot(s, 0)}`);
}

/** diff: what changed between the two snapshot files named. */
export function diffCommand(input: Input): void {
  const d = diffHeapSnapshots(readFile(input.args[0]), readFile(input.args[1]));
  write(input.has('json') ? toJSON(d) : input.has('html') ? d.toHTML() : renderDiff(d, terminalOptions(process.stdout)));
}
