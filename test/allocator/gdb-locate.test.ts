// Locating malloc's globals in other processes' copied memory, against where
// gdb (with glibc's debug symbols) says they are: `cat`, and a small C
// program in each state malloc can be in, [heap] or none.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layoutFor } from '../../lib/allocator/layouts';
import { libcDataRegions } from '../../lib/allocator/libc-data';
import { locateMallocGlobals, MallocGlobals } from '../../lib/allocator/locate';
import { MaxFastChange } from '../../lib/allocator/locate-max-fast';
import { glibcVersion, maps } from '../../lib/index';
import { runPlan } from '../../lib/plan';
import { gdbAsk, gdbMissing, nextOutput, parseAddress, startChild } from '../helpers/gdb';
import { copyRegions, regionsOf } from '../helpers/proc-mem';
import { SYNC_CHILD } from '../helpers/sync-child';
import { foreignEnv } from '../helpers/foreign-env';
import { RELEASE_UNDER_TEST } from '../helpers/glibcs';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// gdb and the locator read other processes, and this one's libc data (where main_arena
// is found whatever room its break has: the test passes with the break blocked).
heapRoomNotNeeded();

const layout = layoutFor(glibcVersion());
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-states-'));
const program = path.join(dir, 'malloc-states');
// Its targets are this machine's cat and a program read with this machine's debug symbols.
let skip = gdbMissing() ?? (RELEASE_UNDER_TEST === undefined ? undefined
  : `its targets run on this machine's glibc, not on ${RELEASE_UNDER_TEST.name}'s ${RELEASE_UNDER_TEST.glibc}, which this run tests`);

