// Walking main_arena's [heap] in this process.
import { describe, expect, it } from 'vitest';
import { HeapChunk, HeapWalk, malloc, mallinfo2, maps, requestToChunkSize, runPlan, walkHeap, walkSnapshot } from '../../lib/index';
import { chunkSize, ChunkWalker, walkSnapshotStored } from '../../lib/walk/chunk';
import { TCACHE_AT_FIRST_FREE, TCACHE_STRUCT_CHUNKS, TCACHE_STRUCT_SIZES } from '../helpers/glibc-here';

// Which arena this thread allocates from is glibc's choice: the main thread
// normally uses main_arena, but in vitest's forked workers it has been seen
// on a thread arena (after one failed main_arena allocation glibc moves the
// thread for good). So chunks are looked for in every heap.
const everyChunk = (walk: HeapWalk): HeapChunk[] => [walk.main, ...walk.threadHeaps].flatMap((h) => h.chunks);

/** [heap] as it is now, read in one plan with the break. */
function heapSnapshot(): { start: bigint; bytes: Buffer; programBreak: bigint } {
  const heap = maps().find((r) => r.kind === 'heap')!;
  // Bounded: a loop in this process would block its test where no timeout can fire.
  for (let attempt = 0; attempt < 100; attempt++) {
    const { steps } = runPlan([{ op: 'break' }, { op: 'read', address: heap.start, length: heap.size }, { op: 'break' }]);
    const programBreak = steps[0].programBreak!;
    if (steps[1].status === 'ok' && programBreak === steps[2].programBreak && programBreak === heap.end) {
      return { start: heap.start, bytes: steps[1].bytes!, programBreak };
    }
    heap.end = programBreak;
    heap.size = Number(programBreak - heap.start);
  }
  throw new Error('the program break moved during each of 100 reads of [heap]');
}

