// Running experiments in this process or in a fresh child process.
import { spawn } from 'node:child_process';
import path from 'node:path';
import v8 from 'node:v8';
import { HeapscopeError } from '../errors';
import { glibcVersion, mallinfo2, pageSize } from '../stats';
import { EXPERIMENTS } from './registry';
import { checkTunables, parseTunablesEnv, Tunables, tunablesEnv } from './tunables';
import { ExperimentResultView } from './result';
import { Environment, Experiment, ExperimentResult, ResultData } from './types';

export interface RunOptions {
  /** Run in a fresh `node` child process. Defaults to the experiment's own choice. */
  isolated?: boolean;
  /** glibc tunables for the child, e.g. `{ 'glibc.malloc.tcache_count': 0 }`; implies isolated. */
  tunables?: Tunables;
}

/** The experiments, in tour order. */
export function experiments(): readonly Experiment[] {
  return EXPERIMENTS;
}

export function experiment(name: string): Experiment {
  const found = EXPERIMENTS.find((e) => e.name === name);
  if (found === undefined) {
    throw new HeapscopeError(
      'ERR_UNKNOWN_EXPERIMENT',
      `no experiment named ${JSON.stringify(name)}; try one of: ${EXPERIMENTS.map((e) => e.name).join(', ')}`,
    );
  }
  return found;
}

/**
 * Runs one experiment and returns its measured rows, findings and
 * surprises. Tunables always mean a child process: they can only be set
 * before a process starts.
 */
export async function run(name: string, options: RunOptions = {}): Promise<ExperimentResult> {
  const chosen = experiment(name);
  const tunables = checkTunables(options.tunables);
  const hasTunables = Object.keys(tunables).length > 0;
  if (options.isolated === false && hasTunables) {
    throw new HeapscopeError('ERR_INVALID_TUNABLE', 'tunables need a fresh process: they cannot be combined with isolated: false');
  }
  const isolated = options.isolated ?? (hasTunables || chosen.isolatedByDefault);
  const data = await (isolated ? runIsolated(chosen.name, tunables) : runHere(chosen, false));
  return new ExperimentResultView(data);
}

export function environment(isolated: boolean): Environment {
  return {
    glibc: glibcVersion(),
    node: process.version,
    tunables: parseTunablesEnv(process.env.GLIBC_TUNABLES),
    isolated,
    pid: process.pid,
    pageSize: pageSize(),
    mallinfo: mallinfo2().source,
  };
}

/** @internal Runs in this process; the child entry point calls it with isolated = true. */
export async function runHere(chosen: Experiment, isolated: boolean): Promise<ResultData> {
  const output = await chosen.run({ isolated });
  return { name: chosen.name, question: chosen.question, environment: environment(isolated), ...output };
}

// Both lib/experiments (sources under test) and dist/experiments sit two
// levels below the package root; the child always runs the compiled code.
const CHILD = path.resolve(__dirname, '..', '..', 'dist', 'experiments', 'child.js');

function runIsolated(name: string, tunables: Record<string, string>): Promise<ResultData> {
  const env: NodeJS.ProcessEnv = { ...process.env, GLIBC_TUNABLES: tunablesEnv(tunables) };
  if (env.GLIBC_TUNABLES === '') delete env.GLIBC_TUNABLES;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, name], { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
