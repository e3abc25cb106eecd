// Asking gdb, with glibc's debug symbols, about a running process: what
// the compiler laid out (ptype /o) and where symbols are (p &sym). Tests
// compare heapscope's symbol-free reading of malloc with these answers.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { foreignEnv } from './foreign-env';
import { SYNC_CHILD } from './sync-child';

/** A field as `ptype /o` prints it. */
export interface GdbField {
  name: string;
  offset: number;
  size: number;
}

export interface GdbStruct {
  size: number;
  fields: GdbField[];
}

/** Why gdb cannot be used here, or undefined when it can. */
export function gdbMissing(): string | undefined {
  const probe = spawnSync('gdb', ['--version'], { ...SYNC_CHILD, encoding: 'utf8', env: foreignEnv() });
  return probe.status === 0 ? undefined : 'gdb is not installed (Debian: apt-get install gdb)';
}

/**
 * Runs gdb in batch mode (with gdb's `flags` first) attached to `target` (a
 * pid), or on it (a file: what its .data holds before any process runs), one
 * section per command, and
 * returns each command's output; or a reason to skip when gdb could not
 * attach or glibc's debug symbols are missing.
 */
export function gdbAsk(target: number | string, commands: readonly string[], flags: readonly string[] = []): { sections: string[] } | { skip: string } {
  const args = ['-nx', '-batch', ...flags, ...(typeof target === 'number' ? ['-p', String(target)] : [target])];
  commands.forEach((command, i) => args.push('-ex', `echo @@${i}\\n`, '-ex', command));
  const run = spawnSync('gdb', args, { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL', env: foreignEnv() });
  const text = `${run.stdout ?? ''}\n${run.stderr ?? ''}`;
  const skip = cannotAsk(text);
  if (skip !== undefined) return { skip };
  const out = run.stdout ?? '';
  const sections = commands.map((_, i) => {
    const start = out.indexOf(`@@${i}\n`);
    const end = i + 1 < commands.length ? out.indexOf(`@@${i + 1}\n`) : out.length;
    if (start < 0 || end < 0) throw new Error(`gdb's output lacks the section of ${commands[i]}:\n${text}`);
    return out.slice(start + `@@${i}\n`.length, end);
  });
  return { sections };
}

/**
 * Why gdb's run (its output, `text`) says nothing about the process, when
 * the cause is this machine: ptrace refused to attach (Yama's ptrace_scope,
 * a container without CAP_SYS_PTRACE), or glibc's debug symbols missing.
 * Any other failure to attach (a target already gone, among them) is the
 * test's: it throws with gdb's words.
 */
function cannotAsk(text: string): string | undefined {
  if (/ptrace: Operation not permitted/.test(text)) {
    return 'gdb cannot attach to a child process (ptrace: Operation not permitted; see /proc/sys/kernel/yama/ptrace_scope)';
  }
  const failed = /^.*(?:Could not attach|Unable to attach|ptrace: No such process).*$/m.exec(text);
  if (failed !== null) throw new Error(`gdb could not attach: ${failed[0]}\n${text}`);
  if (/No struct type named malloc_state|No symbol "(?:main_arena|mp_)" in current context|No symbol table is loaded/.test(text)) {
    return "glibc's debug symbols are missing (Debian: apt-get install libc6-dbg)";
  }
  return undefined;
}

/** Parses `ptype /o` output: every top-level field with its offset and size, and the total size. */
export function parsePtype(text: string): GdbStruct {
  const fields: GdbField[] = [];
  for (const line of text.split('\n')) {
    const m = /^\/\*\s+(\d+)\s+\|\s+(\d+)\s+\*\/\s+(.*);\s*$/.exec(line);
    if (m === null) continue;
    const name = /(\w+)(?:\[\d+\])?$/.exec(m[3]);
    if (name === null) throw new Error(`cannot read a field name from ${line}`);
    fields.push({ name: name[1], offset: Number(m[1]), size: Number(m[2]) });
  }
  const total = /total size \(bytes\):\s+(\d+)/.exec(text);
  if (total === null) throw new Error(`no total size in:\n${text}`);
  return { size: Number(total[1]), fields };
}

/** The address in gdb's answer to `p &symbol`, e.g. `$1 = (struct malloc_state *) 0x7f… <main_arena>`. */
export function parseAddress(text: string): bigint {
  const m = /\) (0x[0-9a-f]+)/.exec(text);
  if (m === null) throw new Error(`no address in gdb's answer: ${text}`);
  return BigInt(m[1]);
}

/**
 * Starts `command` and resolves once it has printed `ready` on stdout, so
 * that its libraries are loaded and its main() is running. `input` is
 * written to its stdin first: `cat` given `ready\n` echoes it.
 */
export async function startChild(command: string, args: readonly string[], input?: string): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], env: foreignEnv() });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('ready')) resolve();
    });
    if (input !== undefined) child.stdin!.write(input);
  });
  child.removeAllListeners('exit');
  return child;
}

/** Resolves when `child` next prints `text` on stdout. */
export function nextOutput(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve) => {
    let seen = '';
    const on = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (seen.includes(text)) {
        child.stdout!.off('data', on);
        resolve();
      }
    };
    child.stdout!.on('data', on);
  });
}

/**
 * Runs the gdb Python script `script` attached to `pid` (with gdb's `flags`
 * first) and returns the JSON it printed after `@@JSON`; or a reason to
 * skip, as gdbAsk gives.
 */
export function gdbPython(pid: number, script: string, flags: readonly string[] = []): { json: unknown } | { skip: string } {
  const run = spawnSync('gdb', ['-nx', '-batch', ...flags, '-p', String(pid), '-x', script], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL', maxBuffer: 256 << 20, env: foreignEnv() });
  const text = `${run.stdout ?? ''}\n${run.stderr ?? ''}`;
  const skip = cannotAsk(text);
  if (skip !== undefined) return { skip };
  const at = (run.stdout ?? '').indexOf('@@JSON');
  if (at < 0) throw new Error(`gdb printed no JSON:\n${text}`);
  return { json: JSON.parse(run.stdout.slice(at + '@@JSON'.length).split('\n')[0]) };
}

/** mp_'s fields that doctor() reports beside the parameters in force, as a libc file initialises them. */
export interface InitialParams {
  mmapThreshold: number;
  trimThreshold: number;
  topPad: number;
  arenaMax: number;
}

/** mp_ as gdb reads it in the libc file `libc` (its .data, before any process runs), or a reason to skip. */
export function gdbInitialParams(libc: string, flags: readonly string[] = []): InitialParams | { skip: string } {
  const missing = gdbMissing();
  if (missing !== undefined) return { skip: missing };
  const asked = gdbAsk(libc, ['print mp_'], flags);
  if ('skip' in asked) return asked;
  const field = (name: string) => {
    const m = new RegExp(`\\b${name} = (\\d+)`).exec(asked.sections[0]);
    if (m === null) throw new Error(`gdb's mp_ has no ${name}: ${asked.sections[0]}`);
    return Number(m[1]);
  };
  return { mmapThreshold: field('mmap_threshold'), trimThreshold: field('trim_threshold'), topPad: field('top_pad'), arenaMax: field('arena_max') };
}