beforeAll(() => {
  if (skip !== undefined) return;
  const cc = spawnSync('cc', ['-O1', '-o', program, path.join(__dirname, '..', 'fixtures', 'malloc-states.c')], { ...SYNC_CHILD, encoding: 'utf8', env: foreignEnv() });
  if (cc.error !== undefined) skip = 'no C compiler (cc) to build test/fixtures/malloc-states.c';
  else if (cc.status !== 0) throw new Error(`cc failed:\n${cc.stderr}`);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const GDB = [
  'p &main_arena', 'p &mp_', 'p &global_max_fast', 'p/x main_arena.top', 'p/x mp_.sbrk_base', 'p (int) global_max_fast', 'p mp_.top_pad',
];

interface Truth {
  mainArena: bigint;
  mp: bigint;
  maxFast: bigint;
  top: bigint;
  sbrkBase: bigint;
  maxFastValue: number;
  topPad: bigint;
}

function ask(pid: number): Truth | string {
  const answer = gdbAsk(pid, GDB);
  if ('skip' in answer) return answer.skip;
  const s = answer.sections;
  const value = (i: number) => BigInt(/= (0x[0-9a-f]+|\d+)/.exec(s[i])![1]);
  return {
    mainArena: parseAddress(s[0]), mp: parseAddress(s[1]), maxFast: parseAddress(s[2]),
    top: value(3), sbrkBase: value(4), maxFastValue: Number(value(5)), topPad: value(6),
  };
}

/** Copies the child's libc data and locates; `[heap]` from its map, if it has one. */
function locateIn(pid: number, change?: (before: MallocGlobals) => MaxFastChange): { g: MallocGlobals; hasHeap: boolean } {
  const regions = regionsOf(pid);
  const data = copyRegions(pid, libcDataRegions(regions));
  const heap = regions.find((r) => r.kind === 'heap');
  const input = { layout, data, ...(heap ? { heap: { start: heap.start, end: heap.end } } : {}) };
  const first = locateMallocGlobals(input);
  return { g: change === undefined ? first : locateMallocGlobals(input, change(first)), hasHeap: heap !== undefined };
}

async function withProgram<T>(command: string, args: string[], input: string | undefined, body: (pid: number) => Promise<T> | T): Promise<T> {
  const child = await startChild(command, args, input);
  try {
    return await body(child.pid!);
  } finally {
    child.stdin!.end();
    child.kill();
  }
}

describe(`malloc's globals in other processes, against gdb (glibc ${glibcVersion()})`, () => {
  it('cat, and this process: main_arena and mp_ where gdb puts them, at the same offsets in libc here', async (context) => {
    if (skip !== undefined) context.skip(skip);
    await withProgram('cat', [], 'ready\n', (pid) => {
      const truth = ask(pid);
      if (typeof truth === 'string') return context.skip(truth);
      const { g } = locateIn(pid);
      expect(g.mainArena).toMatchObject({ found: true, address: truth.mainArena, value: { state: 'heap', top: truth.top } });
      expect(g.mallocPar).toMatchObject({ found: true, address: truth.mp, value: { sbrkBase: truth.sbrkBase } });
      if (!g.globalMaxFast.found) expect(g.globalMaxFast.candidates.map((c) => c.address)).toContain(truth.maxFast);
      else expect(g.globalMaxFast.address).toBe(truth.maxFast);
      // The same libc.so.6 is mapped here: the same offsets from its writable data.
      const theirs = libcDataRegions(regionsOf(pid))[0].start;
      const mine = libcDataRegions(maps());
      const { steps } = runPlan(mine.map((r) => ({ op: 'read' as const, address: r.start, length: r.size })));
      const here = locateMallocGlobals({ layout, data: mine.map((r, i) => ({ base: r.start, bytes: steps[i].bytes! })), heap: maps().find((r) => r.kind === 'heap')! });
      expect(here.mainArena.found && here.mainArena.address - mine[0].start).toBe(truth.mainArena - theirs);
      expect(here.mallocPar.found && here.mallocPar.address - mine[0].start).toBe(truth.mp - theirs);
    });
  });

  it('before malloc ever ran: main_arena as .data holds it, mp_ with no sbrk_base, global_max_fast refused (still 0)', async (context) => {
    if (skip !== undefined) context.skip(skip);
    await withProgram(program, ['fresh'], undefined, (pid) => {
      const truth = ask(pid);
      if (typeof truth === 'string') return context.skip(truth);
      const { g, hasHeap } = locateIn(pid);
      expect(hasHeap).toBe(false);
      expect(g.mainArena).toMatchObject({ found: true, address: truth.mainArena, value: { state: 'uninitialized', top: 0n } });
      expect(g.mallocPar).toMatchObject({ found: true, address: truth.mp, value: { sbrkBase: 0n } });
      expect(truth.maxFastValue).toBe(0);
      expect(g.globalMaxFast).toMatchObject({ found: false, code: 'prerequisite-missing' });
    });
  });

  it('after mallopt only: no [heap], main_arena\'s top is initial_top (its own bins), mp_ holds the top pad set', async (context) => {
    if (skip !== undefined) context.skip(skip);
    await withProgram(program, ['init'], undefined, (pid) => {
      const truth = ask(pid);
      if (typeof truth === 'string') return context.skip(truth);
      const { g, hasHeap } = locateIn(pid);
      expect(hasHeap).toBe(false);
      expect(truth.top).toBe(truth.mainArena + 96n);
      expect(g.mainArena).toMatchObject({ found: true, address: truth.mainArena, value: { state: 'no-memory', top: truth.top } });
      expect(g.mallocPar).toMatchObject({ found: true, address: truth.mp, value: { sbrkBase: 0n, topPad: 65536n } });
      expect(truth.topPad).toBe(65536n);
      if (!g.globalMaxFast.found) expect(g.globalMaxFast.candidates.map((c) => c.address)).toContain(truth.maxFast);
    });
  });

  it('with the break blocked: no [heap], main_arena noncontiguous in an mmap\'d region that mp_.sbrk_base starts', async (context) => {
    if (skip !== undefined) context.skip(skip);
    await withProgram(program, ['nobrk'], undefined, (pid) => {
      const truth = ask(pid);
      if (typeof truth === 'string') return context.skip(truth);
      const { g, hasHeap } = locateIn(pid);
      expect(hasHeap).toBe(false);
      expect(g.mainArena).toMatchObject({ found: true, address: truth.mainArena, value: { state: 'noncontiguous', top: truth.top, flags: 2 } });
      expect(g.mallocPar).toMatchObject({ found: true, address: truth.mp, value: { sbrkBase: truth.sbrkBase } });
    });
  });

  it('global_max_fast: the one word that mallopt(M_MXFAST, 64) moved, where gdb puts it', async (context) => {
    if (skip !== undefined) context.skip(skip);
    const child = await startChild(program, ['mxfast']);
    try {
      const truth = ask(child.pid!);
      if (typeof truth === 'string') return context.skip(truth);
      const regions = libcDataRegions(regionsOf(child.pid!));
      const before = copyRegions(child.pid!, regions);
      const moved = nextOutput(child, 'ready');
      child.stdin!.write('\n');
      await moved;
      const after = copyRegions(child.pid!, regions);
      const heap = regionsOf(child.pid!).find((r) => r.kind === 'heap')!;
      const g = locateMallocGlobals({ layout, data: before, heap: { start: heap.start, end: heap.end } }, { after, request: 64 });
      expect(g.globalMaxFast).toMatchObject({ found: true, address: truth.maxFast, value: { value: truth.maxFastValue } });
    } finally {
      child.stdin!.end();
      child.kill();
    }
  });
});
