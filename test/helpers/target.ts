// Processes for the --pid tests to look at: started with stdout on a pipe,
// read line by line as they print (their pid, their own mallinfo2(), a ready
// line), and put in the test file's list of children to kill when it is done.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { foreignEnv, nodeTargetEnv } from './foreign-env';
import { hereCcFlags, RELEASE_UNDER_TEST } from './glibcs';
import { SYNC_CHILD } from './sync-child';

/** Debian's python3: a real program nobody here wrote, for the tests that read another process. */
export const PYTHON = '/usr/bin/python3';

/**
 * Why a test that needs PYTHON skips, or undefined where it can run: it is
 * installed, and runs on this process's glibc (not so under
 * scripts/test-on-release.mjs, whose release it was not built for).
 */
export const NO_PYTHON = !fs.existsSync(PYTHON) ? `no ${PYTHON} (Debian's python3)`
  : RELEASE_UNDER_TEST !== undefined ? `${PYTHON} runs on this machine's glibc, not on ${RELEASE_UNDER_TEST.name}'s ${RELEASE_UNDER_TEST.glibc}, which this run tests` : undefined;

export interface Target {
  child: ChildProcess;
  /** The first `n` lines the target printed, once it has printed them; rejects if it exits or cannot start first. */
  next(n: number): Promise<string[]>;
}

export interface TargetOptions {
  env?: NodeJS.ProcessEnv;
  /** The target's stderr: on the test's own (the default), or a pipe the test reads. */
  stderr?: 'inherit' | 'pipe';
  /** The test file's children, killed by the file when done. */
  into: ChildProcess[];
}

export function startTarget(command: string, args: readonly string[], options: TargetOptions): Target {
  const env = command === process.execPath ? nodeTargetEnv(options.env) : foreignEnv(options.env);
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', options.stderr ?? 'inherit'], env });
  options.into.push(child);
  let seen = '';
  const waiting: { n: number; resolve: (lines: string[]) => void }[] = [];
  const check = () => {
    const lines = seen.split('\n');
    for (const w of waiting.splice(0)) (lines.length > w.n ? w.resolve(lines.slice(0, w.n)) : waiting.push(w));
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    seen += chunk.toString();
    check();
  });
  const next = (n: number) => new Promise<string[]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${command} exited (${code}) after printing ${JSON.stringify(seen)}`)));
    waiting.push({ n, resolve });
    check();
  });
  return { child, next };
}

/** A target and its first `count` lines. */
export async function startLines(command: string, args: readonly string[], count: number, options: TargetOptions): Promise<{ child: ChildProcess; lines: string[] }> {
  const target = startTarget(command, args, options);
  return { child: target.child, lines: await target.next(count) };
}

/**
 * Builds test/fixtures/NAME.c (with threads, and cc's `flags`; none, this process's glibc, builds with hereCcFlags) into `dir`
 * for each name: the programs by name (shared objects to preload, NAME.so,
 * with `shared`), or why there is no C compiler to build them with.
 */
export function buildFixtures(dir: string, names: readonly string[], { shared = false, flags = [] as readonly string[] } = {}): { programs: Record<string, string>; noCompiler?: string } {
  const programs: Record<string, string> = {};
  const given = flags.length > 0 ? flags : hereCcFlags({ shared });
  for (const name of names) {
    programs[name] = path.join(dir, shared ? `${name}.so` : name);
    const kind = shared ? ['-shared', '-fPIC'] : [];
    const cc = spawnSync('cc', ['-O1', '-pthread', ...kind, ...given, '-o', programs[name], path.join(__dirname, '..', 'fixtures', `${name}.c`)], { ...SYNC_CHILD, encoding: 'utf8', env: foreignEnv() });
    if (cc.error !== undefined) return { programs, noCompiler: `no C compiler (cc) to build test/fixtures/${name}.c` };
    if (cc.status !== 0) throw new Error(`cc failed:\n${cc.stderr}`);
  }
  return { programs };
}
