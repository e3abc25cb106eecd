// Decoding copies corrupted on purpose: every broken list must end with a
// reason and keep the chunks read before the break; nothing may throw or
// loop. The copies are of test/fixtures/allocator-state.c, whose lists are
// known, taken once; each case corrupts its own clone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArenaList, decodeArenas } from '../../lib/allocator/arenas';
import { ArenaBins, decodeBins } from '../../lib/allocator/bins';
import { AllocatorImage } from '../../lib/allocator/image';
import { layoutFor } from '../../lib/allocator/layouts';
import { copiedMemory } from '../../lib/allocator/memory-source';
import { protectPointer } from '../../lib/allocator/safe-linking';
import { PLACE_KINDS, placeColumns, placementProblems } from '../../lib/allocator/places';
import { AllocatorState, decodeAllocator } from '../../lib/allocator/state';
import { chunkSize } from '../../lib/walk/chunk';
import { offsetOf } from '../../lib/allocator/struct-layout';
import { glibcVersion } from '../../lib/stats';
import { mergedRanges } from '../../lib/address-ranges';
import { outsideMain, outsideNow, structureTornReason, widens } from '../../lib/allocator/take-snapshot';
import { parseMaps } from '../../lib/maps';
import { AllocatorFixture, startAllocatorFixture } from '../helpers/allocator-fixture';
import { imageOfProcess } from '../helpers/proc-image';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { NO_FASTBINS } from '../helpers/glibc-here';

// The copies are of another process: this process's own room does not matter.
heapRoomNotNeeded();

const layout = layoutFor(glibcVersion());
let fixture: AllocatorFixture | undefined;
let skip: string | undefined;
let image: AllocatorImage;
let clean: AllocatorState;

beforeAll(async () => {
  const started = await startAllocatorFixture();
  if (typeof started === 'string') {
    skip = started;
    return;
  }
  fixture = started;
  image = imageOfProcess(fixture.child.pid!, layout).image;
  clean = decodeAllocator(image);
});

afterAll(() => fixture?.stop());

/** The image with `bytes` written at each address, in clones of the ranges written to. */
function corrupt(writes: [address: bigint, bytes: Buffer][]): AllocatorImage {
  const ranges = [...image.memory.ranges];
  for (const [address, bytes] of writes) {
    const i = ranges.findIndex((x) => address >= x.base && address + BigInt(bytes.length) <= x.base + BigInt(x.bytes.length));
    if (i < 0) throw new Error(`0x${address.toString(16)} is not in the copies`);
    if (ranges[i].bytes === image.memory.ranges[i].bytes) ranges[i] = { ...ranges[i], bytes: Buffer.from(ranges[i].bytes) };
    (ranges[i].bytes as Buffer).set(bytes, Number(address - ranges[i].base));
  }
  return { ...image, memory: copiedMemory(ranges) };
}

/** `img` read through a source that offers no reads by number: the list walks take their bigint path only. */
function bigintOnly(img: AllocatorImage): AllocatorImage {
  expect(img.memory.numbered).toBeDefined();
  const { ranges, read, word } = img.memory;
  return { ...img, memory: { ranges, read, word } };
}

/**
 * Arenas and bins decoded from `img` at the clean copy's main_arena:
 * corrupting main_arena itself would stop the locator first. The bins are
 * decoded twice, and must agree: by number (the lists' fast path) and by
 * bigint alone.
 */
function decodeAt(img: AllocatorImage): { arenas: ArenaList; bins: ArenaBins[] } {
  const arenas = decodeArenas(img, clean.mainArena, clean.params.values);
  const bins = arenas.arenas.map((a, i) => decodeBins(img, a, arenas.states[i]));
  expect(arenas.arenas.map((a, i) => decodeBins(bigintOnly(img), a, arenas.states[i]))).toEqual(bins);
  return { arenas, bins };
}

