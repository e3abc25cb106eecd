// The allocator's state decoded from another process's copied memory,
// against gdb with glibc's debug symbols on the same stopped process, field
// by field: every arena's malloc_state and heaps, every fastbin and bin
// list, mp_, global_max_fast, and every thread's tcache. The process
// (test/fixtures/allocator-state.c) has chunks in every kind of list,
// three threads with arenas and tcaches of their own, and a thread arena
// with two heaps.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KNOWN_GLIBC_VERSIONS, layoutFor } from '../../lib/allocator/layouts';
import { libcDataRegions } from '../../lib/allocator/libc-data';
import { libcFileOf } from '../../lib/allocator/libc-file';
import { libcIdentityOf } from '../../lib/remote/libc-identity';
import { maxFastOffset } from '../../lib/allocator/max-fast';
import { AllocatorState, decodeAllocator } from '../../lib/allocator/state';
import { hex } from '../../lib/format';
import { attach } from '../../lib/index';
import { glibcVersion } from '../../lib/stats';
import { AllocatorFixture, startAllocatorFixture } from '../helpers/allocator-fixture';
import { gdbMissing, gdbPython } from '../helpers/gdb';
import { ccFlagsFor, gdbFlagsFor, hereGdbFlags, notFetched, OTHER_GLIBCS, RELEASE_UNDER_TEST } from '../helpers/glibcs';
import { imageOfProcess } from '../helpers/proc-image';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// gdb and the decode read another process; nothing of this process's heap is read.
heapRoomNotNeeded();

interface GdbChunk { address: string; size: number; fd_nextsize?: string; bk_nextsize?: string }
interface GdbArena {
  address: string;
  fields: Record<string, unknown>;
  topSize: number;
  heaps: Record<string, unknown>[];
  /** null where malloc_state has no fastbinsY (2.43 on). */
  fastbins: GdbChunk[][] | null;
  bins: Record<string, GdbChunk[]>;
}
interface GdbThread { lwp: number; arena: string; address?: string; fields?: Record<string, unknown>; lists?: string[][] }
interface GdbState {
  arenas: GdbArena[];
  mp_: Record<string, unknown>;
  /** Both null where glibc has no global_max_fast (2.43 on). */
  global_max_fast: number | null;
  global_max_fast_address: string | null;
  threads: GdbThread[];
}

/** A glibc to run the fixture on: this machine's, or one fetched into test/.glibcs. */
interface Target {
  glibc: string;
  /** Whose it is, for the describe's name. */
  whose: string;
  /** cc's and gdb's options for it. */
  cc: readonly string[];
  gdb: readonly string[];
  /** Why it cannot run here, where it cannot. */
  cannot?: string;
  /** This process maps the same libc: global_max_fast's offset is measured in forks of this process. */
  ours: boolean;
}

const TARGETS: Target[] = [
  { glibc: glibcVersion(), whose: "this machine's", cc: [], gdb: hereGdbFlags(), ours: true },
  // Releases whose layout is known and whose debug symbols are fetched; the others are refused (test/remote/other-glibcs.test.ts).
  // Under scripts/test-on-release.mjs its release is this machine's, above.
  ...OTHER_GLIBCS.filter((g) => g.gdb && KNOWN_GLIBC_VERSIONS.includes(g.glibc) && g !== RELEASE_UNDER_TEST).map((g): Target => {
    const cannot = notFetched(g);
    return { glibc: g.glibc, whose: `${g.name}'s`, cc: cannot === undefined ? ccFlagsFor(g) : [], gdb: cannot === undefined ? gdbFlagsFor(g) : [], cannot, ours: false };
  }),
];

/** A value as gdb's script prints it: pointers as hex strings, other integers as numbers. */
const asGdb = (v: bigint | number, pointer: boolean): string | number => (pointer ? hex(v) : Number(v));

