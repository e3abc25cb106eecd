// Running experiments in this process or in a fresh child process.
import { spawn } from 'node:child_process';
import path from 'node:path';
import v8 from 'node:v8';
import { HeapscopeError, typeError } from '../errors';
import { describe, readOptions } from '../validate';
import { experiment, runHere } from './here';
import { ExperimentResultView } from './result';
import { checkTunables, Tunables, tunablesEnv } from './tunables';
import { ExperimentResult, ResultData } from './types';

export { environment, experiment, experiments } from './here';

export interface RunOptions {
  /** Run in a fresh `node` child process. Defaults to the experiment's own choice. */
  isolated?: boolean;
  /** glibc tunables for the child, e.g. `{ 'glibc.malloc.tcache_count': 0 }`; implies isolated. */
  tunables?: Tunables;
}

/**
 * Runs one experiment and returns its measured rows, findings and
 * surprises. Tunables always mean a child process: they can only be set
 * before a process starts.
 */
export async function run(name: string, options: RunOptions = {}): Promise<ExperimentResult> {
  const read = readOptions(options, 'options', ['isolated', 'tunables']);
  if (read.isolated !== undefined && typeof read.isolated !== 'boolean') {
    throw typeError(`options.isolated must be a boolean, got ${describe(read.isolated)}`);
  }
  const tunables = checkTunables(read.tunables as Tunables | undefined);
  const hasTunables = Object.keys(tunables).length > 0;
  if (read.isolated === false && hasTunables) {
    throw new HeapscopeError('ERR_INVALID_TUNABLE', 'tunables need a fresh process: they cannot be combined with isolated: false');
  }
  const chosen = experiment(name);
  const isolated = read.isolated ?? (hasTunables || chosen.isolatedByDefault);
  const data = await (isolated ? runIsolated(chosen.name, tunables) : runHere(chosen, false));
  return new ExperimentResultView(data);
}

// Both lib/experiments (sources under test) and dist/experiments sit two
// levels below the package root; the child always runs the compiled code.
// V8's helper threads (concurrent GC, compilation) free memory the main
// thread allocated; with tcache full or off those chunks go straight into
// main_arena's bins in the middle of a plan. The child runs without them.
const CHILD_FLAGS = ['--single-threaded'];

const CHILD = path.resolve(__dirname, '..', '..', 'dist', 'experiments', 'child.js');

function runIsolated(name: string, tunables: Record<string, string>): Promise<ResultData> {
  const env: NodeJS.ProcessEnv = { ...process.env, GLIBC_TUNABLES: tunablesEnv(tunables) };
  if (env.GLIBC_TUNABLES === '') delete env.GLIBC_TUNABLES;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CHILD_FLAGS, CHILD, name], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const failed = (why: string) =>
        reject(new HeapscopeError('ERR_EXPERIMENT_FAILED', `experiment ${name} failed in its child process: ${why}`));
      if (signal !== null) return failed(`killed by ${signal}. ${Buffer.concat(err).toString().trim()}`);
      let message: { result?: ResultData; error?: { code: string; message: string } };
      try {
        message = v8.deserialize(Buffer.concat(out));
      } catch {
        return failed(`exit code ${code}, no result. ${Buffer.concat(err).toString().trim()}`);
      }
      if (message.error !== undefined) return failed(`${message.error.code}: ${message.error.message}`);
      resolve(message.result!);
    });
  });
}
