// A program started as this process's child, for `heapscope exec`: with
// Yama's ptrace_scope 1 a process may read only its own descendants. The
// child is read once it is ready (a line on its stdout, or a delay), then
// stopped; it never outlives this process, however this process ends
// (short of SIGKILL, which nothing can catch).
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { HeapscopeError } from '../errors';
import { isExiting } from './proc';

/** When the child counts as ready: at its first stdout line containing `line` ('' for any), or `afterMs` after it started. */
export type Readiness = { line: string } | { afterMs: number };

export interface StartedChild {
  readonly pid: number;
  /** Sends SIGTERM (SIGKILL after `graceMs` if it is still there) and resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves once it has exited by itself and what it printed before is forwarded (a process it started may hold its stdout on). */
  ended(): Promise<void>;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * How long the pipe from a child that exited may stay open: what the child
 * wrote before it exited is read by then, and only a process it started
 * (a daemon, a background job) could hold it open longer.
 */
const DRAIN_MS = 500;

/** How the child ended, for messages: `status 3` or `signal SIGSEGV`. */
function ending(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `signal ${signal}` : `status ${code}`;
}

function lineWanted(text: string): string {
  return text === '' ? 'a line (heapscope exec reads it once it prints one; see --ready and --after)' : `a line containing ${JSON.stringify(text)}`;
}

/** isExiting, where /proc cannot tell (hidepid): then only the exit event will. */
function exiting(pid: number): boolean {
  try {
    return isExiting(pid);
  } catch {
    return true;
  }
}

/**
 * Starts `program` with `args`: stdin and stderr are this process's, stdout
 * is copied to `forward` as it comes (so that this process's stdout holds
 * only what it prints itself). Resolves when the child is ready; rejects with
 * ERR_EXEC_FAILED when it cannot be started or closes its stdout before the
 * line, ERR_PROCESS_EXITED when it exits before it is ready.
 */
export function startChild(program: string, args: readonly string[], ready: Readiness, forward: NodeJS.WritableStream): Promise<StartedChild> {
  const child = spawn(program, [...args], { stdio: ['inherit', 'pipe', 'inherit'] });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    exit = { code, signal };
    resolve();
  }));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  // Whatever ends this process (an uncaught error, process.exit, a signal) ends the child first.
  const kill = () => {
    child.kill('SIGKILL');
  };
  const onSignal = (signal: NodeJS.Signals) => {
    process.exitCode = 128 + constants.signals[signal];
    process.exit();
  };
  process.on('exit', kill);
  for (const s of SIGNALS) process.on(s, onSignal);
  const release = () => {
    process.off('exit', kill);
    for (const s of SIGNALS) process.off(s, onSignal);
  };
  void exited.then(release);

  const stopped = (): StartedChild => ({
    pid: child.pid!,
    async stop(graceMs = 5000) {
      if (exit === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      // Its output after this point is of no interest, and a grandchild holding the pipe must not keep this process alive.
      child.stdout!.destroy();
    },
    async ended() {
      await exited;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => { timer = setTimeout(resolve, DRAIN_MS); })]);
      clearTimeout(timer);
      child.stdout!.destroy();
    },
  });

  return new Promise((resolve, reject) => {
    const name = JSON.stringify(program);
    const decoder = new StringDecoder('utf8');
    let seen = '';
    let done = false;
    const settle = (error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error === undefined) return resolve(stopped());
      // Not ready, so never read: a child still running is stopped (and killed when this process exits).
      child.kill('SIGTERM');
      reject(error);
    };
    const timer = 'afterMs' in ready ? setTimeout(() => settle(), ready.afterMs) : undefined;
    child.once('error', (error: NodeJS.ErrnoException) => {
      // Not started: no exit will come to release the hooks.
      if (child.pid === undefined) release();
      const why = error.code === 'ENOENT' ? 'no such program (give a path, or a program on PATH)'
        : error.code === 'EACCES' ? 'not executable (or a directory on the way is not searchable)' : error.message;
      settle(new HeapscopeError('ERR_EXEC_FAILED', `cannot start ${name}: ${why} (${error.code})`, {
        errno: error.errno === undefined ? undefined : Math.abs(error.errno), syscall: 'spawn',
      }));
    });
    child.once('exit', (code, signal) => {
      const waited = 'line' in ready ? `before it printed ${lineWanted(ready.line)}` : `within the ${ready.afterMs / 1000} s heapscope waited (--after)`;
      settle(new HeapscopeError('ERR_PROCESS_EXITED', `${name} (pid ${child.pid}) ended with ${ending(code, signal)} ${waited}, so it was never read`));
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      forward.write(chunk);
      if (done || !('line' in ready)) return;
      seen += decoder.write(chunk);
      const lines = seen.split('\n');
      seen = lines.pop()!;
      if (lines.some((l) => l.includes(ready.line))) settle();
    });
    child.stdout!.once('end', () => {
      // An exit closes stdout too, and its event may come later: only a child that is not exiting closed it itself.
      if (!('line' in ready) || exit !== undefined || exiting(child.pid!)) return;
      settle(new HeapscopeError('ERR_EXEC_FAILED', `${name} (pid ${child.pid}) closed its stdout before it printed ${lineWanted(ready.line)}`));
    });
  });
}
