// The layout of the running glibc against the compiler's own, as gdb prints
// it from glibc's debug symbols for a child process (`cat`, which has loaded
// the same libc.so.6 as this process): every field's offset and size, and
// every struct's size.
import { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { glibcVersion } from '../../lib/stats';
import { layoutFor } from '../../lib/allocator/layouts';
import { StructLayout } from '../../lib/allocator/struct-layout';
import { gdbAsk, gdbMissing, GdbStruct, parsePtype, startChild } from '../helpers/gdb';
import { RELEASE_UNDER_TEST } from '../helpers/glibcs';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// gdb reads a child; nothing of this process's heap is read.
heapRoomNotNeeded();

const STRUCTS = {
  mallocState: 'struct malloc_state',
  mallocPar: 'struct malloc_par',
  heapInfo: 'heap_info',
  tcache: 'struct tcache_perthread_struct',
  tcacheEntry: 'struct tcache_entry',
} as const;
type Key = keyof typeof STRUCTS;

let child: ChildProcess | undefined;
// gdb reads this machine's cat; gdb-state.test.ts reads a release's structs in a program built for it.
let skip: string | undefined = gdbMissing() ?? (RELEASE_UNDER_TEST === undefined ? undefined
  : `gdb reads this machine's cat, on its glibc, not on ${RELEASE_UNDER_TEST.name}'s ${RELEASE_UNDER_TEST.glibc}, which this run tests`);
const gdb: Partial<Record<Key | 'maxFast', string>> = {};

beforeAll(async () => {
  if (skip !== undefined) return;
  child = await startChild('cat', [], 'ready\n');
  const keys = Object.keys(STRUCTS) as Key[];
  const answer = gdbAsk(child.pid!, [...keys.map((k) => `ptype /o ${STRUCTS[k]}`), 'p sizeof (global_max_fast)']);
  if ('skip' in answer) {
    skip = answer.skip;
    return;
  }
  keys.forEach((k, i) => { gdb[k] = answer.sections[i]; });
  gdb.maxFast = answer.sections[keys.length];
});

afterAll(() => {
  child?.kill();
});

const shape = (s: StructLayout): GdbStruct => ({ size: s.size, fields: s.fields.map(({ name, offset, size }) => ({ name, offset, size })) });

describe(`the layout of glibc ${glibcVersion()} against gdb's ptype /o`, () => {
  const layout = layoutFor(glibcVersion());

  for (const key of Object.keys(STRUCTS) as Key[]) {
    it(`${STRUCTS[key]}: every field's offset and size, and the struct's size`, (context) => {
      if (skip !== undefined) context.skip(skip);
      const fromGdb = parsePtype(gdb[key]!);
      expect(fromGdb.fields.length).toBeGreaterThan(0);
      if (key === 'tcache') {
        // 2.28 and 2.29 have two candidates: the running build must be one of them.
        expect(layout.tcache.map((t) => shape(t.struct))).toContainEqual(fromGdb);
      } else {
        expect(shape(layout[key])).toEqual(fromGdb);
      }
    });
  }

  it('global_max_fast: its type', (context) => {
    if (skip !== undefined) context.skip(skip);
    const size = /^\$\d+ = (\d+)$/m.exec(gdb.maxFast!);
    expect(size).not.toBeNull();
    expect(Number(size![1])).toBe(layout.globalMaxFast === 'size_t' ? 8 : 1);
  });
});