describe('walkHeap: main_arena', () => {
  it('tiles [heap] exactly from its first chunk to a top chunk that ends at the break and equals keepcost', () => {
    const walk = walkHeap();
    const { main } = walk;
    expect(main.reason).toBeUndefined();
    expect(main.complete).toBe(true);
    const heap = maps().find((r) => r.kind === 'heap')!;
    expect(main.start).toBe(heap.start);
    expect(main.chunks[0].address).toBe(heap.start);
    for (let i = 1; i < main.chunks.length; i++) {
      expect(main.chunks[i].address).toBe(main.chunks[i - 1].address + BigInt(main.chunks[i - 1].size));
    }
    const top = main.chunks[main.chunks.length - 1];
    expect(top.place).toBe('top');
    expect(main.top).toBe(top);
    expect(top.address + BigInt(top.size)).toBe(walk.programBreak);
    expect(top.size).toBe(walk.mallinfo!.keepcost);
    expect(walk.checks.find((c) => c.field === 'keepcost')).toMatchObject({ equal: true, difference: 0 });
    expect(main.chunks.filter((c) => c.place === 'top')).toHaveLength(1);
  });

  it('reports mallinfo from the same call as mallinfo2() does', () => {
    expect(walkHeap().mallinfo!.source).toBe(mallinfo2().source);
  });

  it("finds heapscope's own allocation, in use, with the size its header gives", () => {
    using a = malloc(100);
    const walk = walkHeap();
    const chunk = everyChunk(walk).find((c) => c.allocation === a);
    expect(chunk).toBeDefined();
    expect(chunk!.address).toBe(a.address - 16n);
    expect(chunk!.size).toBe(a.chunk.size);
    expect(chunk!.place).toBe('in-use');
    expect(chunk!.size).toBeGreaterThanOrEqual(requestToChunkSize(100));
  });

  it('shows a large chunk freed inside the same native call in the unsorted bin: the chunk after it lost its P bit', () => {
    // 32 blocks of 20000 bytes (past tcache and fastbins, so free() bins them), every other one freed: a freed block
    // whose next chunk is the next block, kept in use, cannot merge into top. Any block may come from a free chunk
    // elsewhere (one full run had none of six 5000-byte blocks next to the one after it); once the free chunks that
    // big are used up, the rest are cut from top one after the other.
    const BLOCKS = 32;
    const walk = walkHeap({
      before: [
        ...Array.from({ length: BLOCKS }, () => ({ op: 'malloc' as const, size: 20000 })),
        ...Array.from({ length: BLOCKS }, (_, i) => ({ op: 'header' as const, step: i })),
        ...Array.from({ length: BLOCKS / 2 }, (_, k) => ({ op: 'free' as const, step: 2 * k + 1 })),
      ],
    });
    const chunkAt = (i: number) => walk.steps[i].address! - 16n;
    const sizeOf = (i: number) => BigInt(walk.steps[BLOCKS + i].header!.size);
    const guarded = Array.from({ length: BLOCKS / 2 }, (_, k) => 2 * k + 1).filter((i) => i + 1 < BLOCKS && chunkAt(i) + sizeOf(i) === chunkAt(i + 1));
    expect(guarded.length).toBeGreaterThan(0);
    for (const i of guarded) {
      const freed = chunkAt(i);
      const holder = everyChunk(walk).find((c) => c.address <= freed && freed < c.address + BigInt(c.size));
      expect(holder).toBeDefined();
      // It merged with any free neighbour before it, and the snapshot came before any malloc could sort it.
      expect(holder!.place).toBe('unsorted');
      expect(holder!.address + BigInt(holder!.size)).toBe(chunkAt(i + 1));
      const after = everyChunk(walk).find((c) => c.address === chunkAt(i + 1));
      expect(after?.prevInUse).toBe(false);
    }
  });

  it("marks the main thread's tcache_perthread_struct: the first chunk (from 2.43, made at the first free, anywhere), 0x290 bytes on glibc >= 2.30 (0x250 before, 0x300 from 2.42)", () => {
    const { main, tcaches } = walkHeap();
    const struct = TCACHE_AT_FIRST_FREE ? main.chunks.find((c) => c.place === 'tcache-struct')! : main.chunks[0];
    expect(struct).toMatchObject({ place: 'tcache-struct', owner: 'calling-thread', tcache: struct.address });
    // Carved from a free chunk, the struct may take 16 bytes more (a remainder under MINSIZE stays with it).
    expect(TCACHE_AT_FIRST_FREE ? TCACHE_STRUCT_CHUNKS : TCACHE_STRUCT_SIZES.slice(-1)).toContain(struct.size);
    expect(tcaches.filter((t) => t.owner === 'calling-thread').map((t) => t.address)).toEqual([struct.address]);
    expect(main.chunks.filter((c) => c.place === 'tcache-struct')).toHaveLength(1);
  });

  it('takes arena: main to mean main_arena\'s regions only, and refuses any other arena', () => {
    const walk = walkHeap({ arena: 'main' });
    expect(walk.threadHeaps).toEqual([]);
    expect(walk.tcaches.every((t) => t.arena === walk.main.arena)).toBe(true);
    expect(() => walkHeap({ arena: 'some' as never })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

describe('walkSnapshot on a real [heap] snapshot', () => {
  it('walks it to the top chunk', () => {
    // Another thread may free into main_arena while the bytes are copied (a
    // freed chunk's neighbour then disagrees); walkHeap takes a new snapshot
    // up to 5 times for that reason, and so does this test.
    let snapshot = heapSnapshot();
    let walk = walkSnapshot(snapshot.bytes, snapshot.start, { mainArena: true });
    for (let tries = 1; tries < 5 && walk.reason !== undefined; tries++) {
      snapshot = heapSnapshot();
      walk = walkSnapshot(snapshot.bytes, snapshot.start, { mainArena: true });
    }
    const { bytes } = snapshot;
    expect(walk.reason).toBeUndefined();
    expect(walk.ending).toBe('top');
    expect(walk.reached).toBe(bytes.length);
    expect(walk.table.count).toBeGreaterThan(100);
    // Each size, public or read from the stored offsets, is the chunk's own size word, flags masked off.
    const stored = walkSnapshotStored(bytes, snapshot.start, { mainArena: true });
    const { offsets, sizes, count } = walk.table;
    expect(stored.table.count).toBe(count);
    let wrong = 0;
    for (let i = 0; i < count; i++) {
      const word = Number(bytes.readBigUInt64LE(offsets[i] + 8) & ~7n);
      if (sizes[i] !== word || chunkSize(stored.table, i) !== word) wrong++;
    }
    expect(wrong).toBe(0);
  });

  // Each corruption is written into a copy of a real snapshot at a real chunk in the middle.
  const corrupt = (edit: (copy: Buffer, at: number, size: number) => void) => {
    const { start, bytes } = heapSnapshot();
    const good = walkSnapshot(bytes, start, { mainArena: true });
    const k = good.table.count >> 1;
    const at = good.table.offsets[k];
    const copy = Buffer.from(bytes);
    edit(copy, at, good.table.sizes[k]);
    return { walk: walkSnapshot(copy, start, { mainArena: true }), k, at };
  };

  it('stops at a zero size with the chunks read so far', () => {
    const { walk, k } = corrupt((copy, at) => copy.writeBigUInt64LE(1n, at + 8));
    expect(walk.ending).toBe('stopped');
    expect(walk.reason).toMatch(/has size 0$/);
    expect(walk.table.count).toBe(k);
  });

  it('stops at a size that runs past the region', () => {
    const { walk, k } = corrupt((copy, at) => copy.writeBigUInt64LE(BigInt(copy.length) * 2n + 1n, at + 8));
    expect(walk.reason).toMatch(/runs past the end of the region/);
    expect(walk.table.count).toBe(k);
  });

  it('stops at a size that is not a multiple of 16, and at an impossible size word', () => {
    expect(corrupt((copy, at, size) => copy.writeBigUInt64LE(BigInt(size + 8) | 1n, at + 8)).walk.reason).toMatch(/not a multiple of 16/);
    expect(corrupt((copy, at) => copy.writeBigUInt64LE(0xffffffffffffff01n, at + 8)).walk.reason).toMatch(/impossible size word/);
  });

  it("stops at a chunk with the IS_MMAPPED bit, or in main_arena's heap the NON_MAIN_ARENA bit, and at a size below 32", () => {
    for (const [bit, reason] of [[2n, /has the IS_MMAPPED bit/], [4n, /has the NON_MAIN_ARENA bit inside main_arena's heap/]] as const) {
      const { walk, k } = corrupt((copy, at) => copy.writeBigUInt64LE(copy.readBigUInt64LE(at + 8) | bit, at + 8));
      expect(walk.reason).toMatch(reason);
      expect(walk.table.count).toBe(k);
    }
    const { walk, k } = corrupt((copy, at) => copy.writeBigUInt64LE(17n, at + 8));
    // In main_arena's heap a 16-byte chunk can only be a fencepost: it is read as one, and refused, its size kept.
    expect(walk.reason).toMatch(/has size 16, but it is not the first of two fenceposts/);
    expect(walk.table.count).toBe(k + 1);
    expect(walk.table.sizes[k]).toBe(16);
    expect(walk.reached).toBe(walk.table.offsets[k] + 16);
  });

  it('stops where a chunk claims a free neighbour whose size disagrees with prev_size (a torn read)', () => {
    const { walk, k } = corrupt((copy, at, size) => {
      // The chunk after k says k is free, with a prev_size that is not k's size.
      const next = at + size;
      copy.writeBigUInt64LE(copy.readBigUInt64LE(next + 8) & ~1n, next + 8);
      copy.writeBigUInt64LE(BigInt(size + 16), next);
    });
    expect(walk.ending).toBe('stopped');
    expect(walk.reason).toMatch(/prev_size|both free/);
    expect(walk.table.count).toBeGreaterThanOrEqual(k);
  });

  it('builds its columns when first read, equal to a walk that stores them as it goes', () => {
    const { start, bytes } = heapSnapshot();
    const walk = walkSnapshot(bytes, start, { mainArena: true });
    const walker = new ChunkWalker(start, { start: 0, end: bytes.length, fenceposts: false, mainArena: true });
    walker.feed(bytes, 0);
    const stored = walker.result();
    const n = stored.table.count;
    expect(n).toBeGreaterThan(100);
    expect({ ...walk, table: undefined }).toEqual({ ...stored, table: undefined });
    expect(walk.table.count).toBe(n);
    // A spread sees the columns (own enumerable properties), built on the way.
    const { offsets, sizes, bits } = { ...walk.table };
    expect([...offsets.subarray(0, n)]).toEqual([...stored.table.offsets.subarray(0, n)]);
    // The walker stores no sizes: each chunk ends where the next begins, the last where the walk reached.
    expect(stored.table.offsets[n]).toBe(stored.reached);
    expect(offsets[n]).toBe(walk.reached);
    expect([...sizes.subarray(0, n)]).toEqual(Array.from({ length: n }, (_, i) => chunkSize(stored.table, i)));
    expect(sizes.subarray(0, n).reduce((a, b) => a + b, 0)).toBe(stored.reached - offsets[0]);
    expect([...bits.subarray(0, n)]).toEqual([...stored.table.bits.subarray(0, n)]);
    expect(walk.table.offsets).toBe(offsets);
  });

  it('refuses to build its columns from bytes that changed or went away after the walk: ERR_SNAPSHOT_CHANGED', () => {
    const { start, bytes } = heapSnapshot();
    const good = walkSnapshot(bytes, start, { mainArena: true });
    const at = good.table.offsets[good.table.count >> 1];
    const copy = Buffer.from(bytes);
    const changed = walkSnapshot(copy, start, { mainArena: true });
    copy.writeBigUInt64LE(1n, at + 8);
    expect(() => changed.table.sizes).toThrow(expect.objectContaining({ code: 'ERR_SNAPSHOT_CHANGED' }));
    const buffer = new ArrayBuffer(bytes.length);
    new Uint8Array(buffer).set(bytes);
    const gone = walkSnapshot(new Uint8Array(buffer), start, { mainArena: true });
    structuredClone(buffer, { transfer: [buffer] });
    expect(() => gone.table.bits).toThrow(expect.objectContaining({ code: 'ERR_SNAPSHOT_CHANGED' }));
  });

  it('refuses columns from bytes rewritten with the same count and ending, and from an emptied view of end 0', () => {
    // Chunks of 32, 48, 64 and a top chunk, every P bit set; then the first two sizes swapped (same count, same top).
    const heap = (sizes: number[]): Buffer => {
      const bytes = Buffer.alloc(sizes.reduce((n, size) => n + size, 0));
      let at = 0;
      for (const size of sizes) {
        bytes.writeBigUInt64LE(BigInt(size | 1), at + 8);
        at += size;
      }
      return bytes;
    };
    const bytes = heap([32, 48, 64, 4096]);
    const walk = walkSnapshot(bytes, 0x10000n);
    expect(walk).toMatchObject({ ending: 'top', top: 3 });
    heap([48, 32, 64, 4096]).copy(bytes);
    expect(() => walk.table.sizes).toThrow(expect.objectContaining({ code: 'ERR_SNAPSHOT_CHANGED' }));
    // Edits to the result itself are the caller's: its columns still come from the walk as made.
    const kept = walkSnapshot(bytes, 0x10000n);
    Object.assign(kept, { reason: 'edited', top: -1 });
    kept.table.count = 1;
    expect([...kept.table.sizes.subarray(0, 4)]).toEqual([48, 32, 64, 4096]);
    // A frozen table still gives its columns.
    const frozen = walkSnapshot(bytes, 0x10000n);
    Object.freeze(frozen.table);
    expect([...frozen.table.offsets.subarray(0, 4)]).toEqual([0, 48, 80, 144]);
    // end 0 walks nothing; the buffer transferred before the (empty) columns are read is still a change.
    const buffer = new ArrayBuffer(64);
    const empty = walkSnapshot(new Uint8Array(buffer), 0x10000n, { end: 0 });
    expect(empty.table.count).toBe(0);
    structuredClone(buffer, { transfer: [buffer] });
    expect(() => empty.table.offsets).toThrow(expect.objectContaining({ code: 'ERR_SNAPSHOT_CHANGED' }));
  });

  it('walks chunks of 2 GiB and more (sizes past 32-bit integers)', () => {
    // Pages never touched cost nothing: the walk reads two headers.
    const bytes = Buffer.alloc(2 ** 31 + 64);
    bytes.writeBigUInt64LE(0x21n, 8);
    bytes.writeBigUInt64LE(BigInt(2 ** 31 + 32) | 1n, 40);
    const walk = walkSnapshot(bytes, 0x10000n);
    expect(walk).toMatchObject({ ending: 'top', top: 1, reached: bytes.length });
    expect([...walk.table.sizes.subarray(0, 2)]).toEqual([32, 2 ** 31 + 32]);
    bytes.writeBigUInt64LE(BigInt(2 ** 32 + 32) | 1n, 40);
    expect(walkSnapshot(bytes, 0x10000n).reason).toMatch(/of size 4294967328 runs past the end/);
  });

  it('keeps the size of a 16-byte chunk the walk stops at, in a thread heap and in main_arena\'s', () => {
    // Chunks of 32 and 48, then 16 bytes followed by no fencepost (a chunk of 64, not a size-0 header).
    const bytes = Buffer.alloc(160);
    [[0, 32], [32, 48], [80, 16], [96, 64]].forEach(([at, size]) => bytes.writeBigUInt64LE(BigInt(size) | 1n, at + 8));
    for (const options of [{ fenceposts: true }, { mainArena: true }]) {
      const walk = walkSnapshot(bytes, 0x10000n, options);
      expect(walk.ending).toBe('stopped');
      expect(walk.reason).toMatch(/has size 16, but/);
      expect([...walk.table.sizes.subarray(0, walk.table.count)]).toEqual([32, 48, 16]);
      expect(walk.reached).toBe(96);
      expect(chunkSize(walkSnapshotStored(bytes, 0x10000n, options).table, 2)).toBe(16);
    }
  });

  it('refuses a start or end outside the snapshot', () => {
    expect(() => walkSnapshot(Buffer.alloc(64), 0n, { end: 65 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(walkSnapshot(Buffer.alloc(64), 0n).reason).toMatch(/has size 0/);
  });
});