/** decodeAllocator(img), whose bins and tcaches must agree with a decode by bigint alone (see decodeAt). */
function decodeChecked(img: AllocatorImage): AllocatorState {
  const s = decodeAllocator(img);
  const slow = decodeAllocator(bigintOnly(img));
  expect(slow.bins).toEqual(s.bins);
  expect(slow.tcaches).toEqual(s.tcaches);
  return s;
}

/** The clean copy's signed 32-bit word at `address`. */
const readInt32 = (address: bigint): number => Buffer.from(image.memory.read(address, 4)).readInt32LE(0);
const word = (v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};
/** A fastbin or tcache link as glibc stores it at `at`. */
const link = (at: bigint, to: bigint): Buffer => word(layout.safeLinking ? protectPointer(at, to) : to);

/** mp_.tcache_count as the clean copy has it: 7, or 16 from 2.43. */
const tcacheCount = () => Number(clean.params.values.tcacheCount);

const main = () => clean.arenas.arenas[0];
const mainBins = () => clean.bins[0];
const fastbin0 = () => mainBins().fastbins[0].chunks.map((c) => c.address);
const smallbin16 = () => mainBins().smallbins.find((b) => b.index === 16)!.chunks.map((c) => c.address);
const field = (name: string) => BigInt(offsetOf(layout.mallocState, name));

