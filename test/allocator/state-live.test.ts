// The allocator state of a live process, each in a quiet child (nothing but
// the body allocates): mallinfo2() of the same native call equals the
// decode's own totals field for field; the snapshot's probe tells the
// calling thread's tcache, on the main thread and on a worker, even when
// its bin is empty with chunks of its size waiting to refill it; a torn copy
// is told and retaken, and the attempts are counted.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FREED_SHAPE, inQuietChild } from '../helpers/quiet-child';
import { HERE, PAST_FULL_TCACHE, TCACHE_AT_FIRST_FREE } from '../helpers/glibc-here';
import { liveMallocPar } from '../../lib/allocator/live-par';

const root = path.join(__dirname, '..', '..');

describe('the allocator state of a live process', () => {
  it('in a quiet process every field of mallinfo2() equals the decode\'s total, with chunks in fastbins, bins and tcache', () => {
    const seen = inQuietChild<{
      consistent: boolean; attempts: number; mismatches: unknown[]; incomplete: string[]; total: Record<string, number>;
      mallinfo: Record<string, number>; problems: string[]; fastbinPlaces: number; binnedPlaces: number; arenas: number; inUseFast: number;
      small: { size: number; place: string }[];
    }>(`${FREED_SHAPE}
      const s = h.allocatorSnapshot({ before });
      const t = h.allocatorTotals(s);
      const places = h.chunkPlaces(s);
      const all = places.regions.flatMap((r) => r.chunks);
      const fastbinned = new Set(h.bins(s).arenas.flatMap((a) => a.fastbins.flatMap((b) => b.chunks.map((c) => c.address))));
      return {
        consistent: s.consistent, attempts: s.attempts, mismatches: t.mismatches, incomplete: t.incomplete, total: t.total,
        mallinfo: t.mallinfo, problems: places.problems,
        fastbinPlaces: all.filter((c) => c.place === 'fastbin').length,
        binnedPlaces: all.filter((c) => ['unsorted', 'smallbin', 'largebin'].includes(c.place)).length,
        arenas: h.arenas(s).arenas.length,
        inUseFast: all.filter((c) => c.place === 'in-use' && fastbinned.has(c.address)).length,
        small: small.map((i) => all.find((c) => c.address === s.steps[i].address - 16n)).map((c) => ({ size: c?.size, place: c?.place })),
      };`);
    expect(seen.consistent).toBe(true);
    expect(seen.incomplete).toEqual([]);
    expect(seen.mismatches).toEqual([]);
    for (const field of ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'uordblks', 'fsmblks', 'fordblks', 'keepcost']) {
      expect([field, seen.total[field]]).toEqual([field, seen.mallinfo[field]]);
    }
    // Not a vacuous equality: the shape put chunks in fastbins and bins (ordblks counts each arena's top too).
    // Each size the small blocks came out at holds at most mp_.tcache_count of them in the tcache; the rest are in a fastbin
    // (from 2.43, which has none, in their small bin, or merged into a free neighbour's chunk: no chunk starts there).
    const held = Number(liveMallocPar().tcacheCount);
    expect(seen.small.every((c) => c.place === 'tcache' || c.place === PAST_FULL_TCACHE || (!HERE.fastbins && c.place === undefined))).toBe(true);
    // The sizes of the chunks found (a chunk merged into its neighbour, from 2.43, has none of its own).
    const sizes = new Set(seen.small.filter((c) => c.size !== undefined).map((c) => c.size)).size;
    expect(seen.small.filter((c) => c.place !== 'tcache').length).toBeGreaterThanOrEqual(seen.small.length - held * sizes);
    if (HERE.fastbins) expect(seen.total.smblks).toBeGreaterThanOrEqual(seen.small.length - held * sizes);
    expect(seen.small.length - held * sizes).toBeGreaterThanOrEqual(1);
    expect(seen.fastbinPlaces).toBe(seen.total.smblks);
    expect(seen.binnedPlaces).toBeGreaterThanOrEqual(1);
    expect(seen.binnedPlaces).toBe(seen.total.ordblks - seen.arenas);
    expect(seen.inUseFast).toBe(0);
    expect(seen.problems).toEqual([]);
  });

  it('the probe tells the calling thread\'s tcache: the main thread\'s first chunk of [heap], a worker\'s elsewhere', () => {
    const seen = inQuietChild<{ main: { owners: string[]; first: boolean; probeAtHead: boolean }; worker: { owners: string[]; first: boolean; probeAtHead: boolean; arenas: number } }>(`
      const look = (h) => {
        const s = h.allocatorSnapshot();
        const { tcaches } = h.tcaches(s);
        const mine = tcaches.filter((t) => t.owner === 'calling-thread');
        return {
          owners: tcaches.map((t) => t.owner),
          first: mine.length === 1 && mine[0].address === (s.image.heap.start + 15n) / 16n * 16n,
          probeAtHead: mine.length === 1 && mine[0].bins.some((b) => b.chunks[0]?.address === s.probe - 16n),
          arenas: h.arenas(s).arenas.length,
        };
      };
      const { Worker } = require('node:worker_threads');
      const worker = await new Promise((resolve, reject) => {
        const w = new Worker(\`
          const { parentPort } = require('node:worker_threads');
          const h = require(\${JSON.stringify(${JSON.stringify(root)})});
          const look = \${look.toString()};
          parentPort.postMessage(JSON.stringify(look(h), (k, v) => typeof v === 'bigint' ? v.toString() : v));\`, { eval: true });
        let seen;
        w.once('message', (m) => { seen = JSON.parse(m); });
        w.once('error', reject);
        // The main thread looks once the worker is gone: its teardown frees memory. (Node delivers a worker's messages before its exit.)
        w.once('exit', (code) => (seen === undefined ? reject(new Error('the worker exited (' + code + ') with no result')) : resolve(seen)));
      });
      return { main: look(h), worker };`);
    expect(seen.main.owners.filter((o) => o === 'calling-thread')).toHaveLength(1);
    // The main thread's struct is [heap]'s first chunk where its first malloc makes it (to 2.42), not where its first free does (2.43).
    expect(seen.main).toMatchObject({ first: !TCACHE_AT_FIRST_FREE, probeAtHead: true });
    expect(seen.worker.owners.filter((o) => o === 'calling-thread')).toHaveLength(1);
    expect(seen.worker).toMatchObject({ first: false, probeAtHead: true });
    expect(seen.worker.owners.length).toBeGreaterThanOrEqual(2);
  });

  it("the probe tells the calling thread's tcache when the probe's bin is empty and free chunks of its size wait in the arena to refill it", () => {
    // 4 × mp_.tcache_count + 12 blocks (40) of the probe's size (1000 bytes), carved one after another
    // in a fresh heap, every other one freed: the first frees fill the bin,
    // the rest go to the arena, kept apart by the live blocks between them.
    // mp_.tcache_count mallocs then empty the bin (7, or 16 from 2.43, which takes 76 blocks). A probe that found it empty made glibc
    // refill it from those chunks, full (tcache stashing), and was itself
    // freed to the arena: no tcache was the calling thread's.
    const held = Number(liveMallocPar().tcacheCount);
    const seen = inQuietChild<{ owners: number; probeAtHead: boolean; count: number; waiting: number }>(`
      const blocks = ${4 * held + 12};
      const before = Array.from({ length: blocks }, () => ({ op: 'malloc', size: 1000 }));
      for (let i = 0; i < blocks; i += 2) before.push({ op: 'free', step: i });
      for (let i = 0; i < ${held}; i++) before.push({ op: 'malloc', size: 1000 });
      const s = h.allocatorSnapshot({ before });
      const size = h.requestToChunkSize(1000);
      const mine = h.tcaches(s).tcaches.filter((t) => t.owner === 'calling-thread');
      const bin = mine[0] && mine[0].bins[(size - 32) / 16];
      const all = h.chunkPlaces(s).regions.flatMap((r) => r.chunks);
      return {
        owners: mine.length, probeAtHead: bin !== undefined && bin.chunks[0]?.address === s.probe - 16n, count: bin && bin.count,
        waiting: all.filter((c) => c.size === size && (c.place === 'unsorted' || c.place === 'smallbin')).length,
      };`);
    expect(seen).toMatchObject({ owners: 1, probeAtHead: true, count: 1 });
    // Enough waited to fill the bin and hand out one more.
    expect(seen.waiting).toBeGreaterThan(held);
  });

  it("reads [heap] to the break the plan's steps moved; a copy the heap outgrew is torn, retaken up to the bound, and the attempts are counted", () => {
    // [heap] is read up to the break as it is when the copy runs, with 64 MiB
    // of room past the break seen before the plan: 30 blocks of 100,000
    // bytes grow the heap inside the plan and the copy is whole at once.
    // 1000 of them (95 MiB) outgrow that room: the first copy is torn, and
    // the retake, with room from the break the first saw, is whole (the
    // steps reuse what the first attempt freed: trimming is off). 2000 more
    // than that again, with one attempt allowed, show the reason.
    const seen = inQuietChild<Record<'grown' | 'outgrown', { consistent: boolean; attempts: number; reason?: string; grew: boolean }>>(`
      h.mallopt('M_TRIM_THRESHOLD', 1 << 30);
      const steps = (n) => Array.from({ length: n }, () => ({ op: 'malloc', size: 100000 }));
      const pick = (s, before) => ({ consistent: s.consistent, attempts: s.attempts, reason: s.reason, grew: s.image.heap.end > before });
      const b0 = h.programBreak();
      const grown = pick(h.allocatorSnapshot({ before: steps(30) }), b0);
      const b1 = h.programBreak();
      const outgrown = pick(h.allocatorSnapshot({ before: steps(1000) }), b1);
      const once = h.allocatorSnapshot({ before: steps(2000), attempts: 1 });
      return { grown, once: { consistent: once.consistent, attempts: once.attempts, reason: once.reason }, outgrown };`);
    expect(seen.grown).toMatchObject({ consistent: true, attempts: 1, grew: true });
    expect(seen.once).toMatchObject({ consistent: false, attempts: 1, reason: expect.stringMatching(/^\[heap\] grew to the break 0x[0-9a-f]+, past the 0x[0-9a-f]+ the copy had room for$/) });
    expect(seen.outgrown).toMatchObject({ consistent: true, grew: true });
    expect(seen.outgrown.attempts).toBeGreaterThanOrEqual(2);
    expect(seen.outgrown.attempts).toBeLessThanOrEqual(5);
  });

  it("a thread arena's heap that grows after the map was read is copied as far as its heap_info says; one that outgrows the copy's room is torn, and retaken until it is copied whole", () => {
    // A thread-arena heap is copied with 8 MiB of room past what the map
    // showed writable when the sources were chosen, up to where its
    // heap_info's mprotect_size says it is writable when the copy runs. The
    // steps run after the map's read, in the worker's arena: blocks that
    // grow its heap by mprotect, freed (last first) back into its top, as
    // another thread's short-lived blocks can be between the map and the
    // copy. 4 MB of them are copied at once; 16 MB, then 40, outgrow the room, and
    // the top then ends past the copy while nothing moved during it: only
    // the heap's own size tells that its copy is short. Trimming is off, so
    // the heap stays grown for the retakes.
    const seen = inQuietChild<Record<'grown' | 'once' | 'retaken', { consistent: boolean; attempts: number; reason?: string; incomplete: string[]; mismatches: string[]; copied: number }>>(`
      h.mallopt('M_TRIM_THRESHOLD', 1 << 30);
      const { Worker } = require('node:worker_threads');
      return await new Promise((resolve, reject) => {
        const w = new Worker(\`
          const { parentPort } = require('node:worker_threads');
          const h = require(\${JSON.stringify(${JSON.stringify(root)})});
          const steps = (n) => [...Array.from({ length: n }, () => ({ op: 'malloc', size: 100000 })),
            ...Array.from({ length: n }, (_, i) => ({ op: 'free', step: n - 1 - i }))];
          // The bytes copied of the thread heaps, against their writable lines in the map after the copy.
          const copied = (s) => s.image.memory.ranges.filter((r) => r.label === 'arena heap').reduce((sum, r) => sum + r.bytes.length, 0)
            - h.maps().filter((r) => r.kind === 'arena-heap').reduce((sum, r) => sum + r.size, 0);
          // copied first: decoding the totals mallocs in this worker's arena, and grew its heap by 132 KiB past the copy once (in CI).
          const pick = (s) => {
            const c = copied(s);
            const totals = h.allocatorTotals(s);
            return { consistent: s.consistent, attempts: s.attempts, reason: s.reason, incomplete: totals.incomplete, mismatches: totals.mismatches.map((m) => m.field), copied: c };
          };
          const grown = pick(h.allocatorSnapshot({ before: steps(40), attempts: 1 }));
          const once = pick(h.allocatorSnapshot({ before: steps(160), attempts: 1 }));
          const retaken = pick(h.allocatorSnapshot({ before: steps(400), attempts: 20 }));
          parentPort.postMessage({ grown, once, retaken });\`, { eval: true });
        let seen;
        w.once('message', (m) => { seen = m; });
        w.once('error', reject);
        // Node delivers a worker's messages before its exit.
        w.once('exit', (code) => (seen === undefined ? reject(new Error('the worker exited (' + code + ') with no result')) : resolve(seen)));
      }).then((seen) => {
        // The worker started while its copies were taken: main_arena's totals hold only if the break had room all along.
        needBreakRoom();
        return seen;
      });`);
    // Copied whole at once, and no further than the heap was writable.
    expect(seen.grown).toMatchObject({ consistent: true, attempts: 1, incomplete: [], mismatches: [], copied: 0 });
    expect(seen.once).toMatchObject({
      consistent: false, attempts: 1,
      reason: expect.stringMatching(/^arena 0x[0-9a-f]+'s heap at 0x[0-9a-f]+ grew to 0x[0-9a-f]+, past the 0x[0-9a-f]+ the copy had room for$/),
    });
    // Each retake runs the steps again, and what the worker's JavaScript kept in the arena meanwhile
    // can make them grow the heap once more: a few retakes, until the heap has room for them.
    expect(seen.retaken).toMatchObject({ consistent: true, incomplete: [], mismatches: [] });
    expect(seen.retaken.attempts).toBeGreaterThanOrEqual(2);
  });

  it("a thread heap whose heap_info says it is writable to less than the map shows is still copied as far as the map shows", () => {
    // heap_info's mprotect_size, overwritten through /proc/self/mem while the
    // worker that owns the heap waits, then put back: a corrupt header must
    // not cut the copy short of what the map says is there.
    const seen = inQuietChild<{ region: number; copied: number; said: string; consistent: boolean }>(`
      const fs = require('node:fs');
      const { Worker } = require('node:worker_threads');
      const gate = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(\`
        const { workerData: gate, parentPort } = require('node:worker_threads');
        const h = require(\${JSON.stringify(${JSON.stringify(root)})});
        const kept = Array.from({ length: 200 }, () => h.malloc(20000));
        parentPort.postMessage('ready');
        Atomics.wait(gate, 0, 0);
        for (const b of kept) b.free();
      \`, { eval: true, workerData: gate });
      await new Promise((resolve) => worker.once('message', resolve));
      const heap = h.maps().filter((r) => r.kind === 'arena-heap').sort((a, b) => b.size - a.size)[0];
      const at = Number(heap.start + 24n);
      const fd = fs.openSync('/proc/self/mem', 'r+');
      const word = Buffer.alloc(8);
      fs.readSync(fd, word, 0, 8, at);
      const said = word.readBigUInt64LE(0);
      const small = Buffer.alloc(8);
      small.writeBigUInt64LE(4096n);
      let s;
      try {
        fs.writeSync(fd, small, 0, 8, at);
        s = h.allocatorSnapshot({ attempts: 1 });
      } finally {
        fs.writeSync(fd, word, 0, 8, at);
        fs.closeSync(fd);
      }
      const copy = s.image.memory.ranges.find((r) => r.base === heap.start);
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await new Promise((resolve) => worker.once('exit', resolve));
      return { region: heap.size, copied: copy === undefined ? -1 : copy.bytes.length, said: String(said), consistent: s.consistent };`);
    // The word said the heap's writable size, as the map did, before it was overwritten.
    expect(BigInt(seen.said)).toBe(BigInt(seen.region));
    expect(seen.copied).toBe(seen.region);
  });

  it('tornReason: mallinfo2 changing, the break moving, [heap] outgrowing the copy, or a top that does not end its heap each tear a copy', () => {
    const seen = inQuietChild<Record<string, string | null>>(`
      const { tornReason } = require(${JSON.stringify(path.join(root, 'dist', 'allocator', 'take-snapshot'))});
      const { copiedMemory } = require(${JSON.stringify(path.join(root, 'dist', 'allocator', 'memory-source'))});
      const s = h.allocatorSnapshot();
      const end = s.image.heap.end;
      const breaks = { copiedTo: end, before: end, after: end };
      const main = h.arenas(s).arenas[0];
      const ranges = s.image.memory.ranges.map((r) => ({ ...r, bytes: Buffer.from(r.bytes) }));
      const heap = ranges.find((r) => r.label === '[heap]');
      heap.bytes.writeBigUInt64LE(0x10n | 1n, Number(main.top.address - heap.base) + 8);
      const shortTop = { ...s, image: { ...s.image, memory: copiedMemory(ranges) } };
      return {
        consistent: tornReason(s, breaks, []) ?? null,
        mallinfo: tornReason({ ...s, mallinfoBefore: { ...s.mallinfoBefore, arena: s.mallinfoBefore.arena + 4096 } }, breaks, []) ?? null,
        moved: tornReason(s, { ...breaks, after: end + 4096n }, []) ?? null,
        top: tornReason(shortTop, breaks, []) ?? null,
        outgrown: tornReason(s, { ...breaks, copiedTo: end - 4096n }, []) ?? null,
      };`);
    expect(seen.consistent).toBeNull();
    expect(seen.mallinfo).toBe('mallinfo2() changed during the copy (arena): another thread used malloc');
    expect(seen.moved).toMatch(/^the program break moved during the copy \(0x[0-9a-f]+ → 0x[0-9a-f]+\)$/);
    expect(seen.outgrown).toMatch(/^\[heap\] grew to the break 0x[0-9a-f]+, past the 0x[0-9a-f]+ the copy had room for$/);
    expect(seen.top).toMatch(/^main_arena's top ends at 0x[0-9a-f]+, not at the break/);
  });
});
