// Files of /proc/PID and the errors reading another process can end in:
// gone (ERR_PROCESS_EXITED) or not allowed (ERR_PERMISSION, saying why and
// what would allow it).
import fs from 'node:fs';
import { HeapscopeError } from '../errors';
import { withFileBytes } from '../file-bytes';

/** Linux's largest pid_max (PID_MAX_LIMIT on 64-bit). */
export const PID_MAX = 1 << 22;

/** /proc/PID/NAME as text (read into memory the addon maps: withFileBytes). */
export function readProcFile(pid: number, name: string): string {
  try {
    return withFileBytes(`/proc/${pid}/${name}`, (bytes) => bytes.toString('utf8'));
  } catch (error) {
    if (error instanceof HeapscopeError) throw error;
    throw procError(pid, error as NodeJS.ErrnoException, `/proc/${pid}/${name}`);
  }
}

export function procError(pid: number, e: NodeJS.ErrnoException, what: string): HeapscopeError {
  if (e.code === 'ENOENT' || e.code === 'ESRCH') return exited(pid);
  if (e.code === 'EACCES' || e.code === 'EPERM') return permissionError(pid, `reading ${what} was refused (${e.code})`);
  return new HeapscopeError('ERR_READ_FAILED', `cannot read ${what}: ${e.message}`, {
    errno: e.errno === undefined ? undefined : Math.abs(e.errno), syscall: e.syscall,
  });
}

export function exited(pid: number): HeapscopeError {
  return new HeapscopeError('ERR_PROCESS_EXITED', `process ${pid} does not exist (it exited, or never did)`);
}

/** The arguments the process was started with (/proc/PID/cmdline), or [] when it has none (a kernel thread, a zombie). */
export function readCmdline(pid: number): string[] {
  const text = readProcFile(pid, 'cmdline');
  // NUL after each argument; a process that rewrote its arguments may leave one long string.
  return text === '' ? [] : text.replace(/\0$/, '').split('\0');
}

/** The fields of /proc/PID/status heapscope uses. */
export interface ProcStatus {
  name: string;
  /** The first letter of State: R, S, D, T, t, Z, X … */
  state: string;
  /** Real, effective, saved and filesystem uid. */
  uids: number[];
}

export function readStatus(pid: number): ProcStatus {
  const text = readProcFile(pid, 'status');
  const field = (key: string) => new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(text)?.[1] ?? '';
  const status = { name: field('Name'), state: field('State').charAt(0), uids: field('Uid').split(/\s+/).filter(Boolean).map(Number) };
  // A zombie has no memory left to read; its maps are empty.
  if (status.state === 'Z' || status.state === 'X') {
    throw new HeapscopeError('ERR_PROCESS_EXITED', `process ${pid} (${status.name}) has exited: it is a zombie its parent has not reaped`);
  }
  return status;
}

/** /proc/PID/stat's state letter and flags (PF_*). */
function readStat(pid: number): { state: string; flags: number } {
  const stat = readProcFile(pid, 'stat');
  // The fields after the command name (which may hold spaces and parentheses) start with the state; flags is the 9th field.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], flags: Number(fields[6]) };
}

/** PF_KTHREAD: a kernel thread, which has no memory of its own. */
export function isKernelThread(pid: number): boolean {
  return (readStat(pid).flags & 0x00200000) !== 0;
}

/**
 * Whether the process is exiting or has exited: gone, a zombie, or PF_EXITING,
 * which the kernel sets before it closes the process's files. A pipe from it
 * that ends while it is not exiting was closed by the process itself.
 */
export function isExiting(pid: number): boolean {
  try {
    const { state, flags } = readStat(pid);
    return state === 'Z' || state === 'X' || (flags & 0x4) !== 0;
  } catch (error) {
    if ((error as HeapscopeError).code === 'ERR_PROCESS_EXITED') return true;
    throw error;
  }
}

/** What /proc/sys/kernel/yama/ptrace_scope says, or undefined without Yama. */
export function ptraceScope(): number | undefined {
  try {
    return Number(fs.readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** ERR_PERMISSION for `pid`, naming the likely cause (owner, Yama) and the remedies. */
export function permissionError(pid: number, what: string, errno?: number): HeapscopeError {
  const causes: string[] = [];
  const me = process.getuid?.();
  let owner: number | undefined;
  try {
    owner = Number(/^Uid:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    // Gone or hidden: the other causes still apply.
  }
  if (owner !== undefined && me !== undefined && owner !== me) causes.push(`it belongs to uid ${owner} and this process runs as uid ${me}`);
  const scope = ptraceScope();
  if (scope === undefined) causes.push('no Yama LSM here (/proc/sys/kernel/yama/ptrace_scope is absent), so ownership and capabilities decide');
  else if (scope === 0) causes.push('yama ptrace_scope is 0 (classic: same uid suffices)');
  else if (scope === 1) causes.push('yama ptrace_scope is 1 (restricted: only a parent, or a process the target allowed with PR_SET_PTRACER, may read it)');
  else if (scope === 2) causes.push('yama ptrace_scope is 2 (admin-only: CAP_SYS_PTRACE is needed)');
  else causes.push(`yama ptrace_scope is ${scope} (no attach at all, whoever asks)`);
  return new HeapscopeError('ERR_PERMISSION',
    `not allowed to read process ${pid}: ${what}; ${causes.join('; ')}. ` +
    'Remedies: run as the same user with ptrace_scope 0, as root or with CAP_SYS_PTRACE, or start the target as a child (`heapscope exec -- CMD…`)',
    { ...(errno === undefined ? {} : { errno }), syscall: 'process_vm_readv' });
}
