// The worker thread loads the compiled package (dist/) and isolated runs spawn
// dist/experiments/child.js: run `npx tsc -p .` first.
import { beforeAll, describe, expect, it } from 'vitest';
import { ArenaChunkRow, ArenaHeapRow, ArenaReportRow, ArenaRow, HeapInfoRow } from '../../lib/experiments/arenas';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { bytes } from '../../lib/format';

type Result = ExperimentResult<ArenaRow>;

const MIB64 = 64 * 1024 * 1024;

const chunks = (r: Result) => r.rows.filter((row): row is ArenaChunkRow => row.what === 'chunk');
const heaps = (r: Result) => r.rows.filter((row): row is ArenaHeapRow => row.what === 'arena-heap');
const heapInfo = (r: Result) => r.rows.find((row): row is HeapInfoRow => row.what === 'heap-info');
const reports = (r: Result) => r.rows.filter((row): row is ArenaReportRow => row.what === 'malloc-info');

describe('arenas', () => {
  let result: Result;
  beforeAll(async () => {
    result = (await run('arenas')) as Result;
  });

  it('runs in a fresh child by default: the worker\'s arena stays for the life of the process', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
  });

  it('sets the A bit on the worker\'s chunks and not on the main thread\'s', () => {
    const rows = chunks(result);
    const main = rows.filter((r) => r.thread === 'main');
    const worker = rows.filter((r) => r.thread === 'worker');
    expect(main).toHaveLength(2);
    expect(worker).toHaveLength(2 + 32);
    for (const r of main) expect(r.header.nonMainArena).toBe(false);
    for (const r of worker) {
      expect(r.header.nonMainArena).toBe(true);
      expect((r.header.rawSize & 0x4n) !== 0n).toBe(true);
      expect(r.header.isMmapped).toBe(false);
    }
    expect(result.findings[0]).toMatch(/set in 2 of 2 size words .*set in 0 of 2/);
  });

  it('puts the worker\'s chunks in an arena heap and the main thread\'s elsewhere', () => {
    const rows = chunks(result);
    for (const r of rows.filter((row) => row.thread === 'worker')) expect(r.region).toBe('arena-heap');
    for (const r of rows.filter((row) => row.thread === 'main')) expect(r.region).not.toMatch(/^arena-/);
    // All worker chunks, the growth blocks included, lie in one and the same heap.
    const starts = new Set(rows.filter((row) => row.thread === 'worker').map((r) => r.regionStart));
    expect(starts.size).toBe(1);
  });

  it('the arena heap starts on a 64 MiB boundary and reserves 64 MiB in all', () => {
    const snapshots = heaps(result);
    expect(snapshots.map((h) => h.snapshot)).toEqual(['before-growth', 'after-growth', 'at-read']);
    for (const h of snapshots) {
      expect(h.start % BigInt(MIB64)).toBe(0n);
      expect(h.misalignment).toBe(0);
      expect(h.rwSize + h.reservedSize).toBe(MIB64);
      expect(h.total).toBe(MIB64);
      expect(h.reservedSize).toBeGreaterThan(0);
    }
    expect(new Set(snapshots.map((h) => h.start)).size).toBe(1);
  });

  it('grows by mprotect: the rw part grows, the reservation stays 64 MiB', () => {
    const [before, after] = heaps(result);
    expect(after.rwSize).toBeGreaterThan(before.rwSize);
    expect(after.reservedSize).toBe(before.reservedSize - (after.rwSize - before.rwSize));
    // mprotect works in whole pages.
    expect((after.rwSize - before.rwSize) % result.environment.pageSize).toBe(0);
    expect(result.findings.some((f) => f.startsWith(`Those blocks grew the rw-p part from ${bytes(before.rwSize)} to ${bytes(after.rwSize)}`))).toBe(true);
    expect(result.findings).toContainEqual(expect.stringContaining(`mallinfo's arena (system bytes of all arenas) went from ${before.mallinfoArena} to ${after.mallinfoArena}`));
  });

  it('heap_info at the start of the region points at a malloc_state inside the region', () => {
    const info = heapInfo(result)!;
    const atRead = heaps(result)[2];
    expect(info.start).toBe(atRead.start);
    expect(info.arPtrInside).toBe(true);
    expect(info.arPtr > info.start && info.arPtr < info.start + BigInt(atRead.rwSize)).toBe(true);
    expect(info.arPtrOffset).toBe(Number(info.arPtr - info.start));
    expect(info.prev).toBe(0n);
    expect(info.mprotectSize).toBe(atRead.rwSize);
    expect(info.size).toBeLessThanOrEqual(info.mprotectSize);
    expect(result.findings.some((f) => f.includes(`ar_ptr = 0x${info.arPtr.toString(16)}, ${info.arPtrOffset} bytes into the region`))).toBe(true);
  });

  it('the arena\'s top chunk ends where heap_info says the heap\'s used part ends', () => {
    const info = heapInfo(result)!;
    expect(info.top).toBeDefined();
    expect(info.top! > info.arPtr).toBe(true);
    expect(Number(info.top! - info.start) + info.topSize!).toBe(info.size);
  });

  it('malloc_info has more arenas once the worker runs, one of them matching its heap', () => {
    const before = reports(result).filter((r) => r.report === 'before');
    const after = reports(result).filter((r) => r.report === 'after');
    expect(after.length).toBeGreaterThan(before.length);
    const matched = after.filter((r) => r.matchesWorker);
    expect(matched).toHaveLength(1);
    expect(matched[0].aspaceMprotect).toBe(heapInfo(result)!.mprotectSize);
    expect(result.findings.some((f) => f.startsWith(`malloc_info listed ${before.length} arenas before the worker started and ${after.length} while it ran`))).toBe(true);
    if (after.length - before.length !== 1) {
      expect(result.surprises.some((s) => s.includes(`${after.length - before.length} more, not 1`))).toBe(true);
    }
  });

  it('runs in this process too', async () => {
    const here = (await run('arenas', { isolated: false })) as Result;
    expect(here.environment.isolated).toBe(false);
    expect(here.environment.pid).toBe(process.pid);
    const worker = chunks(here).filter((r) => r.thread === 'worker');
    expect(worker.every((r) => r.header.nonMainArena && r.region === 'arena-heap')).toBe(true);
    for (const h of heaps(here)) expect(h.total).toBe(MIB64);
    expect(heapInfo(here)!.arPtrInside).toBe(true);
  });
});
