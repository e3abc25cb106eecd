// Locating main_arena, mp_ and global_max_fast in byte images of libc's
// data built from each release's layout: found where they were written, with
// the right state, and refused (with a code) when the data does not decide.
import { describe, expect, it } from 'vitest';
import { hex } from '../../lib/format';
import { KNOWN_GLIBC_VERSIONS, layoutFor } from '../../lib/allocator/layouts';
import { locateMallocGlobals } from '../../lib/allocator/locate';
import { put, writeGlobalMaxFast, writeMainArena, writeMallocPar } from '../helpers/malloc-images';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Bytes made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const BASE = 0x7f00_1234_5000n;
const HEAP = { start: 0x5600_0000_0000n, end: 0x5600_0002_1000n };
const PAR_AT = 0x340;
const ARENA_AT = 0xc60;
const MAX_FAST_AT = 0x24a0;

/** libc's data as two adjacent mappings: 0x2000 file-backed bytes, then 0x1000 anonymous. */
function data(bytes: Buffer) {
  return [{ base: BASE, bytes: bytes.subarray(0, 0x2000) }, { base: BASE + 0x2000n, bytes: bytes.subarray(0x2000) }];
}

function libcImage(version: string, state: 'uninitialized' | 'no-memory' | 'heap'): Buffer {
  const layout = layoutFor(version);
  const bytes = Buffer.alloc(0x3000);
  bytes.fill(0x5a, 0x1800, 0x2000); // other data, none of it a value set_max_fast gives
  writeMallocPar(bytes, PAR_AT, layout, state === 'heap' ? HEAP.start : 0n);
  writeMainArena(bytes, ARENA_AT, BASE + BigInt(ARENA_AT), layout, { state, heap: HEAP });
  if (state !== 'uninitialized') writeGlobalMaxFast(bytes, MAX_FAST_AT, layout, 0x80);
  return bytes;
}

