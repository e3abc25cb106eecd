import { describe, expect, it } from 'vitest';
import { type MallocInfo, mallocInfo } from '../lib/malloc-info';
import { PlanStep, runPlan, StepResult } from '../lib/plan';
import {
  binIndex, binRange, DEFAULT_GLOBAL_MAX_FAST, DEFAULT_MXFAST, fastbinIndex, globalMaxFast, largebinIndex,
  MALLOC_ALIGNMENT, MAX_FAST_SIZE, MAX_TCACHE_SIZE, MIN_LARGE_SIZE, MINSIZE, mmappedChunkSize, NBINS, NSMALLBINS,
  requestToChunkSize, SIZE_SZ, smallbinIndex, TCACHE_FILL_COUNT, TCACHE_MAX_BINS, tcacheIndex,
  usableSizeOf,
} from '../lib/size-classes';
import { sizeClass } from '../lib/size-class';
import { glibcVersion, pageSize } from '../lib/stats';
import { PTRDIFF_MAX } from '../lib/validate';
import { liveMallocPar } from '../lib/allocator/live-par';
import { HERE, MMAPPED_TAIL } from './helpers/glibc-here';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Builds a plan; `add` returns the step's index so later steps can refer to it. */
function planBuilder(): { steps: PlanStep[]; add: (step: PlanStep) => number } {
  const steps: PlanStep[] = [];
  return { steps, add: (step) => steps.push(step) - 1 };
}

function ok(result: StepResult): StepResult {
  expect(result.status, `step ${result.index} (${result.op})`).toBe('ok');
  return result;
}

/** malloc(a), freed, then malloc(b): the steps of one pair (see the tcache test), `ma` and `mb` the two mallocs'. */
function pairSteps(add: (step: PlanStep) => number, a: number, b: number): { ma: number; mb: number } {
  add({ op: 'free', step: add({ op: 'malloc', size: a }) });
  const ma = add({ op: 'malloc', size: a });
  add({ op: 'header', step: ma });
  add({ op: 'free', step: ma });
  const mb = add({ op: 'malloc', size: b });
  add({ op: 'free', step: mb });
  return { ma, mb };
}

