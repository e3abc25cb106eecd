// The layout table against offsets worked out by hand from malloc.c at each
// release tag (x86_64: int 4, pointers and size_t 8, each field at the next
// multiple of its size), a second computation beside cStruct's.
import { describe, expect, it } from 'vitest';
import { HeapscopeError } from '../../lib/errors';
import { heapMaxSize, hugePagesForceMmap } from '../../lib/allocator/arenas';
import type { MallocPar } from '../../lib/allocator/decode';
import { KNOWN_GLIBC_VERSIONS, layoutFor, tcacheChunkSizes, tcacheLayoutFor } from '../../lib/allocator/layouts';
import { StructLayout } from '../../lib/allocator/struct-layout';
import { requestToChunkSize } from '../../lib/size-classes';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Bytes made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const minors = KNOWN_GLIBC_VERSIONS.map((v) => Number(v.split('.')[1]));
const offsets = (s: StructLayout): Record<string, number> => Object.fromEntries(s.fields.map((f) => [f.name, f.offset]));

describe('layoutFor', () => {
  it('covers every release from 2.28 to 2.43', () => {
    expect(minors).toEqual(Array.from({ length: 16 }, (_, i) => 28 + i));
  });

  it('has one struct malloc_state to 2.42: 2200 bytes, top at 96, bins at 112; 2.43\'s has no fastbins: 2112 bytes, top at 8', () => {
    for (const version of KNOWN_GLIBC_VERSIONS) {
      const { mallocState, fastbins } = layoutFor(version);
      if (version === '2.43') {
        expect(fastbins).toBe(false);
        expect(mallocState.size).toBe(2112);
        expect(offsets(mallocState)).toEqual({
          mutex: 0, flags: 4, top: 8, last_remainder: 16, bins: 24, binmap: 2056,
          next: 2072, next_free: 2080, attached_threads: 2088, system_mem: 2096, max_system_mem: 2104,
        });
        continue;
      }
      expect(fastbins).toBe(true);
      expect(mallocState.size).toBe(2200);
      expect(offsets(mallocState)).toEqual({
        mutex: 0, flags: 4, have_fastchunks: 8, fastbinsY: 16, top: 96, last_remainder: 104, bins: 112, binmap: 2144,
        next: 2160, next_free: 2168, attached_threads: 2176, system_mem: 2184, max_system_mem: 2192,
      });
    }
  });

  it('moves malloc_par fields by 24 bytes from 2.35 (huge page fields), renames tcache_bins in 2.42, and by 8 more in 2.43 (thp_mode)', () => {
    for (const version of KNOWN_GLIBC_VERSIONS) {
      const minor = Number(version.split('.')[1]);
      const { mallocPar } = layoutFor(version);
      const head = { trim_threshold: 0, top_pad: 8, mmap_threshold: 16, arena_test: 24, arena_max: 32 };
      if (minor < 35) {
        expect(mallocPar.size).toBe(112);
        expect(offsets(mallocPar)).toEqual({
          ...head, n_mmaps: 40, n_mmaps_max: 44, max_n_mmaps: 48, no_dyn_threshold: 52, mmapped_mem: 56,
          max_mmapped_mem: 64, sbrk_base: 72, tcache_bins: 80, tcache_max_bytes: 88, tcache_count: 96, tcache_unsorted_limit: 104,
        });
      } else if (minor === 43) {
        expect(mallocPar.size).toBe(144);
        expect(offsets(mallocPar)).toEqual({
          ...head, thp_mode: 40, thp_pagesize: 48, hp_pagesize: 56, hp_flags: 64, n_mmaps: 68, n_mmaps_max: 72, max_n_mmaps: 76,
          no_dyn_threshold: 80, mmapped_mem: 88, max_mmapped_mem: 96, sbrk_base: 104,
          tcache_small_bins: 112, tcache_max_bytes: 120, tcache_count: 128, tcache_unsorted_limit: 136,
        });
      } else {
        expect(mallocPar.size).toBe(136);
        expect(offsets(mallocPar)).toEqual({
          ...head, thp_pagesize: 40, hp_pagesize: 48, hp_flags: 56, n_mmaps: 60, n_mmaps_max: 64, max_n_mmaps: 68,
          no_dyn_threshold: 72, mmapped_mem: 80, max_mmapped_mem: 88, sbrk_base: 96,
          [minor < 42 ? 'tcache_bins' : 'tcache_small_bins']: 104, tcache_max_bytes: 112, tcache_count: 120, tcache_unsorted_limit: 128,
        });
      }
    }
  });

  it('grows heap_info from 32 to 48 bytes in 2.35 (pagesize, then 8 bytes of pad)', () => {
    for (const version of KNOWN_GLIBC_VERSIONS) {
      const { heapInfo } = layoutFor(version);
      const base = { ar_ptr: 0, prev: 8, size: 16, mprotect_size: 24 };
      if (Number(version.split('.')[1]) < 35) {
        expect(heapInfo.size).toBe(32);
        expect(offsets(heapInfo)).toEqual({ ...base, pad: 32 });
      } else {
        expect(heapInfo.size).toBe(48);
        expect(offsets(heapInfo)).toEqual({ ...base, pagesize: 32, pad: 40 });
      }
    }
  });

  it('has the tcache_perthread_struct of each release, both candidates for 2.28 and 2.29', () => {
    const shapes = (version: string) => layoutFor(version).tcache.map((t) => ({
      counts: t.countsField, meaning: t.counts, bins: t.bins, entries: offsets(t.struct).entries, size: t.struct.size, chunk: t.chunkSize,
    }));
    const char = { counts: 'counts', meaning: 'entries', bins: 64, entries: 64, size: 576, chunk: 0x250 };
    const u16 = { counts: 'counts', meaning: 'entries', bins: 64, entries: 128, size: 640, chunk: 0x290 };
    expect(shapes('2.28')).toEqual([char, u16]);
    expect(shapes('2.29')).toEqual([char, u16]);
    for (const minor of [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41]) expect(shapes(`2.${minor}`)).toEqual([u16]);
    for (const version of ['2.42', '2.43']) expect(shapes(version)).toEqual([{ counts: 'num_slots', meaning: 'free-slots', bins: 76, entries: 152, size: 760, chunk: 0x300 }]);
  });

  it('has tcache_entry.key from 2.29, random from 2.34; safe-linking from 2.32; a uint8_t global_max_fast from 2.37, none from 2.43; 16 more bytes of an mmapped chunk\'s mapping from 2.43', () => {
    for (const version of KNOWN_GLIBC_VERSIONS) {
      const minor = Number(version.split('.')[1]);
      const layout = layoutFor(version);
      expect(layout.version).toBe(version);
      expect(layout.tcacheEntry.size).toBe(minor < 29 ? 8 : 16);
      expect(layout.tcacheKey).toBe(minor < 29 ? 'absent-or-tcache-pointer' : minor < 34 ? 'tcache-pointer' : 'random');
      expect(layout.safeLinking).toBe(minor >= 32);
      expect(layout.globalMaxFast).toBe(minor < 37 ? 'size_t' : minor < 43 ? 'uint8_t' : 'none');
      expect(layout.mmappedTail).toBe(minor < 43 ? 0 : 16);
    }
  });

  it('has heaps of four huge pages from 2.35 to 2.41 under glibc.malloc.hugetlb, and mmap_threshold set to the huge page size from 2.39', () => {
    const MiB = 1n << 20n;
    for (const version of KNOWN_GLIBC_VERSIONS) {
      const minor = Number(version.split('.')[1]);
      const layout = layoutFor(version);
      expect({ version, heapMax: layout.heapMax, threshold: layout.hugePagesThreshold })
        .toEqual({ version, heapMax: minor >= 35 && minor <= 41 ? 'four-huge-pages' : 'fixed', threshold: minor >= 39 });
      // heap_max_size (), and whether main_arena's sbrk is made to fail: with no huge pages, 2 MiB ones, and 1 GiB ones.
      const par = (hp: bigint | undefined) => (hp === undefined ? {} : { hpPagesize: hp }) as MallocPar;
      expect(heapMaxSize(layout, par(undefined))).toBe(64n * MiB);
      expect(heapMaxSize(layout, par(0n))).toBe(64n * MiB);
      expect(heapMaxSize(layout, par(2n * MiB))).toBe(layout.heapMax === 'fixed' ? 64n * MiB : 8n * MiB);
      expect(heapMaxSize(layout, par(1024n * MiB))).toBe(layout.heapMax === 'fixed' ? 64n * MiB : 4096n * MiB);
      expect(hugePagesForceMmap(layout, par(undefined))).toBe(false);
      // Before 2.35 mp_ has no hp_pagesize.
      if (minor < 35) continue;
      expect(hugePagesForceMmap(layout, par(0n))).toBe(false);
      expect(hugePagesForceMmap(layout, par(2n * MiB))).toBe(true);
      // From 2.42 glibc takes huge pages only where one is at most HEAP_MAX_SIZE.
      expect(hugePagesForceMmap(layout, par(1024n * MiB))).toBe(minor < 42);
    }
  });

  it('names the range of releases sharing a layout', () => {
    expect(layoutFor('2.36').releases).toBe('2.35–2.36');
    expect(layoutFor('2.42').releases).toBe('2.42');
    expect(layoutFor('2.43').releases).toBe('2.43');
  });

  it('refuses releases it has not read, and development snapshots, with ERR_UNKNOWN_GLIBC_LAYOUT naming the version', () => {
    for (const version of ['2.27', '2.26', '2.44', '2.100', '3.0', '2.43.9000', '2.42.9000', '2.36.1', '', 'glibc 2.36', '2.36 ']) {
      let error: unknown;
      try {
        layoutFor(version);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HeapscopeError);
      expect((error as HeapscopeError).code).toBe('ERR_UNKNOWN_GLIBC_LAYOUT');
      expect((error as HeapscopeError).message).toContain(JSON.stringify(version));
    }
    expect(() => layoutFor(236 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('picks the 2.28/2.29 tcache struct by its chunk size, and refuses a size that fits none', () => {
    const layout = layoutFor('2.29');
    expect(tcacheLayoutFor(layout, 0x250).struct.size).toBe(576);
    expect(tcacheLayoutFor(layout, 0x260).struct.size).toBe(576);
    expect(tcacheLayoutFor(layout, 0x290).struct.size).toBe(640);
    expect(() => tcacheLayoutFor(layout, 0x300)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_GLIBC_LAYOUT' }));
    expect(() => tcacheLayoutFor(layoutFor('2.42'), 0x290)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_GLIBC_LAYOUT' }));
  });

  it.each(KNOWN_GLIBC_VERSIONS)("%s: the struct's chunk is request2size(sizeof), whole or 16 more; from 2.43 tcache_init(av) converts the request twice", (version) => {
    const layout = layoutFor(version);
    for (const t of layout.tcache) {
      const once = requestToChunkSize(t.struct.size);
      // 2bf2188fae: _int_malloc (av, request2size (bytes)), and _int_malloc converts its request again.
      const twice = requestToChunkSize(once);
      const expected = layout.tcacheMadeAt === 'first-free' ? [once, once + 16, twice + 16] : [once, once + 16];
      expect(new Set(tcacheChunkSizes(layout, t))).toEqual(new Set(expected));
      for (const size of expected) expect(tcacheLayoutFor(layout, size)).toBe(t);
    }
  });
});