describe.each(KNOWN_GLIBC_VERSIONS)('glibc %s', (version) => {
  const layout = layoutFor(version);
  // From 2.43 there is no global_max_fast: a refusal, whatever the data holds.
  const absent = { found: false, code: 'absent', reason: expect.stringMatching(new RegExp(`^glibc ${version} has no global_max_fast`)) };
  const maxFastOr = (expected: object) => (layout.globalMaxFast === 'none' ? absent : expected);

  it('finds all three in an image with a [heap], each with its evidence', () => {
    const g = locateMallocGlobals({ layout, data: data(libcImage(version, 'heap')), heap: HEAP });
    expect(g.mainArena).toMatchObject({ found: true, address: BASE + BigInt(ARENA_AT), value: { state: 'heap', top: HEAP.end - 0x1000n } });
    expect(g.mallocPar).toMatchObject({ found: true, address: BASE + BigInt(PAR_AT), value: { sbrkBase: HEAP.start, tcacheCount: 7n } });
    expect(g.globalMaxFast).toMatchObject(maxFastOr({ found: true, address: BASE + BigInt(MAX_FAST_AT), value: { value: 0x80 } }));
    if (g.mainArena.found) expect(g.mainArena.evidence.join('\n')).toMatch(/bins are well formed: 125 empty .* 2 holding chunks/);
  });

  it('tells global_max_fast from another fitting word by a second copy after mallopt(M_MXFAST), skipping words below the fastbins in use', () => {
    const bytes = libcImage(version, 'heap');
    writeGlobalMaxFast(bytes, MAX_FAST_AT + 0x40, layout, 0x90);
    writeGlobalMaxFast(bytes, MAX_FAST_AT + 0x80, layout, 0x30); // below fastbin 2's chunks (0x40): not it
    const one = locateMallocGlobals({ layout, data: data(bytes), heap: HEAP }).globalMaxFast;
    if (layout.globalMaxFast === 'none') {
      expect(one).toMatchObject(absent);
      return;
    }
    expect(one).toMatchObject({ found: false, code: 'several-candidates' });
    if (!one.found) expect(one.candidates.map((c) => c.address)).toEqual([BASE + BigInt(MAX_FAST_AT), BASE + BigInt(MAX_FAST_AT + 0x40)]);
    const after = Buffer.from(bytes);
    writeGlobalMaxFast(after, MAX_FAST_AT, layout, 0x40);
    const two = locateMallocGlobals({ layout, data: data(bytes), heap: HEAP }, { after: data(after), request: 64 }).globalMaxFast;
    expect(two).toMatchObject({ found: true, address: BASE + BigInt(MAX_FAST_AT), value: { value: 0x80 } });
  });

  it('finds main_arena and mp_ without a [heap]: initialized with no memory yet, and before malloc ran', () => {
    const bytes = libcImage(version, 'no-memory');
    // Zeros with a 1 where tcache_bins would be pass for mp_ with tcache_max=0, but for thresholds of 0 that nothing set.
    put(bytes, 0x2800, layout.mallocPar, layout.mallocPar.fields.find((f) => f.name.startsWith('tcache_') && f.name.endsWith('bins'))!.name, 1);
    const init = locateMallocGlobals({ layout, data: data(bytes) });
    expect(init.mainArena).toMatchObject({ found: true, address: BASE + BigInt(ARENA_AT), value: { state: 'no-memory', top: BASE + BigInt(ARENA_AT) + (layout.fastbins ? 96n : 8n) } });
    expect(init.mallocPar).toMatchObject({ found: true, address: BASE + BigInt(PAR_AT), value: { sbrkBase: 0n } });
    expect(init.globalMaxFast).toMatchObject(maxFastOr({ found: true, address: BASE + BigInt(MAX_FAST_AT) }));
    const fresh = locateMallocGlobals({ layout, data: data(libcImage(version, 'uninitialized')) });
    expect(fresh.mainArena).toMatchObject({ found: true, address: BASE + BigInt(ARENA_AT), value: { state: 'uninitialized', top: 0n } });
    expect(fresh.mallocPar).toMatchObject({ found: true, address: BASE + BigInt(PAR_AT) });
    expect(fresh.globalMaxFast).toMatchObject(maxFastOr({ found: false, code: 'prerequisite-missing' }));
  });

  it('refuses main_arena when a bin holding chunks is not marked in binmap, naming the near miss', () => {
    const bytes = libcImage(version, 'heap');
    put(bytes, ARENA_AT, layout.mallocState, 'binmap', 0, 0);
    const g = locateMallocGlobals({ layout, data: data(bytes), heap: HEAP });
    expect(g.mainArena).toMatchObject({ found: false, code: 'no-candidate' });
    if (!g.mainArena.found) {
      expect(g.mainArena.candidates[0].address).toBe(BASE + BigInt(ARENA_AT));
      expect(g.mainArena.candidates[0].evidence.at(-1)).toBe('bin 5 holds chunks but its binmap bit is clear');
      // The refusal names it, and the check it failed.
      expect(g.mainArena.reason).toBe(`nothing in libc's data passes every check for main_arena; the nearest, ${hex(BASE + BigInt(ARENA_AT))}, ` +
        `passed ${g.mainArena.candidates[0].evidence.length - 1} checks, then failed: bin 5 holds chunks but its binmap bit is clear`);
    }
    // mp_ is still found by [heap]; global_max_fast then lacks main_arena.
    expect(g.mallocPar.found).toBe(true);
    expect(g.globalMaxFast).toMatchObject(maxFastOr({ found: false, code: 'prerequisite-missing' }));
  });

  it('refuses when two places pass as main_arena, and refuses mp_ without [heap] or main_arena', () => {
    const bytes = libcImage(version, 'no-memory');
    writeMainArena(bytes, ARENA_AT + 0x1000 - 0x60, BASE + BigInt(ARENA_AT + 0x1000 - 0x60), layout, { state: 'no-memory' });
    const g = locateMallocGlobals({ layout, data: data(bytes) });
    expect(g.mainArena).toMatchObject({ found: false, code: 'several-candidates' });
    expect(g.mallocPar).toMatchObject({ found: false, code: 'prerequisite-missing' });
  });

  it('takes an mmapped_mem off whole pages, with no chunk mapped, only from 2.43 (each remap leaves 16 bytes there)', () => {
    const bytes = libcImage(version, 'heap');
    put(bytes, PAR_AT, layout.mallocPar, 'mmapped_mem', 16);
    put(bytes, PAR_AT, layout.mallocPar, 'max_mmapped_mem', 0x62010);
    const g = locateMallocGlobals({ layout, data: data(bytes), heap: HEAP });
    if (layout.mmappedTail === 16) expect(g.mallocPar).toMatchObject({ found: true, address: BASE + BigInt(PAR_AT), value: { mmappedMem: 16n, nMmaps: 0 } });
    else expect(g.mallocPar).toMatchObject({ found: false, code: 'no-candidate' });
  });

  it('refuses mp_ when none has sbrk_base at [heap]\'s start', () => {
    const g = locateMallocGlobals({ layout, data: data(libcImage(version, 'heap')), heap: { start: HEAP.start + 0x1000n, end: HEAP.end } });
    expect(g.mallocPar).toMatchObject({ found: false, code: 'no-candidate' });
  });
});
