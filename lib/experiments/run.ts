// Running experiments in this process or in a fresh child process.
import { ChildProcess, spawn, StdioOptions } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import { HeapscopeError, rangeError, typeError } from '../errors';
import { zeroedBytes } from '../fresh-memory';
import { QUIET_NODE_FLAGS, quietEnv } from '../quiet-node';
import { describe, readOptions } from '../validate';
import { runHere } from './here';
import { ExperimentResultView } from './result';
import { REFUSE_BLOCKED, RESULT_FD } from './result-channel';
import { checkTunables, Tunables, tunablesEnv } from './tunables';
import { experiment, ExperimentName, ResultOf } from './registry';
import { ExperimentResult, ResultData } from './types';

export { environment } from './here';
export { experiment, experiments } from './registry';

export interface RunOptions {
  /** Run in a fresh `node` child process. Defaults to the experiment's own choice. */
  isolated?: boolean;
  /** glibc tunables for the child, e.g. `{ 'glibc.malloc.tcache_count': 0 }`; implies isolated. */
  tunables?: Tunables;
  /**
   * Milliseconds an isolated run may take before its child is killed and run()
   * throws `ERR_EXPERIMENT_TIMEOUT`; `Infinity` for no limit. Default 60000.
   * An in-process run cannot be interrupted and ignores it.
   */
  timeout?: number;
}

/** A run takes well under a second; a minute bounds pathological tunables (mmap_threshold=0). */
export const DEFAULT_TIMEOUT = 60_000;

/**
 * Runs one experiment and returns its measured rows, findings and
 * surprises. Tunables always mean a child process: they can only be set
 * before a process starts.
 */
export function run<N extends ExperimentName>(name: N, options?: RunOptions): Promise<ResultOf<N>>;
export async function run(name: ExperimentName, options: RunOptions = {}): Promise<ExperimentResult> {
  const read = readOptions(options, 'options', ['isolated', 'tunables', 'timeout']);
  if (read.isolated !== undefined && typeof read.isolated !== 'boolean') {
    throw typeError(`options.isolated must be a boolean, got ${describe(read.isolated)}`);
  }
  const tunables = checkTunables(read.tunables as Tunables | undefined);
  const hasTunables = Object.keys(tunables).length > 0;
  if (read.isolated === false && hasTunables) {
    throw new HeapscopeError('ERR_INVALID_TUNABLE', 'tunables need a fresh process: they cannot be combined with isolated: false');
  }
  const timeout = checkTimeout(read.timeout);
  const chosen = experiment(name);
  const isolated = read.isolated ?? (hasTunables || chosen.isolatedByDefault);
  const data = await (isolated ? runIsolated(chosen.name, tunables, timeout) : runHere(chosen, false));
  return new ExperimentResultView(data);
}

/**
 * Children an isolated run may start. A child whose program break cannot
 * grow (see break-room.ts; about one start in fifty here) refuses the run,
 * except the last, which runs anyway and whose experiment then meets the
 * blocked break itself.
 */
const CHILDREN = 3;

async function runIsolated(name: string, tunables: Record<string, string>, timeout: number): Promise<ResultData> {
  const refused: string[] = [];
  for (;;) {
    const answer = await runChild(name, tunables, timeout, refused.length + 1 < CHILDREN);
    if (answer.blocked === undefined) {
      const data = answer.result!;
      if (refused.length === 0) return data;
      const children = refused.map((why, i) => `child ${i + 1}: ${why}`).join('; ');
      return {
        ...data,
        environment: { ...data.environment, refusedChildren: refused },
        // A finding, not a surprise: it is about where the run could be made, and the run itself met no break that could not grow.
        findings: [
          ...data.findings,
          `This run's child was the ${ordinal(refused.length + 1)} started: in the ${refused.length === 1 ? 'first' : 'earlier ones'} the heap had no room to grow (${children}).`,
        ],
      };
    }
    refused.push(answer.blocked);
  }
}

function ordinal(n: number): string {
  return ['zeroth', 'first', 'second', 'third'][n] ?? `${n}th`;
}

// Both lib/experiments (sources under test) and dist/experiments sit two
// levels below the package root; the child always runs the compiled code.
const CHILD = path.resolve(__dirname, '..', '..', 'dist', 'experiments', 'child.js');

function checkTimeout(timeout: unknown): number {
  if (timeout === undefined) return DEFAULT_TIMEOUT;
  if (typeof timeout !== 'number') throw typeError(`timeout must be a number of milliseconds, got ${typeof timeout}`);
  if (!(timeout > 0)) throw rangeError(`timeout must be a positive number of milliseconds (Infinity for none), got ${timeout}`);
  return timeout;
}

