// Measurements that must not be disturbed: another thread of the test process
// (vitest's own, a worker another test left behind) can malloc and free in
// main_arena between two native calls. A fresh node with V8 single-threaded
// and no platform worker threads runs nothing but the body.
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';
import { SYNC_CHILD } from './sync-child';

const root = path.join(__dirname, '..', '..');
const NEED_ROOM = path.join(root, 'test', 'fixtures', 'need-break-room.cjs');

/**
 * About one node start in fifty puts V8's code range just above the heap
 * (lib/break-room.ts): brk() fails once the heap reaches it. Such a child
 * says so before running the body (fixtures/need-break-room.cjs) and
 * another is started, as isolated experiment runs do; the body always runs
 * in a process whose break can grow.
 */
const CHILDREN = 5;
const NEEDED_ROOM = 256n << 20n;
const BLOCKED = 'BLOCKED ';

/**
 * A quiet node: V8 without its helper threads (concurrent marking,
 * sweeping, compiling) and Node without platform workers, all of which
 * malloc and free in main_arena at any moment; the break's room checked
 * before `args` run. `launcher`: a program (and its arguments) that runs
 * node, as `launcher... node args...`.
 */
export function quietNode(args: string[], env: NodeJS.ProcessEnv = process.env, launcher: readonly string[] = []): SpawnSyncReturns<string> {
  const rooms: string[] = [];
  const command = [...launcher, process.execPath, '--single-threaded', '--v8-pool-size=0', '--require', NEED_ROOM, ...args];
  for (let i = 0; i < CHILDREN; i++) {
    const child = spawnSync(command[0], command.slice(1), {
      ...SYNC_CHILD,
      encoding: 'utf8', maxBuffer: 1 << 28, env: { ...env, HEAPSCOPE_TEST_NEEDED_ROOM: String(NEEDED_ROOM), HEAPSCOPE_TEST_BLOCKED: BLOCKED },
    });
    if (child.status !== 0 || !child.stdout.startsWith(BLOCKED)) return child;
    rooms.push(child.stdout.slice(BLOCKED.length));
  }
  throw new Error(`${CHILDREN} quiet children in a row had a break that could not grow 256 MiB (room: ${rooms.join(', ')} bytes)`);
}

/**
 * Runs `body` (the body of an async function, CommonJS) in a fresh
 * `node --single-threaded` and returns what it returns; bigints come back as
 * decimal strings. In the body, `h` is heapscope, `binding` its raw addon,
 * `addonPath` the addon's file (for workers) and `needBreakRoom()` the
 * break's room checked again: a body that starts workers calls it once they
 * run, since a worker starting can map memory right at the break (then
 * another child runs the body). `env` is added to this
 * process's environment (GLIBC_TUNABLES, read when the child starts);
 * `launcher` runs the node (quietNode).
 */
export function inQuietChild<T>(body: string, env: NodeJS.ProcessEnv = {}, launcher: readonly string[] = []): T {
  const source = `
    const h = require(${JSON.stringify(root)});
    const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'binding'))});
    const addonPath = require('node-gyp-build').path(${JSON.stringify(root)});
    const { needBreakRoom } = require(${JSON.stringify(NEED_ROOM)});
    (async () => { ${body} })().then((result) => {
      process.stdout.write(JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
    });
  `;
  const child = quietNode(['-e', source], { ...process.env, ...env }, launcher);
  if (child.status !== 0) throw new Error(`quiet child failed (${child.status ?? child.signal}): ${child.stderr}`);
  return JSON.parse(child.stdout) as T;
}

/**
 * heapscope's command line (dist/cli.js `args`) in a quiet node, with
 * `env` as its whole environment: what it prints of its own heap was not
 * changed under it by a helper thread, and its heap can grow by the break.
 */
export function quietCli(args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  const { status, stdout, stderr } = quietNode([path.join(root, 'dist', 'cli.js'), ...args], env);
  return { status, stdout, stderr };
}

/**
 * The start of a quiet child's body: `before` gets plan steps that leave
 * chunks in a fastbin (after filling tcache), in the unsorted bin and in the
 * tcache (`small` and `big` hold their steps' indices). A malloc(40) can be handed a free 64-byte
 * chunk whole (its 16-byte remainder is too small to split): each size the
 * small blocks came out at fills a tcache bin of its own before any reaches
 * a fastbin, so there are forty of them (a bin holds 16 from 2.43, which
 * puts the rest in their small bin: it has no fastbins).
 */
export const FREED_SHAPE = `
  const before = [];
  const keep = (size) => before.push({ op: 'malloc', size }) - 1;
  const small = [];
  const big = [];
  for (let i = 0; i < 40; i++) { small.push(keep(40)); keep(24); }
  for (let i = 0; i < 2; i++) { big.push(keep(0x4f0)); keep(24); }
  // The big ones first: a guard may not sit next to its block, and a big
  // free that merges into 64 KiB or more consolidates the fastbins.
  for (const step of [...big, ...small]) before.push({ op: 'free', step });
`;
