// Locating malloc's globals in this process and in fresh children, checked
// against what glibc itself reports: the heap walk's top chunk, mallinfo2,
// the arenas behind the thread heaps, and values set through mallopt and
// GLIBC_TUNABLES.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { followArenas } from '../../lib/allocator/arena-chain';
import { layoutFor } from '../../lib/allocator/layouts';
import { libcDataRegions } from '../../lib/allocator/libc-data';
import { locateMallocGlobals, MallocGlobals } from '../../lib/allocator/locate';
import { Snapshot } from '../../lib/allocator/snapshot';
import { glibcVersion, Mallinfo, maps, readMemory, runPlan, walkHeap } from '../../lib/index';
import { chunkSize } from '../../lib/walk/chunk';
import { walkMainHeap } from '../../lib/walk/main-arena';
import { SYNC_CHILD } from '../helpers/sync-child';
import { HERE, tcacheMaxBytesFor } from '../helpers/glibc-here';

const root = path.join(__dirname, '..', '..');
const layout = layoutFor(glibcVersion());

interface Copy {
  data: Snapshot[];
  heap: Snapshot;
  programBreak: bigint;
  mallinfo: Mallinfo;
}

/**
 * libc's data and [heap] up to the break, copied in one native call between
 * two mallinfo2 calls and two break reads; retaken (a few times at most)
 * while another thread changed malloc's totals or the break in between.
 */
function copyThisProcess(): Copy {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const regions = maps();
    const libc = libcDataRegions(regions);
    const heap = regions.find((r) => r.kind === 'heap')!;
    const { steps } = runPlan([
      { op: 'mallinfo' }, { op: 'break' },
      ...libc.map((r) => ({ op: 'read' as const, address: r.start, length: r.size })),
      { op: 'read', address: heap.start, length: heap.size },
      { op: 'break' }, { op: 'mallinfo' },
    ]);
    const [m1, b1] = steps;
    const [b2, m2] = steps.slice(-2);
    if (b1.programBreak !== heap.end || b2.programBreak !== heap.end || JSON.stringify(m1.mallinfo) !== JSON.stringify(m2.mallinfo)) continue;
    return {
      data: libc.map((r, i) => ({ base: r.start, bytes: steps[2 + i].bytes! })),
      heap: { base: heap.start, bytes: steps[2 + libc.length].bytes! },
      programBreak: heap.end,
      mallinfo: m1.mallinfo!,
    };
  }
  throw new Error('malloc kept changing while libc\'s data and [heap] were copied');
}

function located(copy: Copy, others?: Snapshot[]): MallocGlobals {
  return locateMallocGlobals({ layout, data: copy.data, heap: { start: copy.heap.base, end: copy.programBreak }, ...(others ? { others } : {}) });
}