for (const target of TARGETS) describe(`the allocator state of a process with threads, against gdb (glibc ${target.glibc}, ${target.whose})`, () => {
  const layout = layoutFor(target.glibc);
  let skip = target.cannot ?? gdbMissing();
  let fixture: AllocatorFixture | undefined;
  let gdb: GdbState;
  let ours: AllocatorState;

  beforeAll(async () => {
    if (skip !== undefined) return;
    const started = await startAllocatorFixture('allocator-state', target.cc);
    if (typeof started === 'string') {
      skip = started;
      return;
    }
    fixture = started;
    const pid = fixture.child.pid!;
    const { image, regions } = imageOfProcess(pid, layout);
    const libc = libcFileOf(regions, pid, libcIdentityOf(pid, regions, libcDataRegions(regions)[0]).buildId)!;
    ours = decodeAllocator(image, { maxFast: { measured: maxFastOffset(libc), libc: libc.key } });
    // The version heapscope reads in the process's memory is the one it runs on.
    expect(attach(pid).glibc).toBe(target.glibc);
    const answer = gdbPython(pid, path.join(__dirname, '..', 'fixtures', 'allocator-state.py'), target.gdb);
    if ('skip' in answer) skip = answer.skip;
    else gdb = answer.json as GdbState;
  });

  afterAll(() => {
    fixture?.stop();
  });

  it('builds a state with chunks in every kind of list (else the comparisons below prove little)', (context) => {
    if (skip !== undefined) context.skip(skip);
    const main = ours.bins[0];
    const held = (bins: { count: number }[]) => bins.filter((b) => b.count > 0).length;
    // Without fastbins (2.43), the chunks the tcache refuses of the fastbin runs' sizes (0x20, 0x30, 0x70) lie in small bins.
    if (layout.fastbins) expect(held(main.fastbins)).toBeGreaterThanOrEqual(3);
    else expect(main.smallbins.filter((b) => [2, 3, 7].includes(b.index) && b.count > 0)).toHaveLength(3);
    expect(main.unsorted[0].count).toBeGreaterThanOrEqual(2);
    expect(held(main.smallbins)).toBeGreaterThanOrEqual(layout.fastbins ? 2 : 5);
    expect(main.largebins.find((b) => b.index === 65)!.chunks.filter((c) => c.fdNextsize !== undefined)).toHaveLength(3);
    expect(ours.arenas.arenas[0].lastRemainder).not.toBe(0n);
    expect(ours.arenas.arenas).toHaveLength(4);
    expect(ours.arenas.arenas.map((a) => a.heaps.length).sort()).toEqual([0, 1, 1, 2]);
    for (const b of ours.bins.slice(1)) expect(held(layout.fastbins ? b.fastbins : b.smallbins.filter((s) => s.index <= 5))).toBe(1);
    expect(ours.tcaches.tcaches.filter((t) => t.bins.some((b) => b.count > 0))).toHaveLength(4);
    expect(ours.bins.every((b) => b.complete)).toBe(true);
  });

  it('every arena in next order, each malloc_state field by field, and its top chunk\'s size', (context) => {
    if (skip !== undefined) context.skip(skip);
    const decoded = ours.arenas.arenas.map((a, i) => {
      const s = ours.arenas.states[i];
      return {
        address: hex(a.address),
        fields: {
          mutex: a.mutex, flags: a.flags,
          ...(layout.fastbins ? { have_fastchunks: a.haveFastchunks, fastbinsY: s.fastbins.map((p) => hex(p)) } : {}),
          top: hex(a.top.address), last_remainder: hex(a.lastRemainder), bins: s.bins.flatMap((b) => [hex(b.fd), hex(b.bk)]),
          binmap: s.binmap, next: hex(a.next), next_free: hex(a.nextFree), attached_threads: Number(a.attachedThreads),
          system_mem: Number(a.systemMem), max_system_mem: Number(a.maxSystemMem),
        },
        topSize: Number(a.top.size),
      };
    });
    expect(ours.arenas.complete).toBe(true);
    expect(decoded).toEqual(gdb.arenas.map(({ address, fields, topSize }) => ({ address, fields, topSize })));
  });

  it('every thread arena\'s heaps, newest first along prev: heap_info field by field', (context) => {
    if (skip !== undefined) context.skip(skip);
    const struct = layout.heapInfo;
    const decoded = ours.arenas.arenas.map((a) => a.heaps.map((h) => ({
      address: hex(h.address), ar_ptr: hex(h.arPtr), prev: hex(h.prev), size: Number(h.size), mprotect_size: Number(h.mprotectSize),
      ...(h.pagesize === undefined ? {} : { pagesize: Number(h.pagesize) }),
    })));
    // pad is padding: not decoded.
    const fromGdb = gdb.arenas.map((a) => a.heaps.map(({ pad: _pad, ...rest }) => rest));
    expect(decoded).toEqual(fromGdb);
    expect(struct.fields.map((f) => f.name)).toEqual(['ar_ptr', 'prev', 'size', 'mprotect_size', ...(ours.arenas.arenas[1].heaps[0].pagesize === undefined ? [] : ['pagesize']), 'pad']);
    expect(ours.arenas.arenas.every((a) => a.heapsReason === undefined)).toBe(true);
  });

  it('every fastbin, chunk by chunk (links revealed where safe-linked); none from 2.43, where gdb finds no fastbinsY', (context) => {
    if (skip !== undefined) context.skip(skip);
    const decoded = ours.bins.map((b) => (layout.fastbins ? b.fastbins.map((bin) => bin.chunks.map((c) => ({ address: hex(c.address), size: c.size }))) : b.fastbins));
    expect(decoded).toEqual(gdb.arenas.map((a) => a.fastbins ?? []));
    expect(gdb.arenas.every((a) => a.fastbins === null)).toBe(!layout.fastbins);
  });

  it('the unsorted, every small and every large bin, chunk by chunk, with the nextsize links of each size\'s first chunk', (context) => {
    if (skip !== undefined) context.skip(skip);
    const decoded = ours.bins.map((b) => {
      const out: Record<string, unknown[]> = {};
      for (const bin of [...b.unsorted, ...b.smallbins, ...b.largebins]) {
        out[bin.index] = bin.chunks.map((c) => ({
          address: hex(c.address), size: c.size,
          ...(c.fdNextsize === undefined ? {} : { fd_nextsize: hex(c.fdNextsize), bk_nextsize: hex(c.bkNextsize!) }),
        }));
      }
      out[127] = [];
      return out;
    });
    const fromGdb = gdb.arenas.map((a) => Object.fromEntries(Object.entries(a.bins).map(([index, chunks]) => [index, chunks.map((c, k) => {
      // Only the first chunk of each size's run carries live nextsize links; gdb prints the stale words of the rest too.
      const leader = Number(index) >= 64 && (k === 0 || chunks[k - 1].size !== c.size);
      return leader ? c : { address: c.address, size: c.size };
    })])));
    expect(decoded).toEqual(fromGdb);
  });

  it('mp_ field by field, every field with its meaning', (context) => {
    if (skip !== undefined) context.skip(skip);
    const types = new Map(layout.mallocPar.fields.map((f) => [f.name, f.type]));
    const decoded = Object.fromEntries(ours.params.fields.map((f) => [f.name, asGdb(f.value as bigint | number, types.get(f.name) === 'pointer')]));
    expect(decoded).toEqual(gdb.mp_);
    for (const f of ours.params.fields) expect(f.meaning).not.toBe('');
  });

  it('global_max_fast, at the offset from main_arena measured in forks of this process where it maps the same libc file; else not read, saying so; from 2.43 gdb finds none, and heapscope says it is absent', (context) => {
    if (skip !== undefined) context.skip(skip);
    if (layout.globalMaxFast === 'none') {
      expect(gdb.global_max_fast).toBeNull();
      expect(ours.params.globalMaxFast).toEqual({ found: false, absent: true, reason: expect.stringMatching(/^glibc 2\.\d+ has no global_max_fast/) });
      return;
    }
    if (!target.ours) {
      expect(ours.params.globalMaxFast).toEqual({ found: false, reason: expect.stringMatching(/^its offset from main_arena is not known: it is measured in forks of this process, which maps another libc /) });
      return;
    }
    expect(ours.params.globalMaxFast).toMatchObject({ found: true, value: gdb.global_max_fast });
    expect(ours.params.globalMaxFast.found && hex(ours.params.globalMaxFast.address)).toBe(gdb.global_max_fast_address);
  });

  it('every thread\'s tcache: counts, entries and every list, and no other struct taken for one', (context) => {
    if (skip !== undefined) context.skip(skip);
    const withCache = gdb.threads.filter((t) => t.address !== undefined);
    expect(withCache).toHaveLength(4);
    const decoded = ours.tcaches.tcaches.map((t) => ({
      address: hex(t.address + 16n),
      counts: t.struct.counts,
      entries: t.struct.entries.map((e) => hex(e)),
      lists: t.bins.map((b) => b.chunks.map((c) => hex(c.address + 16n))),
      reasons: t.bins.filter((b) => b.reason !== undefined).map((b) => b.reason),
    }));
    // counts, or from 2.42 num_slots (the free slots left): the struct's own array, under its name in this release.
    const countsField = layout.tcache[0].countsField;
    const fromGdb = withCache.map((t) => ({ address: t.address!, counts: t.fields![countsField], entries: t.fields!.entries, lists: t.lists!, reasons: [] }));
    const byAddress = (a: { address: string }, b: { address: string }) => (a.address < b.address ? -1 : 1);
    expect(decoded.sort(byAddress)).toEqual(fromGdb.sort(byAddress));
    // Each thread's struct lies in the arena the thread is attached to.
    for (const t of withCache) {
      expect(hex(ours.tcaches.tcaches.find((c) => hex(c.address + 16n) === t.address)!.arena)).toBe(t.arena);
    }
  });

  it('places every chunk: each listed chunk is a chunk of the walk, and every free chunk is listed', (context) => {
    if (skip !== undefined) context.skip(skip);
    expect(ours.placement.strays).toEqual([]);
    expect(ours.placement.regions.flatMap((r) => r.chunks).filter((c) => c.place === 'unlisted')).toEqual([]);
    expect(ours.walks.map((w) => w.reason)).toEqual(ours.walks.map(() => undefined));
    const fast = ours.placement.regions.flatMap((r) => r.chunks).filter((c) => c.place === 'fastbin').length;
    expect(fast).toBe(gdb.arenas.reduce((n, a) => n + (a.fastbins ?? []).flat().length, 0));
  });
});
