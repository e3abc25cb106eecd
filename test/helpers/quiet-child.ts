// Measurements that must not be disturbed: another thread of the test process
// (vitest's own, a worker another test left behind) can malloc and free in
// main_arena between two native calls. A fresh node with V8 single-threaded
// and no platform worker threads runs nothing but the body.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');

/**
 * About one node start in fifty puts V8's code range just above the heap
 * (lib/break-room.ts): brk() fails once the heap reaches it. Such a child
 * says so before running the body and another is started, as isolated
 * experiment runs do; the body always runs in a process whose break can grow.
 */
const CHILDREN = 5;
const NEEDED_ROOM = 256n << 20n;
const BLOCKED = 'BLOCKED ';

/**
 * Runs `body` (the body of an async function, CommonJS) in a fresh
 * `node --single-threaded` and returns what it returns; bigints come back as
 * decimal strings. In the body, `h` is heapscope, `binding` its raw addon and
 * `addonPath` the addon's file (for workers).
 */
export function inQuietChild<T>(body: string): T {
  const source = `
    const h = require(${JSON.stringify(root)});
    const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'binding'))});
    const addonPath = require('node-gyp-build').path(${JSON.stringify(root)});
    const room = require(${JSON.stringify(path.join(root, 'dist', 'break-room'))}).breakRoom();
    if (room.room < ${NEEDED_ROOM}n) {
      process.stdout.write(${JSON.stringify(BLOCKED)} + room.room);
      process.exit(0);
    }
    (async () => { ${body} })().then((result) => {
      process.stdout.write(JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
    });
  `;
  const rooms: string[] = [];
  for (let i = 0; i < CHILDREN; i++) {
    const child = spawnSync(process.execPath, ['--single-threaded', '--v8-pool-size=0', '-e', source], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`quiet child failed (${child.status ?? child.signal}): ${child.stderr}`);
    if (!child.stdout.startsWith(BLOCKED)) return JSON.parse(child.stdout) as T;
    rooms.push(child.stdout.slice(BLOCKED.length));
  }
  throw new Error(`${CHILDREN} quiet children in a row had a break that could not grow 256 MiB (room: ${rooms.join(', ')} bytes)`);
}

/**
 * The start of a quiet child's body: `before` gets plan steps that leave
 * chunks in a fastbin (after filling tcache), in the unsorted bin and in the
 * tcache (`small` and `big` hold their steps' indices). A malloc(40) can be handed a free 64-byte
 * chunk whole (its 16-byte remainder is too small to split): each size the
 * small blocks came out at fills a tcache bin of its own before any reaches
 * a fastbin, so there are twenty of them.
 */
export const FREED_SHAPE = `
  const before = [];
  const keep = (size) => before.push({ op: 'malloc', size }) - 1;
  const small = [];
  const big = [];
  for (let i = 0; i < 20; i++) { small.push(keep(40)); keep(24); }
  for (let i = 0; i < 2; i++) { big.push(keep(0x4f0)); keep(24); }
  // The big ones first: a guard may not sit next to its block, and a big
  // free that merges into 64 KiB or more consolidates the fastbins.
  for (const step of [...big, ...small]) before.push({ op: 'free', step });
`;