describe(`locating malloc's globals in this process (glibc ${glibcVersion()})`, () => {
  it('finds main_arena, whose top is the heap walk\'s top chunk and keepcost, and mp_, whose mmap counts are mallinfo2\'s', () => {
    const copy = copyThisProcess();
    const g = located(copy);
    expect(g.mainArena.found).toBe(true);
    expect(g.mallocPar.found).toBe(true);
    if (!g.mainArena.found || !g.mallocPar.found) return;
    const arena = g.mainArena.value;
    expect(arena.state).toBe('heap');
    const walk = walkMainHeap(copy.heap.bytes, copy.heap.base, copy.programBreak);
    expect(walk.ending).toBe('top');
    expect(arena.top).toBe(copy.heap.base + BigInt(walk.table.offsets[walk.top]));
    expect(chunkSize(walk.table, walk.top)).toBe(copy.mallinfo.keepcost);
    // sysmalloc adds each sbrk to system_mem, and [heap] starts page-aligned, so nothing is lost to alignment.
    expect(arena.systemMem).toBe(copy.programBreak - copy.heap.base);
    const par = g.mallocPar.value;
    expect(par.sbrkBase).toBe(copy.heap.base);
    expect(par.nMmaps).toBe(copy.mallinfo.hblks);
    expect(par.mmappedMem).toBe(BigInt(copy.mallinfo.hblkhd));
  });

  it('follows main_arena.next around every arena, which are those of the thread heaps', () => {
    const before = new Set(walkHeap({ arena: 'all' }).threadHeaps.map((h) => h.arena));
    const copy = copyThisProcess();
    const first = located(copy);
    expect(first.mainArena.found).toBe(true);
    if (!first.mainArena.found) return;
    const main = first.mainArena.address;
    // Copy each arena's malloc_state where the list leads, until it closes.
    const others: Snapshot[] = [];
    let chain = followArenas(main, [...copy.data, ...others], layout);
    while (chain.leftCopies === true && others.length < 1000) {
      const at = chain.arenas[chain.arenas.length - 1];
      others.push({ base: at, bytes: readMemory(at, layout.mallocState.size) });
      chain = followArenas(main, [...copy.data, ...others], layout);
    }
    expect(chain.complete).toBe(true);
    const after = new Set(walkHeap({ arena: 'all' }).threadHeaps.map((h) => h.arena));
    for (const arena of before) expect(chain.arenas).toContain(arena);
    for (const arena of chain.arenas.slice(1)) expect(after.has(arena)).toBe(true);
    const again = located(copy, others);
    expect(again.mainArena.found && again.mainArena.evidence.join('\n')).toMatch(
      chain.arenas.length === 1 ? /next points back to itself/ : new RegExp(`returns to it after ${chain.arenas.length} arenas`),
    );
  });
});

describe('locating malloc\'s globals in a child that set them through mallopt and GLIBC_TUNABLES', () => {
  it('reads back every value set, and finds global_max_fast by the word mallopt(M_MXFAST) moves', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const h = require('heapscope');
      const { layoutFor } = require('./dist/allocator/layouts');
      const { libcDataRegions } = require('./dist/allocator/libc-data');
      const { locateMallocGlobals } = require('./dist/allocator/locate');
      for (const [p, v] of [['M_TOP_PAD', 196608], ['M_MMAP_THRESHOLD', 300000], ['M_TRIM_THRESHOLD', 5242880],
        ['M_ARENA_MAX', 3], ['M_ARENA_TEST', 5], ['M_MMAP_MAX', 777]]) h.mallopt(p, v);
      const copy = () => { const libc = libcDataRegions(h.maps());
        const { steps } = h.runPlan(libc.map((r) => ({ op: 'read', address: r.start, length: r.size })));
        return libc.map((r, i) => ({ base: r.start, bytes: steps[i].bytes })); };
      const before = copy();
      h.mallopt('M_MXFAST', 48);
      const after = copy();
      const heap = h.maps().find((r) => r.kind === 'heap');
      const g = locateMallocGlobals({ layout: layoutFor(h.glibcVersion()), data: before, heap: { start: heap.start, end: h.programBreak() } },
        { after, request: 48 });
      console.log(JSON.stringify({ par: g.mallocPar.value, maxFast: g.globalMaxFast },
        (k, v) => typeof v === 'bigint' ? v.toString() : v));`], {
      ...SYNC_CHILD,
      cwd: root, encoding: 'utf8',
      env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.tcache_count=3:glibc.malloc.tcache_max=500:glibc.malloc.mxfast=96' },
    });
    const seen = JSON.parse(out);
    expect(seen.par).toMatchObject({
      topPad: '196608', mmapThreshold: '300000', trimThreshold: '5242880', arenaMax: '3', arenaTest: '5', nMmapsMax: 777,
      noDynThreshold: 1, tcacheCount: '3', tcacheMaxBytes: String(tcacheMaxBytesFor(500)),
      // csize2tidx (request2size (500)) + 1: chunks up to 512 bytes, 31 bins.
      tcacheBins: '31',
    });
    // The tunable set it to 96 before main(); read, not assumed. From 2.43 there is none to find.
    if (!HERE.fastbins) {
      expect(seen.maxFast).toMatchObject({ found: false, code: 'absent' });
      return;
    }
    expect(seen.maxFast).toMatchObject({ found: true, value: { value: 96 } });
    expect(seen.maxFast.evidence.at(-1)).toBe('went from 96 to 48 with mallopt(M_MXFAST, 48)');
  });
});