describe('decoding corrupted copies: a reason, never a throw or a hang', () => {
  it('the clean copy decodes with no reason anywhere (so each reason below comes from its corruption)', (context) => {
    if (skip !== undefined) context.skip(skip);
    expect(clean.bins.every((b) => b.complete)).toBe(true);
    expect(clean.tcaches.tcaches.every((t) => t.complete)).toBe(true);
    // The cases below corrupt the first three of each list (13 on this machine's 2.36: the runs overflow a tcache bin of 16 too).
    if (NO_FASTBINS === undefined) expect(fastbin0().length).toBeGreaterThanOrEqual(3);
    else expect(mainBins().fastbins).toEqual([]);
    expect(smallbin16().length).toBeGreaterThanOrEqual(3);
  });

  it('a fastbin whose last chunk links back to its first: a cycle, after the three chunks', (context) => {
    if (skip !== undefined) context.skip(skip);
    if (NO_FASTBINS !== undefined) context.skip(NO_FASTBINS);
    const [a, , c] = fastbin0();
    const s = decodeChecked(corrupt([[c + 16n, link(c + 16n, a)]]));
    expect(s.bins[0].fastbins[0]).toMatchObject({ count: 3, reason: expect.stringMatching(/comes back to 0x[0-9a-f]+: a cycle/) });
  });

  it('a fastbin chunk that links to itself (a double free\'s shape)', (context) => {
    if (skip !== undefined) context.skip(skip);
    if (NO_FASTBINS !== undefined) context.skip(NO_FASTBINS);
    const [a] = fastbin0();
    const s = decodeChecked(corrupt([[a + 16n, link(a + 16n, a)]]));
    expect(s.bins[0].fastbins[0]).toMatchObject({ count: 1, reason: expect.stringMatching(/a cycle/) });
  });

  it('a small bin whose last chunk links back to its first, never to the header: a cycle, after the three chunks', (context) => {
    if (skip !== undefined) context.skip(skip);
    const [a, , c] = smallbin16();
    const s = decodeChecked(corrupt([[c + 16n, word(a)]]));
    expect(s.bins[0].smallbins.find((x) => x.index === 16)).toMatchObject({
      count: 3, reason: `the list comes back to 0x${a.toString(16)} without returning to the bin's header: a cycle`,
    });
  });

  // Outside the arena, not merely outside the copy: no copy could follow it (no `uncopied`).
  it('an fd into unmapped space, in the unsorted bin', (context) => {
    if (skip !== undefined) context.skip(skip);
    const first = mainBins().unsorted[0].chunks[0].address;
    const s = decodeChecked(corrupt([[first + 16n, word(0x10000n)]]));
    expect(s.bins[0].unsorted[0]).toMatchObject({ count: 1, reason: expect.stringMatching(/fd of 0x[0-9a-f]+: 0x10000 is outside the arena's memory/) });
    expect(s.bins[0].unsorted[0].uncopied).toBeUndefined();
  });

  it('an fd into unmapped space, in a thread arena\'s fastbin', (context) => {
    if (skip !== undefined) context.skip(skip);
    if (NO_FASTBINS !== undefined) context.skip(NO_FASTBINS);
    const thread = clean.bins[1];
    const index = thread.fastbins.findIndex((b) => b.count > 0);
    const head = thread.fastbins[index].chunks[0].address;
    const t = decodeChecked(corrupt([[head + 16n, link(head + 16n, 0xdead0000n)]]));
    expect(t.bins[1].fastbins[index]).toMatchObject({ count: 1, reason: expect.stringMatching(/0xdead0000 is outside the arena's memory/) });
    expect(t.bins[1].fastbins[index].uncopied).toBeUndefined();
  });

  it('a bin that leads out of the copied memory says where, for a retake to copy (a non-contiguous main_arena\'s memory outside [heap])', (context) => {
    if (skip !== undefined) context.skip(skip);
    const chunk = mainBins().unsorted[0].chunks[0].address;
    const ranges = image.memory.ranges.filter((r) => !(chunk >= r.base && chunk < r.base + BigInt(r.bytes.length)));
    const cut = { ...image, memory: copiedMemory(ranges) };
    // main_arena's memory read as none, as a non-contiguous main_arena's is (glibc lists where it lies nowhere).
    const arenas = decodeArenas(cut, clean.mainArena, clean.params.values);
    const main = { ...arenas.arenas[0], memory: [] };
    const bin = decodeBins(cut, main, arenas.states[0]).unsorted[0];
    expect(bin).toMatchObject({ count: 0, uncopied: chunk, reason: expect.stringMatching(/is outside the copied memory/) });
  });

  it('a forged link in a non-contiguous main_arena leads a retake only into private anonymous read-write memory, as far as system_mem reaches', (context) => {
    if (skip !== undefined) context.skip(skip);
    const flagsAt = clean.mainArena + field('flags');
    const flags = Buffer.alloc(4);
    flags.writeInt32LE(readInt32(flagsAt) | 2);
    // One list leads into a library's code, one into a huge anonymous mapping, one into nothing mapped.
    const inCode = 0x7f0000100000n;
    const inAnonymous = 0x7e0000000000n + (4n << 30n);
    const [a] = smallbin16();
    const unsorted = mainBins().unsorted[0].chunks[0].address;
    // Each forged list: where its link is, what it holds, and where the list is read.
    const forged: { at: bigint; to: Buffer; reached: bigint; read: (b: ArenaBins) => bigint | undefined }[] = [
      { at: unsorted + 16n, to: word(inCode), reached: inCode, read: (b) => b.unsorted[0].uncopied },
      { at: a + 16n, to: word(inAnonymous), reached: inAnonymous, read: (b) => b.smallbins.find((x) => x.index === 16)!.uncopied },
    ];
    // And a fastbin into nothing mapped, where there are fastbins.
    if (NO_FASTBINS === undefined) {
      const [f] = fastbin0();
      forged.push({ at: f + 16n, to: link(f + 16n, 0x500000000000n), reached: 0x500000000000n, read: (b) => b.fastbins[0].uncopied });
    }
    const img = corrupt([[flagsAt, flags], ...forged.map((f): [bigint, Buffer] => [f.at, f.to])]);
    const regions = parseMaps([
      '7e0000000000-7e0200000000 rw-p 00000000 00:00 0',
      '7f0000000000-7f0000400000 r-xp 00000000 08:01 1234 /usr/lib/libfake.so',
    ].join('\n') + '\n');
    // Each list leaves the copy where it was forged to, and says so.
    const lists = decodeAt(img).bins[0];
    expect(forged.map((f) => f.read(lists))).toEqual(forged.map((f) => f.reached));
    const systemMem = main().systemMem;
    const out = outsideMain(img, regions);
    expect(out.some((r) => r.start <= inCode && inCode < r.end)).toBe(false);
    expect(out.some((r) => r.start <= 0x500000000000n && 0x500000000000n < r.end)).toBe(false);
    const around = out.find((r) => r.start <= inAnonymous && inAnonymous < r.end)!;
    expect(around).toBeDefined();
    // As far as system_mem reaches on either side, not the whole 8 GiB line.
    expect(BigInt(around.size)).toBeLessThanOrEqual(2n * systemMem + 8192n);
    // A retake that could add nothing: the copy reads what it would already.
    expect(widens(out, mergedRanges(out, outsideMain(img, regions)))).toBe(false);
  });

  it("a non-contiguous main_arena's memory merged into a library's bss line is followed there", (context) => {
    if (skip !== undefined) context.skip(skip);
    const flagsAt = clean.mainArena + field('flags');
    const flags = Buffer.alloc(4);
    flags.writeInt32LE(readInt32(flagsAt) | 2);
    // glibc's mmap landed right above libfake.so's bss: one anonymous line, which the map calls its bss.
    const inBss = 0x7f0000420000n + 0x100n;
    const [a] = smallbin16();
    const img = corrupt([[flagsAt, flags], [a + 16n, word(inBss)]]);
    const regions = parseMaps([
      '7f0000000000-7f0000400000 r-xp 00000000 08:01 1234 /usr/lib/libfake.so',
      '7f0000400000-7f0000410000 rw-p 00400000 08:01 1234 /usr/lib/libfake.so',
      '7f0000410000-7f0000520000 rw-p 00000000 00:00 0',
    ].join('\n') + '\n');
    expect(regions[2].kind).toBe('bss');
    const around = outsideMain(img, regions).find((r) => r.start <= inBss && inBss < r.end);
    expect(around).toMatchObject({ start: expect.any(BigInt), kind: 'bss' });
    expect(outsideNow([around!], regions, [])).toHaveLength(1);
  });

  it('ranges outside [heap] follow the map now: cut to their line, dropped where it went, less what the copy reads anyway', () => {
    const [line, file, second] = parseMaps('7e0000000000-7e0000100000 rw-p 00000000 00:00 0\n7e0000200000-7e0000300000 rw-p 00000000 08:01 99 /tmp/f\n' +
      '7e0000400000-7e0000500000 rw-p 00000000 00:00 0\n');
    const range = (start: bigint, end: bigint) => ({ ...line, start, end, size: Number(end - start) });
    const out = outsideNow(
      [range(0x7e0000080000n, 0x7e0000180000n), range(0x7e0000200000n, 0x7e0000201000n), range(0x7d0000000000n, 0x7d0000001000n),
        // A range chosen when one line held what two hold now (a mapping in between went away).
        range(0x7e00000f0000n, 0x7e0000410000n)],
      [line, file, second],
      [{ start: 0x7e00000a0000n, end: 0x7e00000b0000n }],
    );
    expect(out.map((r) => [r.start, r.end, r.size])).toEqual([
      [0x7e0000080000n, 0x7e00000a0000n, 0x20000],
      [0x7e00000b0000n, 0x7e0000100000n, 0x50000],
      [0x7e00000f0000n, 0x7e0000100000n, 0x10000],
      [0x7e0000400000n, 0x7e0000410000n, 0x10000],
    ]);
    expect(widens([range(0n, 0x2000n)], [range(0n, 0x2000n)])).toBe(false);
    expect(widens([range(0n, 0x2000n)], [range(0n, 0x3000n)])).toBe(true);
    expect(mergedRanges([range(0n, 0x2000n)], [range(0x2000n, 0x3000n), range(0x1000n, 0x2800n)]).map((r) => [r.start, r.end])).toEqual([[0n, 0x3000n]]);
    expect(mergedRanges([range(0n, 0x2000n)], [range(0x2000n, 0x3000n)])).toHaveLength(2);
  });

  it('a chunk whose size is outside its bin, in a small bin', (context) => {
    if (skip !== undefined) context.skip(skip);
    const [, b] = smallbin16();
    const s = decodeChecked(corrupt([[b + 8n, word(0x111n)]]));
    expect(s.bins[0].smallbins.find((x) => x.index === 16)).toMatchObject({ count: 1, reason: expect.stringMatching(/has size 0x110, outside bin 16 \(0x100\)/) });
  });

  it('a chunk whose size is outside its bin, in a fastbin', (context) => {
    if (skip !== undefined) context.skip(skip);
    if (NO_FASTBINS !== undefined) context.skip(NO_FASTBINS);
    const [, f] = fastbin0();
    const t = decodeChecked(corrupt([[f + 8n, word(0x41n)]]));
    expect(t.bins[0].fastbins[0]).toMatchObject({ count: 1, reason: expect.stringMatching(/has size 0x40, outside fastbin 0 \(0x20\)/) });
  });

  it("a small bin chunk whose next chunk says it is in use, or gives another prev_size", (context) => {
    if (skip !== undefined) context.skip(skip);
    const [, b] = smallbin16();
    const next = b + 0x100n;
    const sizeWord = Buffer.from(image.memory.read(next + 8n, 8)).readBigUInt64LE(0);
    const bin16 = (s: AllocatorState) => s.bins[0].smallbins.find((x) => x.index === 16);
    expect(bin16(decodeChecked(corrupt([[next + 8n, word(sizeWord | 1n)]])))).toMatchObject({
      count: 1, reason: `the chunk after 0x${b.toString(16)} (at 0x${next.toString(16)}) says 0x${b.toString(16)} is in use (its P bit is set)`,
    });
    expect(bin16(decodeChecked(corrupt([[next, word(0x110n)]])))).toMatchObject({
      count: 1, reason: `the chunk after 0x${b.toString(16)} has prev_size 0x110, not its size 0x100`,
    });
  });

  it('a chunk in use whose next chunk says it is free, which no bin lists: one problem, that chunk', (context) => {
    if (skip !== undefined) context.skip(skip);
    const k = clean.walks.findIndex((w) => w.kind === 'heap');
    const w = clean.walks[k];
    const { places } = placeColumns(clean.placement.regions[k]);
    const inUse = PLACE_KINDS.indexOf('in-use');
    // A chunk in use between two in use, the next one not the top.
    let i = 1;
    while (i + 2 < w.walk.table.count && !(places[i - 1] === inUse && places[i] === inUse && places[i + 1] === inUse && i + 1 !== w.walk.top)) i++;
    expect(i + 2).toBeLessThan(w.walk.table.count);
    const at = w.start + BigInt(w.walk.table.offsets[i]);
    const size = chunkSize(w.walk.table, i);
    const next = at + BigInt(size);
    const nextSize = Buffer.from(image.memory.read(next + 8n, 8)).readBigUInt64LE(0);
    const torn = decodeChecked(corrupt([[next + 8n, word(nextSize & ~1n)], [next, word(BigInt(size))]]));
    expect(placementProblems(clean.placement)).toEqual([]);
    expect(placementProblems(torn.placement)).toEqual([
      `the chunk at 0x${at.toString(16)} (0x${size.toString(16)}) is free by its next chunk's P bit, but no bin of arena 0x${w.arena.toString(16)} lists it`,
    ]);
  });

  it('a fastbin longer than the arena\'s memory can hold (system_mem cut to 0x40: two 0x20 chunks)', (context) => {
    if (skip !== undefined) context.skip(skip);
    if (NO_FASTBINS !== undefined) context.skip(NO_FASTBINS);
    const s = decodeAt(corrupt([[main().address + field('system_mem'), word(0x40n)]]));
    expect(s.bins[0].fastbins[0]).toMatchObject({ count: 2, reason: expect.stringMatching(/past 2 chunks, all the arena's system_mem \(64 bytes\) can hold/) });
  });

  it('a tcache count past mp_.tcache_count, and a tcache list that goes on past its count', (context) => {
    if (skip !== undefined) context.skip(skip);
    const full = tcacheCount();
    const t = clean.tcaches.tcaches.find((x) => x.bins[0].count === full)!;
    expect(t, `a tcache whose bin 0 holds mp_.tcache_count (${full}) chunks`).toBeDefined();
    // full + 2 stored: that count, or from 2.42, where num_slots holds the free slots, a count of −2.
    const counts = Buffer.alloc(2);
    counts.writeUInt16LE(full + 2);
    const shown = layout.tcache[0].counts === 'free-slots' ? -2 : full + 2;
    const s = decodeChecked(corrupt([[t.address + 16n, counts]]));
    expect(s.tcaches.tcaches.find((x) => x.address === t.address)!.bins[0]).toMatchObject({ reason: `its count ${shown} is outside 0 … mp_.tcache_count (${full})` });
    const chunks = t.bins[0].chunks.map((c) => c.address + 16n);
    const last = chunks[chunks.length - 1];
    const u = decodeChecked(corrupt([[last, link(last, chunks[0])]]));
    expect(u.tcaches.tcaches.find((x) => x.address === t.address)!.bins[0]).toMatchObject({ count: full, reason: expect.stringMatching(new RegExp(`goes on past its count of ${full}`)) });
  });

  it('a large bin whose size runs skip one (fd_nextsize), and a bk that does not point back', (context) => {
    if (skip !== undefined) context.skip(skip);
    const bin = mainBins().largebins.find((b) => b.index === 65)!;
    const [first] = bin.chunks;
    const s = decodeChecked(corrupt([[first.address + 32n, word(first.address)]]));
    expect(s.bins[0].largebins.find((b) => b.index === 65)).toMatchObject({ count: 4, reason: expect.stringMatching(/fd_nextsize 0x[0-9a-f]+, but the next size down starts at/) });
    const [, b] = smallbin16();
    const t = decodeChecked(corrupt([[b + 24n, word(b)]]));
    expect(t.bins[0].smallbins.find((x) => x.index === 16)).toMatchObject({ count: 1, reason: expect.stringMatching(/has bk 0x[0-9a-f]+, but the list reached it from/) });
  });

  it('a thread arena whose top lies past its copied heap: the top\'s size is unread, said as a tear, even with Object.prototype.size set', (context) => {
    if (skip !== undefined) context.skip(skip);
    const thread = clean.arenas.arenas.find((a) => a.heaps.length === 2)!;
    const past = thread.heaps[0].address + (64n << 20n) - 0x20n;
    const img = corrupt([[thread.address + field('top'), word(past)]]);
    const proto = Object.prototype as { size?: unknown };
    proto.size = 10;
    try {
      const top = decodeAt(img).arenas.arenas.find((a) => a.address === thread.address)!.top;
      expect(Object.hasOwn(top, 'size') && top.size === undefined).toBe(true);
      expect(structureTornReason(img, [], false)).toMatch(new RegExp(`^arena 0x${thread.address.toString(16)}'s top: .*not copied`));
    } finally {
      delete proto.size;
    }
  });

  it('main_arena.next into unmapped space, and a thread arena whose heaps\' prev list loops; the pipeline refuses a main_arena it cannot locate', (context) => {
    if (skip !== undefined) context.skip(skip);
    const s = decodeAt(corrupt([[main().address + field('next'), word(0x7000n)]]));
    expect(s.arenas).toMatchObject({ complete: false, reason: expect.stringMatching(/the arena at 0x7000 cannot be read: \d+ bytes at 0x7000 were not copied/) });
    expect(s.arenas.arenas).toHaveLength(1);
    expect(() => decodeAllocator(corrupt([[main().address + field('next'), word(0x7000n)]]))).toThrow(expect.objectContaining({ code: 'ERR_ALLOCATOR_NOT_FOUND' }));
    const twoHeaps = clean.arenas.arenas.find((a) => a.heaps.length === 2)!;
    const newest = twoHeaps.heaps[0].address;
    const t = decodeChecked(corrupt([[newest + BigInt(offsetOf(layout.heapInfo, 'prev')), word(newest)]]));
    expect(t.arenas.arenas.find((a) => a.address === twoHeaps.address)).toMatchObject({ heaps: [{ address: newest }], heapsReason: expect.stringMatching(/prev list loops/) });
  });
});