// setTimeout fires at once for delays above 2^31-1 ms (24.8 days): treat
// those as no limit.
const MAX_DELAY = 2 ** 31 - 1;

// Children of runs in flight: a run's child never outlives the process that
// started it, whichever way that process ends (process.exit on a closed pipe).
const live = new Set<ChildProcess>();

/**
 * Kills the child of every run in flight (each such run rejects): on exit,
 * and for a command that gives up on a run it started ahead, which it does
 * not wait for.
 */
export function stopRuns(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** What a child sends back: a result, or why it refused to run (`mayRefuse` only). */
interface ChildAnswer {
  result?: ResultData;
  blocked?: string;
}

function runChild(name: string, tunables: Record<string, string>, timeout: number, mayRefuse: boolean): Promise<ChildAnswer> {
  const env: NodeJS.ProcessEnv = { ...quietEnv(), GLIBC_TUNABLES: tunablesEnv(tunables) };
  if (env.GLIBC_TUNABLES === '') delete env.GLIBC_TUNABLES;
  return new Promise((resolve, reject) => {
    // The result comes back on a pipe of its own: stdout and stderr belong to
    // whatever else runs in the child (a NODE_OPTIONS --require, a warning).
    const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
    stdio[RESULT_FD] = 'pipe';
    const args = [...QUIET_NODE_FLAGS, CHILD, name, ...(mayRefuse ? [REFUSE_BLOCKED] : [])];
    const child = spawn(process.execPath, args, { env, stdio });
    if (live.size === 0) process.on('exit', stopRuns);
    live.add(child);
    const result: Buffer[] = [];
    const output: Buffer[] = [];
    (child.stdio[RESULT_FD] as Readable).on('data', (chunk: Buffer) => result.push(chunk));
    child.stdout!.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk));
    const done = () => {
      clearTimeout(timer);
      live.delete(child);
      if (live.size === 0) process.off('exit', stopRuns);
    };
    const timer = timeout > MAX_DELAY ? undefined : setTimeout(() => {
      const timedOut = () => {
        done();
        for (const stream of child.stdio) stream?.destroy();
        reject(new HeapscopeError(
          'ERR_EXPERIMENT_TIMEOUT',
          `experiment ${name} did not finish within ${duration(timeout)}: its child process ${child.pid} was killed. ` +
            'A longer timeout (run\'s timeout option, --timeout on the command line) lets it finish.',
        ));
      };
      child.kill('SIGKILL');
      // Settled once the child is gone ('exit': reaped), not when its pipes
      // close, which something it started could hold open.
      if (child.exitCode !== null || child.signalCode !== null) timedOut();
      else child.once('exit', timedOut);
    }, timeout);
    child.on('error', (error) => {
      done();
      reject(error);
    });
    child.on('close', (code, signal) => {
      if (!live.has(child)) return; // timed out or failed to start: already settled
      done();
      const failed = (why: string) =>
        reject(new HeapscopeError('ERR_EXPERIMENT_FAILED', `experiment ${name} failed in its child process: ${why}`));
      const said = Buffer.concat(output).toString().trim();
      if (signal !== null) return failed(`killed by ${signal}. ${said}`);
      let message: ChildAnswer & { error?: { code: string; message: string } };
      try {
        message = deserialized(result);
      } catch {
        return failed(`exit code ${code}, no result. ${said}`);
      }
      if (message.error !== undefined) return failed(`${message.error.code}: ${message.error.message}`);
      resolve(message);
    });
  });
}

/**
 * The child's answer from the pieces its pipe delivered, joined in memory
 * the addon maps from 128 KiB on (zeroedBytes). Buffer.concat took the
 * whole from malloc, which glibc mapped on its own and, once collected,
 * raised this process's mmap threshold to (a `free` run's answer, 266 KB).
 * Left to Node to give back, not released once read: v8.deserialize makes
 * a typed array of the answer a view of these bytes.
 */
function deserialized(pieces: readonly Buffer[]): ChildAnswer & { error?: { code: string; message: string } } {
  const bytes = zeroedBytes(pieces.reduce((n, piece) => n + piece.length, 0));
  let at = 0;
  for (const piece of pieces) {
    bytes.set(piece, at);
    at += piece.length;
  }
  return v8.deserialize(bytes);
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${ms / 1000} s`;
}
