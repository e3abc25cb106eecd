// attach(pid) of a process whose libc file is no longer what its map's path
// names: deleted and replaced under it, as an upgrade of glibc does to every
// process still running, or another file out here, as for a process in its
// own mount namespace (a container). Its glibc version comes from its own
// memory, and mp_ as its libc initialises it from the mapped file itself,
// which gdb reads with glibc's debug symbols for the oracle.
import { ChildProcess, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attach, maps } from '../../lib/index';
import { libcFileOf } from '../../lib/allocator/libc-file';
import { fileFacts } from '../../lib/file-bytes';
import { glibcVersion } from '../../lib/stats';
import { gdbAsk, gdbInitialParams, InitialParams, parseAddress } from '../helpers/gdb';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { SYNC_CHILD } from '../helpers/sync-child';
import { foreignEnv, hostLibraries, nodeAgain } from '../helpers/foreign-env';
import { NO_PYTHON, PYTHON, startTarget } from '../helpers/target';

// The heaps read are other processes': this process's own room does not matter.
heapRoomNotNeeded();

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-moved-libc-'));
const children: ChildProcess[] = [];
/** The libc this process maps: the targets map a copy of it. */
const LIBC = libcFileOf(maps())!.path;
const SCRIPT = 'import os\nos.write(1, b"%d\\n" % os.getpid())\nos.read(0, 1)\n';
/** Drops what opening /proc/PID/map_files takes; ptrace's CAP_SYS_PTRACE stays. */
const WITHOUT_SYS_ADMIN = ['--inh-caps=-all', '--bounding-set=-sys_admin,-checkpoint_restore'];

/** mp_ as gdb reads it in glibc's file, or why gdb cannot. */
let gdbInitial: InitialParams | { skip: string };

beforeAll(() => {
  gdbInitial = gdbInitialParams(LIBC);
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** gdb's mp_, or the skip it gives. */
function oracle(skip: (note: string) => never): InitialParams {
  if ('skip' in gdbInitial) skip(gdbInitial.skip);
  return gdbInitial as InitialParams;
}

/** A copy of this process's libc in a directory of its own. */
function copyOfLibc(name: string): string {
  const copy = path.join(dir, name, 'libc.so.6');
  fs.mkdirSync(path.dirname(copy), { recursive: true });
  fs.copyFileSync(LIBC, copy);
  return copy;
}

/** The target's line of its libc's data, as its map gives it now. */
function libcLine(pid: number): string {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => /\/libc\.so\.6( \(deleted\))?$/.test(l) && l.includes(' rw-p '))!;
}

/** heapscope doctor --pid PID with `options`, run by setpriv without CAP_SYS_ADMIN. */
function doctorWithoutSysAdmin(pid: number, options: string[]) {
  return spawnSync('setpriv', [...WITHOUT_SYS_ADMIN, ...nodeAgain(), process.execPath, CLI, 'doctor', '--pid', String(pid), ...options], { ...SYNC_CHILD, encoding: 'utf8', env: hostLibraries() });
}

/** python3 on a copy of this libc, which is then deleted and replaced by another file under the same path. */
async function deletedAndReplaced(): Promise<{ pid: number; copy: string }> {
  const copy = copyOfLibc('upgraded');
  const { child, next } = startTarget(PYTHON, ['-c', SCRIPT], { env: { ...process.env, LD_LIBRARY_PATH: path.dirname(copy) }, into: children });
  const pid = Number((await next(1))[0]);
  expect(libcLine(pid)).toMatch(new RegExp(`${copy}$`));
  fs.rmSync(copy);
  fs.writeFileSync(copy, 'the next version\n');
  expect(child.pid).toBe(pid);
  return { pid, copy };
}

/** Why no private mount namespace can be made here, or undefined. */
function noMountNamespace(): string | undefined {
  const probe = spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { ...SYNC_CHILD, encoding: 'utf8', env: foreignEnv() });
  if (probe.error !== undefined) return 'no unshare (util-linux) to start a process in a mount namespace of its own';
  return probe.status === 0 ? undefined : `unshare -m cannot make a mount namespace here (${probe.stderr.trim()}): it takes CAP_SYS_ADMIN`;
}

/** Why the tests cannot drop CAP_SYS_ADMIN in a child, or undefined. */
function noSetpriv(): string | undefined {
  if (process.getuid?.() !== 0) return 'only root has the capabilities that a child of the test drops; run the tests as root to try this path';
  const probe = spawnSync('setpriv', [...WITHOUT_SYS_ADMIN, 'true'], { ...SYNC_CHILD, encoding: 'utf8', env: foreignEnv() });
  if (probe.error !== undefined) return 'no setpriv (util-linux) to drop CAP_SYS_ADMIN in a child';
  return probe.status === 0 ? undefined : `setpriv cannot drop CAP_SYS_ADMIN here (${probe.stderr.trim()})`;
}