describe('size-class math (glibc macros, x86_64)', () => {
  it('has the x86_64 constants', () => {
    expect([SIZE_SZ, MALLOC_ALIGNMENT, MINSIZE]).toEqual([8, 16, 32]);
    expect([TCACHE_MAX_BINS, TCACHE_FILL_COUNT, NBINS, NSMALLBINS]).toEqual([64, 7, 128, 64]);
    expect([MAX_TCACHE_SIZE, DEFAULT_MXFAST, MAX_FAST_SIZE, MIN_LARGE_SIZE]).toEqual([1032, 128, 160, 1024]);
    expect(DEFAULT_GLOBAL_MAX_FAST).toBe(0x80);
  });

  it('request2size', () => {
    expect(requestToChunkSize(0)).toBe(32);
    expect(requestToChunkSize(24)).toBe(32);
    expect(requestToChunkSize(25)).toBe(48);
    expect(requestToChunkSize(40)).toBe(48);
    expect(requestToChunkSize(41)).toBe(64);
    expect(requestToChunkSize(MAX_TCACHE_SIZE)).toBe(0x410);
    expect(requestToChunkSize(1033)).toBe(0x420);
    // The largest request whose chunk size is an exact number (2^53 − 16); one more is a RangeError.
    expect(requestToChunkSize(2 ** 53 - 24)).toBe(2 ** 53 - 16);
    expect(requestToChunkSize(2n ** 53n - 24n)).toBe(2 ** 53 - 16);
    expect(() => requestToChunkSize(2 ** 53 - 23)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(requestToChunkSize(100n)).toBe(requestToChunkSize(100));
  });

  it('csize2tidx', () => {
    expect(tcacheIndex(0x20)).toBe(0);
    expect(tcacheIndex(requestToChunkSize(1032))).toBe(63);
    expect(tcacheIndex(0x420)).toBeUndefined();
    // tidx2usize(i) is the largest request of bin i.
    for (let i = 0; i < TCACHE_MAX_BINS; i++) {
      const usize = i * 16 + 24;
      expect(tcacheIndex(requestToChunkSize(usize))).toBe(i);
      expect(tcacheIndex(requestToChunkSize(usize + 1))).toBe(i === 63 ? undefined : i + 1);
    }
  });

  it('fastbin_index and set_max_fast', () => {
    expect(fastbinIndex(0x20)).toBe(0);
    expect(fastbinIndex(0x80)).toBe(6);
    expect(fastbinIndex(0x90)).toBeUndefined();
    expect(globalMaxFast(DEFAULT_MXFAST)).toBe(0x80);
    expect(globalMaxFast(MAX_FAST_SIZE)).toBe(0xa0);
    expect(fastbinIndex(0xa0, globalMaxFast(MAX_FAST_SIZE))).toBe(8);
    // M_MXFAST 0 disables fastbins: global_max_fast becomes 16, below any chunk.
    expect(globalMaxFast(0)).toBe(16);
    expect(fastbinIndex(0x20, globalMaxFast(0))).toBeUndefined();
  });

  it('smallbin_index, largebin_index_64, bin_index', () => {
    expect(smallbinIndex(0x20)).toBe(2);
    expect(smallbinIndex(1008)).toBe(63);
    expect(smallbinIndex(1024)).toBeUndefined();
    expect(largebinIndex(1008)).toBeUndefined();
    const large: [number, number][] = [
      [1024, 64], [1088, 65], [3120, 96], [3136, 97], [3584, 98], [10 * KiB + 496, 111], [10 * KiB + 512, 112],
      [40 * KiB, 120], [64 * KiB - 16, 120], [64 * KiB, 121], [160 * KiB, 124], [256 * KiB, 125],
      [512 * KiB, 126], [MiB, 126],
    ];
    for (const [size, index] of large) expect(largebinIndex(size), `size ${size}`).toBe(index);
    expect(largebinIndex(1n << 40n)).toBe(126);
    expect(binIndex(1008)).toBe(63);
    expect(binIndex(1024)).toBe(64);
  });

  it('binRange inverts bin_index', () => {
    for (let i = 2; i < NSMALLBINS; i++) expect(binRange(i)).toEqual({ min: i * 16, max: i * 16 });
    expect(binRange(64).min).toBe(1024);
    expect(binRange(120)).toEqual({ min: 40960, max: 65520 });
    expect(binRange(126)).toEqual({ min: 512 * 1024, max: undefined });
    // The bins tile the sizes: no gap, no overlap.
    for (let i = 2; i < 126; i++) expect(binRange(i).max! + 16, `bin ${i}`).toBe(binRange(i + 1).min);
    for (let size = 1024; size <= MiB; size += 16) {
      const { min, max } = binRange(binIndex(size));
      if (size < min || (max !== undefined && size > max)) expect.fail(`${size} is outside bin ${binIndex(size)}`);
    }
  });

  it('usable and mmapped sizes', () => {
    expect(usableSizeOf(0x20)).toBe(24);
    expect(usableSizeOf(0x1000, true)).toBe(0xff0);
    expect(usableSizeOf(0x20n)).toBe(24);
    expect(mmappedChunkSize(MiB, 4096)).toBe(MiB + 4096);
    expect(mmappedChunkSize(MiB - 24, 4096)).toBe(MiB);
    expect(mmappedChunkSize(MiB - 23, 4096)).toBe(MiB + 4096);
    expect(mmappedChunkSize(BigInt(MiB), 4096n)).toBe(MiB + 4096);
    // Page sizes past 2^31, where number bitwise operators would truncate.
    expect(mmappedChunkSize(1, 2 ** 40)).toBe(2 ** 40);
    expect(mmappedChunkSize(2 ** 40, 2 ** 40)).toBe(2 ** 41);
  });

  it('mmapped sizes from glibc 2.43 (tail 16): the mapping holds a next chunk\'s header past the chunk', () => {
    // Debian's 2.43 gave malloc(300000) a 303104-byte mapping (74 pages) and a chunk 16 bytes short of it (test/fixtures/malloc-info/glibc-2.43.xml's hblkhd).
    expect(mmappedChunkSize(300000, 4096, 16)).toBe(303104 - 16);
    // request2size(MiB − 24) = MiB − 16: with the 16 bytes past it, one MiB exactly; a byte more needs a page more.
    expect(mmappedChunkSize(MiB - 24, 4096, 16)).toBe(MiB - 16);
    expect(mmappedChunkSize(MiB - 23, 4096, 16)).toBe(MiB + 4096 - 16);
    expect(mmappedChunkSize(MiB, 4096, 0)).toBe(mmappedChunkSize(MiB, 4096));
    expect(usableSizeOf(MiB - 16, true, 16)).toBe(MiB - 24);
    expect(usableSizeOf(MiB, true, 0)).toBe(MiB - 16);
    for (const tail of [8, -16, '16', 16n]) {
      expect(() => mmappedChunkSize(MiB, 4096, tail as never)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      expect(() => usableSizeOf(MiB, true, tail as never)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
  });

  it('sizeClass, on the release it is given', () => {
    expect(sizeClass(24, '2.36')).toEqual({
      request: 24, glibc: '2.36', chunkSize: 32, usableSize: 24, tcacheIndex: 0, fastbinIndex: 0, binIndex: 2, binKind: 'small',
    });
    expect(sizeClass(24n, '2.36')).toEqual(sizeClass(24, '2.36'));
    expect(sizeClass(0x88, '2.42')).toEqual({
      request: 0x88, glibc: '2.42', chunkSize: 0x90, usableSize: 0x88, tcacheIndex: 7, binIndex: 9, binKind: 'small',
    });
    expect(sizeClass(2000, '2.28')).toEqual({
      request: 2000, glibc: '2.28', chunkSize: 2016, usableSize: 2008, binIndex: 79, binKind: 'large',
    });
    expect('tcacheIndex' in sizeClass(2000, '2.36')).toBe(false);
    // 2.43 removed the fastbins: the chunk fastbin_index would put in fastbin 0 has none there.
    expect(sizeClass(24, '2.43')).toEqual({
      request: 24, glibc: '2.43', chunkSize: 32, usableSize: 24, tcacheIndex: 0, binIndex: 2, binKind: 'small',
    });
  });

  it("sizeClass follows this process's glibc unless told another, and refuses a release whose layout is unknown", () => {
    expect(sizeClass(24)).toEqual(sizeClass(24, glibcVersion()));
    expect('fastbinIndex' in sizeClass(24)).toBe(HERE.fastbins);
    for (const unknown of ['2.27', '2.44', '3.0', '']) {
      expect(() => sizeClass(24, unknown)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_GLIBC_LAYOUT' }));
    }
    expect(() => sizeClass(24, 2.36 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('rejects what is not a size', () => {
    const range = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' };
    expect(() => requestToChunkSize(-1)).toThrow(expect.objectContaining(range));
    expect(() => requestToChunkSize(PTRDIFF_MAX + 1n)).toThrow(expect.objectContaining(range));
    // glibc would try PTRDIFF_MAX (and fail with ENOMEM); its chunk size is no exact number.
    expect(() => requestToChunkSize(PTRDIFF_MAX)).toThrow(expect.objectContaining(range));
    expect(() => sizeClass(PTRDIFF_MAX)).toThrow(expect.objectContaining(range));
    expect(() => requestToChunkSize(1.5)).toThrow(expect.objectContaining(range));
    expect(() => requestToChunkSize('8' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // A raw size word (flags set) or a non-chunk size is a mistake, not a size class.
    for (const bad of [0x21, 0x28, 16, 0]) expect(() => tcacheIndex(bad)).toThrow(expect.objectContaining(range));
    expect(() => binIndex(0x411)).toThrow(expect.objectContaining(range));
    for (const bad of [0, 1, 127, 128, -1, 2.5]) expect(() => binRange(bad)).toThrow(expect.objectContaining(range));
    expect(() => mmappedChunkSize(1, 3000)).toThrow(expect.objectContaining(range));
    expect(() => mmappedChunkSize(1, 2 ** 40 + 16)).toThrow(expect.objectContaining(range));
    expect(() => mmappedChunkSize(1, PTRDIFF_MAX)).toThrow(expect.objectContaining(range));
    // Rounded up to a page, the largest request's mmapped chunk is 2^53: no exact number.
    expect(() => mmappedChunkSize(2 ** 53 - 24, 4096)).toThrow(expect.objectContaining(range));
    // Chunk sizes past 2^53 − 1 cannot be numbers (and no x86_64 chunk is that big).
    expect(() => tcacheIndex(1n << 60n)).toThrow(expect.objectContaining(range));
    expect(() => usableSizeOf(2n ** 53n)).toThrow(expect.objectContaining(range));
    expect(() => fastbinIndex(0x20, 0xb0)).toThrow(expect.objectContaining(range));
    expect(() => globalMaxFast(161)).toThrow(expect.objectContaining(range));
  });
});

describe('size classes against the running glibc', () => {
  it('request2size matches the chunk malloc hands out, for every request 0 … 4096', () => {
    const { steps, add } = planBuilder();
    const probes: { n: number; m: number }[] = [];
    for (let n = 0; n <= 4096; n++) {
      const m = add({ op: 'malloc', size: n });
      add({ op: 'header', step: m });
      add({ op: 'usableSize', step: m });
      add({ op: 'free', step: m });
      probes.push({ n, m });
    }
    const results = runPlan(steps).steps;
    const mismatches: string[] = [];
    let exhausted = 0;
    for (const { n, m } of probes) {
      ok(results[m]);
      const header = ok(results[m + 1]).header!;
      const size = Number(header.size);
      const usable = Number(ok(results[m + 2]).usableSize!);
      const rule = requestToChunkSize(n);
      const extra = size - rule;
      if (header.isMmapped) mismatches.push(`${n}: mmapped`);
      if (usable !== usableSizeOf(size)) mismatches.push(`${n}: usable ${usable} for chunk ${size}`);
      // A free chunk whose split would leave less than MINSIZE is handed out
      // whole, so the chunk may exceed the rule by one alignment step (16).
      if (extra === 0) continue;
      if (extra > 0 && extra < MINSIZE && extra % MALLOC_ALIGNMENT === 0) exhausted++;
      else mismatches.push(`${n}: chunk ${size}, request2size ${rule}`);
    }
    expect(mismatches).toEqual([]);
    console.info(`request2size: ${exhausted} of 4097 requests got an exhausted chunk 16 bytes over the rule`);
  });

  it('requests share a tcache bin exactly when csize2tidx says so', () => {
    // free(a) puts a's chunk at the head of its tcache bin (LIFO), so a
    // request of the same class gets exactly that address back and one of
    // another class never does, provided the bin was not full when a was
    // freed. A malloc that finds its bin empty refills it from a small bin
    // of the size (up to tcache_count) and returns a chunk from that bin:
    // freed, that chunk finds the tcache full. So a of each pair is taken
    // from the tcache: a first block of a's class is freed right away, which
    // leaves at least one entry (in the bin, or the bin already full), and
    // malloc(a) takes it, leaving room for one. (Taking the bin's last entry
    // first, as this test once did, let malloc(a) refill it: a full run
    // failed on malloc(409) so; the next test case builds that state.)
    //
    // When malloc(a) was handed an exhausted chunk (16 bytes over the
    // rule) that chunk belongs to the next tcache bin, whose fill state the
    // first malloc did not control: such pairs are counted and left out.
    const pairs: [number, number][] = [];
    for (let a = 0; a <= MAX_TCACHE_SIZE; a++) pairs.push([a, a], [a, a + 1], [a, a + 15], [a, a + 16]);
    const { steps, add } = planBuilder();
    const probes: { a: number; b: number; ma: number; mb: number }[] = [];
    for (const [a, b] of pairs) {
      probes.push({ a, b, ...pairSteps(add, a, b) });
    }
    const results = runPlan(steps).steps;
    const wrong: string[] = [];
    let same = 0;
    let different = 0;
    let exhausted = 0;
    for (const { a, b, ma, mb } of probes) {
      const chunkA = Number(ok(results[ma + 1]).header!.size);
      if (chunkA !== requestToChunkSize(a)) {
        expect(chunkA - requestToChunkSize(a), `malloc(${a})`).toBe(16);
        exhausted++;
        continue;
      }
      const reused = ok(results[mb]).address === ok(results[ma]).address;
      const ia = tcacheIndex(chunkA);
      const predicted = ia !== undefined && ia === tcacheIndex(requestToChunkSize(b));
      if (predicted) same++;
      else different++;
      if (reused !== predicted) wrong.push(`malloc(${a}), free, malloc(${b}): reused ${reused}, predicted ${predicted}`);
    }
    expect(wrong).toEqual([]);
    expect(same).toBeGreaterThan(probes.length / 4);
    expect(different).toBeGreaterThan(probes.length / 4);
    console.info(`tcache pairs: ${same} same bin, ${different} different, ${exhausted} left out (exhausted chunk)`);
  });

  it('a pair survives a tcache bin that a malloc refills from its small bin (the state that made the test above flaky)', () => {
    // Forty 0x1b0 chunks freed apart: the tcache bin fills, the rest go to the unsorted bin, and a larger
    // malloc sorts them into small bin 0x1b0. mp_.tcache_count − 1 mallocs then leave one entry in the tcache bin.
    // Each freed block lies between two kept blocks of its own size: a guard of another size (this test
    // once used malloc(24)) may come from that size's tcache bin, elsewhere, and then the blocks carved
    // one after another from the top chunk merge when freed and leave small bin 0x1b0 nearly empty. Blocks
    // taken from the bins before the carving starts may still merge with a free neighbour; forty frees
    // leave far more than the refill below needs (tcache_count + 1: 8, or 17 from 2.43).
    const held = Number(liveMallocPar().tcacheCount);
    const { steps, add } = planBuilder();
    const state = () => {
      const blocks: number[] = [];
      for (let i = 0; i < 80; i++) blocks.push(add({ op: 'malloc', size: 409 }));
      for (let i = 0; i < blocks.length; i += 2) add({ op: 'free', step: blocks[i] });
      add({ op: 'malloc', size: 2000 });
      for (let i = 0; i < held - 1; i++) add({ op: 'malloc', size: 409 });
    };
    state();
    // The old order: the first malloc takes the last entry, malloc(a) refills the bin to tcache_count, and its chunk, freed, cannot go in.
    add({ op: 'malloc', size: 409 });
    const oldA = add({ op: 'malloc', size: 409 });
    add({ op: 'free', step: oldA });
    const oldB = add({ op: 'malloc', size: 409 });
    state();
    const pair = pairSteps(add, 409, 409);
    const r = runPlan(steps).steps;
    expect(ok(r[oldB]).address).not.toBe(ok(r[oldA]).address);
    expect(ok(r[pair.mb]).address).toBe(ok(r[pair.ma]).address);
  });

  it('frees beyond a full tcache bin go to a fastbin exactly for chunks up to 0x80 (from 2.43, which has none, to the arena)', () => {
    // Sixteen chunks of one request class are freed with a mallinfo after
    // each free. Each free shows up as exactly one of three signatures,
    // for the chunk's real size s (an exhausted chunk is 16 bytes over):
    //   tcache:  nothing changes (glibc counts tcache chunks as in use);
    //   fastbin: smblks +1, fsmblks and fordblks + s;
    //   arena:   fordblks + s only (unsorted bin, or coalesced).
    // Per size, the bin held k (0 … 7) entries after the mallocs (they
    // drain it, but a refill from the arena can top it up), so the first
    // 7 − k frees are cached and all later ones must take the fastbin
    // exactly when fastbin_index says so. mallinfo sums every arena and
    // Node's other threads can free into main_arena (a free ≥ 64 KiB
    // consolidates its fastbins): an attempt with a step matching no
    // signature was disturbed and is repeated.
    // A request is handed a free chunk 16 bytes bigger whole (the rest is
    // below MINSIZE): before the targets, drains take such chunks from the
    // tcache, fastbin and small bin of that size (a loaded test process
    // once held ten in its small bin, and 10 of the 16 targets came out
    // exhausted).
    const guard = 0x1f8; // chunk 0x200: no tested class, and keeps the targets apart
    // mp_.tcache_count (7, or 16 from 2.43) and nine frees past it.
    const held = Number(liveMallocPar().tcacheCount);
    const count = held + 9;
    const drains = 32;
    const attempts = 10;
    for (let chunk = 0x20; chunk <= 0xa0; chunk += 0x10) {
      const label = `chunk 0x${chunk.toString(16)}`;
      const disturbed: string[] = [];
      let outcome: { sizes: number[]; kinds: string[] } | undefined;
      for (let attempt = 0; attempt < attempts && outcome === undefined; attempt++) {
        const { steps, add } = planBuilder();
        const targets: number[] = [];
        for (let i = 0; i < drains; i++) add({ op: 'malloc', size: chunk + 16 - SIZE_SZ });
        for (let i = 0; i < count; i++) {
          targets.push(add({ op: 'malloc', size: chunk - SIZE_SZ }));
          add({ op: 'header', step: targets[i] });
          add({ op: 'malloc', size: guard });
        }
        const infos = [add({ op: 'mallinfo' })];
        for (const t of targets) {
          add({ op: 'free', step: t });
          infos.push(add({ op: 'mallinfo' }));
        }
        const results = runPlan(steps).steps;
        const sizes = targets.map((t) => Number(ok(results[t + 1]).header!.size));
        const m = infos.map((i) => ok(results[i]).mallinfo!);
        const kinds = sizes.map((s, j) => {
          const [before, after] = [m[j], m[j + 1]];
          const d = [Number(after.smblks) - Number(before.smblks), Number(after.fsmblks) - Number(before.fsmblks),
            Number(after.fordblks) - Number(before.fordblks), Number(after.arena) - Number(before.arena)].join();
          return d === '0,0,0,0' ? 'tcache' : d === `1,${s},${s},0` ? 'fastbin' : d === `0,0,${s},0` ? 'arena' : d;
        });
        if (kinds.every((kind) => ['tcache', 'fastbin', 'arena'].includes(kind))) outcome = { sizes, kinds };
        else disturbed.push(kinds.join(' '));
      }
      expect(outcome, `${label}: every attempt disturbed:\n${disturbed.join('\n')}`).toBeDefined();
      const { sizes, kinds } = outcome!;
      for (const size of new Set(sizes)) {
        const seen = kinds.filter((_, j) => sizes[j] === size);
        const cached = seen.findIndex((kind) => kind !== 'tcache');
        // sizeClass as this process's release has it: from 2.43, no fastbin.
        const expected = sizeClass(size - SIZE_SZ).fastbinIndex !== undefined ? 'fastbin' : 'arena';
        const where = `${label}, ${seen.length} chunks of size 0x${size.toString(16)}: ${seen.join(' ')}`;
        expect([0, 16], where).toContain(size - chunk);
        if (seen.length > held) expect(cached, where).toBeGreaterThanOrEqual(0);
        if (cached < 0) continue;
        expect(cached, where).toBeLessThanOrEqual(held);
        expect(seen.slice(cached), where).toEqual(Array(seen.length - cached).fill(expected));
      }
      // The class itself must have been tested, not only exhausted chunks.
      expect(sizes.filter((s) => s === chunk).length, label).toBeGreaterThan(held);
    }
  });

  it('mmapped chunks are ALIGN_UP(request2size + SIZE_SZ, page), or from 2.43 ALIGN_UP(request2size + 16, page) − 16', () => {
    // 64 MiB is above any mmap threshold glibc sets itself (at most 32 MiB)
    // and bigger than any thread heap; the smaller ones are mmapped unless
    // a big enough top chunk (or a raised dynamic threshold) serves them,
    // and then they must follow the heap rule instead.
    const requests = [MiB, MiB + 1, 3 * MiB + 12345, 64 * MiB];
    const { steps, add } = planBuilder();
    const at = requests.map((size) => {
      const m = add({ op: 'malloc', size });
      add({ op: 'header', step: m });
      add({ op: 'usableSize', step: m });
      return m;
    });
    const results = runPlan(steps).steps;
    const page = pageSize();
    requests.forEach((n, k) => {
      const header = ok(results[at[k] + 1]).header!;
      const size = Number(header.size);
      const usable = Number(ok(results[at[k] + 2]).usableSize!);
      if (header.isMmapped) {
        expect(size, `malloc(${n})`).toBe(mmappedChunkSize(n, page, MMAPPED_TAIL));
        expect(usable).toBe(usableSizeOf(size, true, MMAPPED_TAIL));
        expect(Number(header.prevSize)).toBe(0);
      } else {
        expect(n, 'only requests below 64 MiB may come from a heap').toBeLessThan(64 * MiB);
        expect([0, 16]).toContain(size - requestToChunkSize(n));
        expect(usable).toBe(usableSizeOf(size));
      }
    });
  });

  it('chunks glibc files in one bin share bin_index, and consecutive bins differ', () => {
    // Put chunks at both ends of every large bin below the mmap threshold
    // into glibc's bins, then check what malloc_info reports, in every
    // arena: all chunks of one <size> entry have the same bin_index, and
    // the entries, which glibc prints in bin order, have strictly
    // increasing indices. A wrong bin boundary puts two of glibc's bins on
    // one index or splits one, once chunks on both sides of it are binned.
    //
    // Placement is not ours to choose, so each size is allocated twice and
    // only chunks whose two neighbours are our own still-live chunks are
    // freed (their sizes survive, no coalescing); a large malloc then sorts
    // the unsorted bin. Node may still take some before malloc_info runs,
    // which only weakens the check, never fails it.
    const { steps, add } = planBuilder();
    const targets: number[] = [];
    for (let i = 64; binRange(i).max! < 120 * KiB; i++) {
      const { min, max } = binRange(i);
      for (const chunk of [min, min, max!, max!]) {
        targets.push(add({ op: 'malloc', size: chunk - SIZE_SZ }));
        add({ op: 'header', step: targets[targets.length - 1] });
      }
    }
    const { steps: results, kept } = runPlan(steps, { keep: true });
    const chunks = targets.map((step) => {
      const { address, size } = ok(results[step + 1]).header!;
      return { step, address, end: address + BigInt(size) };
    });
    const startingAt = new Map(chunks.map((c) => [c.address, c.step]));
    const endingAt = new Map(chunks.map((c) => [c.end, c.step]));
    const chosen = new Set<number>();
    for (const { step, address, end } of chunks) {
      const [prev, next] = [endingAt.get(address), startingAt.get(end)];
      if (prev !== undefined && next !== undefined && !chosen.has(prev) && !chosen.has(next)) chosen.add(step);
    }
    let info: MallocInfo;
    const sorted = new Map<number, { free(): void }>();
    try {
      for (const t of chosen) kept.get(t)!.free();
      for (const [i, allocation] of runPlan([{ op: 'malloc', size: 200 * KiB }], { keep: true }).kept) {
        sorted.set(i, allocation);
      }
      info = mallocInfo();
    } finally {
      for (const [t, allocation] of kept) if (!chosen.has(t)) allocation.free();
      for (const allocation of sorted.values()) allocation.free();
    }

    let largeEntries = 0;
    const problems: string[] = [];
    for (const { nr, sizes } of info.arenas) {
      let lastFast = -1;
      let lastBin = -1;
      for (const { kind, from, to, total, count } of sizes) {
        const where = `heap ${nr}: <size from="${from}" to="${to}" total="${total}" count="${count}"/>`;
        if (kind === 'fastbin') {
          // A fastbin: glibc prints its class, to = chunk size, from = to − 15.
          const index = fastbinIndex(to, globalMaxFast(MAX_FAST_SIZE));
          if (index === undefined || index <= lastFast || lastBin >= 0) problems.push(`fastbin ${where}`);
          lastFast = index ?? lastFast;
          continue;
        }
        // parseMallocInfo calls every line after the first regular bin a bin;
        // one with a fastbin's shape there is a fastbin out of order.
        if (to - from === MALLOC_ALIGNMENT - 1) {
          problems.push(`fastbin after bin ${lastBin}: ${where}`);
          continue;
        }
        // Regular bins print raw size words: clear the flag bits.
        const [low, high] = [from - (from % 8), to - (to % 8)];
        const index = binIndex(low);
        if (binIndex(high) !== index) problems.push(`bin ${index} vs ${binIndex(high)}: ${where}`);
        if (index <= lastBin) problems.push(`bin ${index} after ${lastBin}: ${where}`);
        if (index < NSMALLBINS && low !== high) problems.push(`small bin with two sizes: ${where}`);
        if (index >= NSMALLBINS) largeEntries++;
        lastBin = index;
      }
    }
    expect(problems).toEqual([]);
    console.info(`malloc_info: ${chosen.size} chunks binned, ${largeEntries} non-empty large bins checked`);
    // Our chunks cover 58 large bins; demand that most showed up.
    expect(largeEntries).toBeGreaterThanOrEqual(30);
  });
});
