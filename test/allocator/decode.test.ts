// Every decoder, for every release in the table: a byte image holds a
// distinct marker in each element of each field, at the layout's offsets, and
// 0xa5 in the padding and around the struct; the decoder must read every
// marker back into the right property. So layouts this machine does not run
// are decoded as well as its own.
import { describe, expect, it } from 'vitest';
import {
  binAddress, cachedChunks, decodeFields, decodeHeapInfo, decodeMallocPar, decodeMallocState, decodeTcacheEntry,
  decodeTcachePerthread, initialTop,
} from '../../lib/allocator/decode';
import { KNOWN_GLIBC_VERSIONS, layoutFor } from '../../lib/allocator/layouts';
import { protectPointer, revealPointer } from '../../lib/allocator/safe-linking';
import { offsetOf, StructLayout } from '../../lib/allocator/struct-layout';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Bytes made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const LEAD = 24;
const ADDRESS = 0x7f12_3456_7000n;

/** Marker of element `i` of the field numbered `n`, fitting the field's type. */
function marker(layout: StructLayout, name: string, i = 0): bigint {
  const n = layout.fields.findIndex((f) => f.name === name);
  const f = layout.fields[n];
  const width = f.size / f.count;
  if (width === 8) return 0x1111_0000_0000_0000n + (BigInt(n) << 32n) + BigInt(i);
  if (width === 4) return BigInt(0x2000_0000 + (n << 16) + i);
  if (width === 2) return BigInt(0x4000 + (n << 8) + i);
  return BigInt(i + 1); // char counts: 1 … 64
}

function image(layout: StructLayout): Buffer {
  const bytes = Buffer.alloc(LEAD + layout.size + 24, 0xa5);
  for (const f of layout.fields) {
    const width = f.size / f.count;
    for (let i = 0; i < f.count; i++) {
      const at = LEAD + f.offset + i * width;
      const v = marker(layout, f.name, i);
      if (width === 8) bytes.writeBigUInt64LE(v, at);
      else if (width === 4) bytes.writeUInt32LE(Number(v), at);
      else if (width === 2) bytes.writeUInt16LE(Number(v), at);
      else bytes.writeUInt8(Number(v), at);
    }
  }
  return bytes;
}

const all = (layout: StructLayout, name: string): bigint[] => {
  const f = layout.fields.find((x) => x.name === name)!;
  return Array.from({ length: f.count }, (_, i) => marker(layout, name, i));
};