describe('a process whose libc was deleted and replaced since it was mapped (an upgrade)', () => {
  it("reads its version in its memory and mp_'s initial values in the mapped file, through /proc/PID/map_files", async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    if (process.getuid?.() !== 0) skip('opening /proc/PID/map_files takes CAP_SYS_ADMIN; run the tests as root to try this path');
    const initial = oracle(skip);
    const { pid, copy } = await deletedAndReplaced();
    expect(libcLine(pid)).toMatch(new RegExp(`${copy} \\(deleted\\)$`));
    const target = attach(pid);
    expect(target.glibc).toBe(glibcVersion());
    expect(target.libc.path).toBe(copy);
    expect(target.libc.file).toMatch(new RegExp(`^/proc/${pid}/map_files/[0-9a-f]+-[0-9a-f]+$`));
    expect(fileFacts(copy).inode).not.toBe(target.libc.inode);
    // The same build as this process's libc (its build ID, read in its memory): global_max_fast's offset, measured here, holds there.
    expect(target.libc.buildId).toBe(libcFileOf(maps()).buildId);
    expect(target.mallocParams().globalMaxFast).toMatchObject({ found: true, libc: `build-id ${target.libc.buildId}` });
    const d = target.doctor();
    expect(d.params.initial).toEqual(initial);
    expect(d.params.initialReason).toBeUndefined();
  });

  it('without CAP_SYS_ADMIN no name opens that file: the version is read all the same, and the initial values are said to be unknown, with why', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const cannot = noSetpriv();
    if (cannot !== undefined) skip(cannot);
    const { pid, copy } = await deletedAndReplaced();
    const run = doctorWithoutSysAdmin(pid, ['--json']);
    expect(run.status, run.stderr).toBe(0);
    const d = JSON.parse(run.stdout) as { glibc: string; params: { initial?: unknown; initialReason?: string } };
    expect(d.glibc).toBe(glibcVersion());
    expect(d.params.initial).toBeUndefined();
    expect(d.params.initialReason).toBe(
      `no name opens the libc file the process maps: ${copy} was deleted since it was mapped (its map says so); ` +
        `cannot stat /proc/${pid}/map_files/${libcLine(pid).split(' ')[0]} (Operation not permitted); ` +
        `/proc/${pid}/root${copy} is another file (inode ${fileFacts(copy).inode}, the mapped one is ${libcLine(pid).split(/\s+/)[4]})`,
    );
    // The table says nothing it did not measure: each state that compares with the initial value is unknown.
    const text = doctorWithoutSysAdmin(pid, []);
    expect(text.status, text.stderr).toBe(0);
    for (const field of ['mmap_threshold', 'trim_threshold', 'top_pad']) expect(text.stdout).toMatch(new RegExp(`^${field} +\\d+ +\\? +\\?$`, 'm'));
    expect(text.stdout).not.toMatch(/as initialised|changed|risen/);
  });
});

describe('a process in a mount namespace of its own, whose libc path names another file out here (a container)', () => {
  /** python3 in a new mount namespace where a copy of this libc is bind-mounted over its path. */
  async function inNamespace(): Promise<number> {
    const copy = copyOfLibc('namespace');
    const { next } = startTarget('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$2" "$3" && exec "$0" -c "$1"', PYTHON, SCRIPT, copy, LIBC], { into: children });
    const pid = Number((await next(1))[0]);
    // Out here the path is this process's libc, another inode than the one the target maps.
    expect(libcLine(pid).split(/\s+/)[4]).toBe(String(fileFacts(copy).inode));
    expect(fileFacts(LIBC).inode).not.toBe(fileFacts(copy).inode);
    return pid;
  }

  it('reads mp_ as initialised in the file the process maps, not in the file its path names here', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const cannot = noMountNamespace();
    if (cannot !== undefined) skip(cannot);
    const initial = oracle(skip);
    const pid = await inNamespace();
    const target = attach(pid);
    expect(target.glibc).toBe(glibcVersion());
    expect(target.libc.file).toMatch(new RegExp(`^/proc/${pid}/map_files/`));
    expect(target.doctor().params.initial).toEqual(initial);
    // gdb opens the path out here, the same bytes: its symbols say where global_max_fast is, and what it holds.
    const asked = gdbAsk(pid, ['p (int) global_max_fast', 'p &global_max_fast']);
    if (!('skip' in asked)) {
      const maxFast = target.mallocParams().globalMaxFast;
      expect(maxFast.found && { value: maxFast.value, address: maxFast.address }).toEqual({
        value: Number(/= (\d+)/.exec(asked.sections[0])![1]), address: parseAddress(asked.sections[1]),
      });
    }

    // Without CAP_SYS_ADMIN, the path seen from the process's root names it.
    if (noSetpriv() !== undefined) return;
    const run = doctorWithoutSysAdmin(pid, ['--json']);
    expect(run.status, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { params: { initial?: unknown } }).params.initial).toEqual(initial);
  });
});
