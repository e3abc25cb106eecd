// A [heap] over 1 GiB: walked whole, from one snapshot, without a second copy.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SYNC_CHILD } from '../helpers/sync-child';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// The heap walked is a child's: no live heap of this process is read.
heapRoomNotNeeded();

const ROOT = path.join(__dirname, '..', '..');
const NEED_ROOM = path.join(ROOT, 'test', 'fixtures', 'need-break-room.cjs');
const BLOCKED = 'BLOCKED ';

describe('a [heap] over 1 GiB', () => {
  it('is walked to its top chunk and snapshotted, and the snapshot is not copied again', () => {
    // In a child: growing [heap] by a GiB changes the process for good.
    // --single-threaded: no V8 helper thread moves mallinfo2() while the
    // GiB is read, so one snapshot is enough (each costs seconds here).
    // About one node start in fifty has V8's code range right above [heap]
    // (lib/break-room.ts; one full run's child grew its heap 2 MiB): such a
    // child says so before it starts (fixtures/need-break-room.cjs), and
    // another is started.
    const script = `
      const h = require(${JSON.stringify(ROOT)});
      const { readFileSync, writeFileSync } = require('node:fs');
      const bytes = (field) => 1024 * Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(field + ':\\\\s+(\\\\d+)'))[1]);
      const start = h.maps().find((r) => r.kind === 'heap').start;
      // 64 KiB blocks are below the mmap threshold: each one moves the break.
      // (Bounded: under another allocator, as in npm run sanitize, the break stays.)
      const held = [];
      while (h.programBreak() - start <= (1n << 30n) + (64n << 20n) && held.length < 20000) held.push(h.malloc(65536));
      const length = Number(h.programBreak() - start);
      // Written, as a heap in use is: a page never touched would be faulted
      // in by the read, and counted below.
      for (const a of held) a.fill(0x5a);

      const walk = h.walkHeap({ attempts: 1 });
      const addresses = new Set(walk.main.chunks.map((c) => c.address + 16n));
      const walked = {
        complete: walk.main.complete, reason: walk.main.reason, size: Number(walk.main.end - walk.main.start),
        found: held.filter((a) => addresses.has(a.address)).length,
      };
      gc();

      // The snapshot is the memory the kernel copied into: the peak resident
      // set grows by the heap's size once, not twice. (5 resets the peak.)
      writeFileSync('/proc/self/clear_refs', '5');
      const rss = bytes('VmRSS');
      const snapshot = h.mainHeapSnapshot();
      const peakGrowth = bytes('VmHWM') - rss;
      const snapshotted = { length: snapshot.bytes.length, ending: h.walkSnapshot(snapshot.bytes, snapshot.base, snapshot).ending, peakGrowth };
      for (const a of held) a.free();
      console.log(JSON.stringify({ length, held: held.length, walked, snapshotted }));
    `;
    const rooms: string[] = [];
    const start = () => spawnSync(process.execPath, ['--single-threaded', '--expose-gc', '--require', NEED_ROOM, '-e', script], {
      ...SYNC_CHILD,
      encoding: 'utf8', env: { ...process.env, HEAPSCOPE_TEST_NEEDED_ROOM: String((1n << 30n) + (128n << 20n)), HEAPSCOPE_TEST_BLOCKED: BLOCKED },
    });
    let child = start();
    while (child.status === 0 && child.stdout.startsWith(BLOCKED) && rooms.length < 4) {
      rooms.push(child.stdout.slice(BLOCKED.length));
      child = start();
    }
    expect(child.stdout.startsWith(BLOCKED), `five children in a row had too little room above the break: ${rooms.join(', ')} bytes`).toBe(false);
    expect(child.signal, child.stderr).toBeNull();
    expect(child.status, child.stderr).toBe(0);
    const { length, held, walked, snapshotted } = JSON.parse(child.stdout);
    expect(length).toBeGreaterThan(2 ** 30);
    expect(walked).toMatchObject({ complete: true, found: held });
    expect(walked.reason).toBeUndefined();
    expect(walked.size).toBeGreaterThanOrEqual(length);
    expect(snapshotted.length).toBeGreaterThanOrEqual(length);
    expect(snapshotted.ending).toBe('top');
    expect(snapshotted.peakGrowth).toBeLessThan(length * 1.5);
  }, 600_000);
});