describe.each(KNOWN_GLIBC_VERSIONS)('glibc %s', (version) => {
  const layout = layoutFor(version);

  it('decodes struct malloc_state field by field', () => {
    const s = layout.mallocState;
    const m = (name: string) => marker(s, name);
    const state = decodeMallocState(image(s), LEAD, layout, ADDRESS);
    expect(state.address).toBe(ADDRESS);
    expect([state.mutex, state.flags].map(BigInt)).toEqual([m('mutex'), m('flags')]);
    if (layout.fastbins) {
      expect(BigInt(state.haveFastchunks!)).toBe(m('have_fastchunks'));
      expect(state.fastbins).toEqual(all(s, 'fastbinsY'));
    } else {
      // 2.43: no fastbins, and no field to decode them from.
      expect(Object.hasOwn(state, 'haveFastchunks')).toBe(false);
      expect(state.fastbins).toEqual([]);
    }
    expect([state.top, state.lastRemainder]).toEqual([m('top'), m('last_remainder')]);
    const bins = all(s, 'bins');
    expect(state.bins).toHaveLength(127);
    state.bins.forEach((bin, i) => {
      expect(bin.index).toBe(i + 1);
      expect([bin.fd, bin.bk]).toEqual([bins[2 * i], bins[2 * i + 1]]);
      // bin_at: the fd of a chunk header at this address is bins[2i].
      expect(bin.address + 16n).toBe(ADDRESS + BigInt(offsetOf(s, 'bins') + 16 * i));
    });
    expect(state.binmap.map(BigInt)).toEqual(all(s, 'binmap'));
    expect([state.next, state.nextFree, state.attachedThreads, state.systemMem, state.maxSystemMem])
      .toEqual([m('next'), m('next_free'), m('attached_threads'), m('system_mem'), m('max_system_mem')]);
    // &av->top: at 96 while the fastbins precede it, at 8 from 2.43.
    expect(initialTop(layout, ADDRESS)).toBe(ADDRESS + (layout.fastbins ? 96n : 8n));
    expect(binAddress(layout, ADDRESS, 1)).toBe(initialTop(layout, ADDRESS));
  });

  it('decodes struct malloc_par field by field', () => {
    const s = layout.mallocPar;
    const m = (name: string) => marker(s, name);
    const par = decodeMallocPar(image(s), LEAD, layout, ADDRESS);
    const tcacheBins = s.fields.some((f) => f.name === 'tcache_small_bins') ? 'tcache_small_bins' : 'tcache_bins';
    expect(par).toEqual({
      address: ADDRESS,
      trimThreshold: m('trim_threshold'), topPad: m('top_pad'), mmapThreshold: m('mmap_threshold'),
      arenaTest: m('arena_test'), arenaMax: m('arena_max'),
      ...(layout.mallocPar.fields.some((f) => f.name === 'thp_mode') ? { thpMode: Number(m('thp_mode')) } : {}),
      ...(Number(version.split('.')[1]) >= 35
        ? { thpPagesize: m('thp_pagesize'), hpPagesize: m('hp_pagesize'), hpFlags: Number(m('hp_flags')) }
        : {}),
      nMmaps: Number(m('n_mmaps')), nMmapsMax: Number(m('n_mmaps_max')), maxNMmaps: Number(m('max_n_mmaps')),
      noDynThreshold: Number(m('no_dyn_threshold')), mmappedMem: m('mmapped_mem'), maxMmappedMem: m('max_mmapped_mem'),
      sbrkBase: m('sbrk_base'), tcacheBins: m(tcacheBins), tcacheMaxBytes: m('tcache_max_bytes'),
      tcacheCount: m('tcache_count'), tcacheUnsortedLimit: m('tcache_unsorted_limit'),
    });
  });

  it('decodes heap_info field by field', () => {
    const s = layout.heapInfo;
    const m = (name: string) => marker(s, name);
    const info = decodeHeapInfo(image(s), LEAD, layout, ADDRESS);
    expect(info).toEqual({
      address: ADDRESS, arPtr: m('ar_ptr'), prev: m('prev'), size: m('size'), mprotectSize: m('mprotect_size'),
      ...(s.fields.some((f) => f.name === 'pagesize') ? { pagesize: m('pagesize') } : {}),
    });
  });

  it('decodes each candidate tcache_perthread_struct field by field', () => {
    for (const t of layout.tcache) {
      const tcache = decodeTcachePerthread(image(t.struct), LEAD, t, ADDRESS);
      expect(tcache.counts.map(BigInt)).toEqual(all(t.struct, t.countsField));
      expect(tcache.entries).toEqual(all(t.struct, 'entries'));
      expect(tcache.counts).toHaveLength(t.bins);
      const held = cachedChunks(tcache, 3, 7n);
      expect(held).toBe(t.counts === 'entries' ? tcache.counts[3] : 7 - tcache.counts[3]);
    }
    if (layout.tcache.length === 1) {
      expect(decodeTcachePerthread(image(layout.tcache[0].struct), LEAD, layout, ADDRESS).layout).toBe(layout.tcache[0]);
    } else {
      expect(() => decodeTcachePerthread(image(layout.tcache[0].struct), LEAD, layout, ADDRESS))
        .toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_GLIBC_LAYOUT' }));
    }
  });

  it('decodes a tcache_entry, revealing next where the release safe-links', () => {
    const s = layout.tcacheEntry;
    const entry = decodeTcacheEntry(image(s), LEAD, layout, ADDRESS);
    expect(entry.storedNext).toBe(marker(s, 'next'));
    expect(entry.next).toBe(layout.safeLinking ? marker(s, 'next') ^ (ADDRESS >> 12n) : marker(s, 'next'));
    expect(entry.key).toBe(s.fields.length > 1 ? marker(s, 'key') : undefined);
  });

  it('refuses a buffer too short for the struct with ERR_OUT_OF_RANGE', () => {
    const bytes = image(layout.mallocState);
    expect(() => decodeMallocState(bytes, bytes.length - 100, layout, ADDRESS)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => decodeFields(bytes, -1, layout.heapInfo)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

describe('safe-linking', () => {
  it('reveals what PROTECT_PTR stored, and is its own inverse', () => {
    const at = 0x55d0_1234_5670n;
    const next = 0x55d0_1234_9a80n;
    const stored = protectPointer(at, next);
    expect(stored).toBe((at >> 12n) ^ next);
    expect(revealPointer(stored, at)).toBe(next);
    // A NULL link is stored as the page bits alone: it reveals back to 0.
    expect(revealPointer(protectPointer(at, 0n), at)).toBe(0n);
  });
});
