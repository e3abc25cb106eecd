// global_max_fast: a lone byte or word in libc's .bss, told from its
// neighbours only by moving it (locate-max-fast.ts). Moving it changes the
// process, so it is measured once in a child process, as an offset from
// main_arena, and cached per libc file: every process that maps the same
// file has it at the same offset.
import type * as ChildProcess from 'node:child_process';
import path from 'node:path';
import { hex } from '../format';
import { QUIET_NODE_FLAGS, quietEnv } from '../quiet-node';
import { own } from '../validate';
import { setMaxFast } from './locate-max-fast';
import { AllocatorImage } from './image';
import { LibcFile } from './libc-file';
import { readBytes } from './memory-source';
import { readC } from './snapshot';

export type MaxFastOffset = { offset: bigint } | { reason: string };

/** What global_max_fast holds in an image, or why it cannot be told. */
export type GlobalMaxFastReading =
  | {
    found: true;
    address: bigint;
    /** The largest chunk size that goes to a fastbin. */
    value: number;
    /** From main_arena, as measured in a child on the same libc file. */
    offset: bigint;
    /** The libc file it was measured for. */
    libc: string;
  }
  | { found: false; reason: string };

const cache = new Map<string, MaxFastOffset>();

// Loaded when the child is started, not with this module: node:child_process
// took 9 ms to load, and most processes that load this one (every
// experiment's child) never start the child.
const childProcess = (): typeof ChildProcess => require('node:child_process') as typeof ChildProcess;

// lib/allocator under test and dist/allocator both sit two levels below the
// package root; the child always runs the compiled code.
const CHILD = path.resolve(__dirname, '..', '..', 'dist', 'allocator', 'max-fast-child.js');

/**
 * global_max_fast's offset from main_arena in `libc`: measured in a fresh
 * `node` child the first time a libc file is asked about, then cached.
 * The child must map the same file (same path, device, inode, size and
 * mtime), or the answer is a reason instead.
 */
export function maxFastOffset(libc: LibcFile): MaxFastOffset {
  const known = cache.get(libc.key);
  if (known !== undefined) return known;
  const measured = measureInChild(libc);
  cache.set(libc.key, measured);
  return measured;
}

/**
 * maxFastOffset, its child running while the caller goes on: for a caller
 * with other work first (the bins experiment's plan), which then waits for
 * it. Starting the child mallocs and frees, and so does reading what it
 * says, when the caller waits: the caller starts it before it reads its
 * heap, and waits only once it has copied what it measures.
 */
export function maxFastOffsetLater(libc: LibcFile): Promise<MaxFastOffset> {
  const known = cache.get(libc.key);
  if (known !== undefined) return Promise.resolve(known);
  return new Promise((resolve) => {
    childProcess().execFile(process.execPath, CHILD_ARGS, { env: childEnv(), encoding: 'utf8', timeout: TIMEOUT }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      const measured = answer(libc, {
        error: error !== null && typeof error.code !== 'number' && error.signal === undefined ? error : undefined,
        status, signal: error?.signal ?? null, stdout, stderr,
      });
      cache.set(libc.key, measured);
      resolve(measured);
    });
  });
}

const CHILD_ARGS = [...QUIET_NODE_FLAGS, CHILD];
const TIMEOUT = 60_000;

function childEnv(): NodeJS.ProcessEnv {
  const env = quietEnv();
  // The child must start from the default limit, whatever this process was started with.
  delete env.GLIBC_TUNABLES;
  return env;
}

function measureInChild(libc: LibcFile): MaxFastOffset {
  return answer(libc, childProcess().spawnSync(process.execPath, CHILD_ARGS, { env: childEnv(), encoding: 'utf8', timeout: TIMEOUT }));
}

/** What the child's run says: the offset, or why there is none. */
function answer(
  libc: LibcFile, run: { error?: Error; status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string },
): MaxFastOffset {
  if (run.error !== undefined) return { reason: `the child that measures it could not run: ${run.error.message}` };
  if (run.status !== 0) return { reason: `the child that measures it failed (${run.status ?? run.signal}): ${run.stderr.trim().split('\n')[0] ?? ''}` };
  let parsed: { offset?: string; key?: string; reason?: string };
  try {
    parsed = JSON.parse(run.stdout) as typeof parsed;
  } catch {
    return { reason: `the child that measures it printed no result: ${JSON.stringify(run.stdout.slice(0, 200))}` };
  }
  // A JSON object's missing keys would be looked up on Object.prototype.
  const [key, offset, reason] = [own(parsed, 'key'), own(parsed, 'offset'), own(parsed, 'reason')];
  if (key !== undefined && key !== libc.key) return { reason: `the child mapped another libc (${key}) than this one (${libc.key})` };
  if (offset === undefined) return { reason: `the child could not tell it: ${reason ?? 'no reason given'}` };
  return { offset: BigInt(offset) };
}

/** global_max_fast read from the image at main_arena + the measured offset, checked to be a value set_max_fast gives. */
export function readGlobalMaxFast(image: AllocatorImage, mainArena: bigint, measured: MaxFastOffset, libc: string): GlobalMaxFastReading {
  // Own fields only: an Object.prototype.reason or .offset is none of ours.
  if (!Object.hasOwn(measured, 'offset')) return { found: false, reason: `its offset from main_arena is not known: ${(measured as { reason: string }).reason}` };
  const { offset } = measured as { offset: bigint };
  const address = mainArena + offset;
  const width = image.layout.globalMaxFast === 'size_t' ? 8 : 1;
  const bytes = readBytes(image.memory, address, width);
  if (typeof bytes === 'string') return { found: false, reason: `main_arena + ${hex(offset)} cannot be read: ${bytes}` };
  const value = Number(readC(bytes, 0, width === 8 ? 'size_t' : 'uint8_t'));
  // 0 until malloc starts; then set_max_fast of 8 to 160 (or of less, which gives 16 from 2.31 and 0 before).
  const possible = value === 0 || (value % 16 === 0 && value >= 16 && value <= setMaxFast(160));
  if (!possible) {
    return { found: false, reason: `main_arena + ${hex(offset)} holds ${value}, which set_max_fast never gives: the measured offset does not fit this libc` };
  }
  return { found: true, address, value, offset, libc };
}
