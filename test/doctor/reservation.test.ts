// doctor() and attach(pid).doctor() in a process holding a reservation as
// AddressSanitizer maps its shadow: 17 TiB of private read-write anonymous
// memory (MAP_NORESERVE), preloaded from test/fixtures/reserve-preload.c.
// A pagemap read of every page of every such region made one byte a page
// (2^32 + 2^28 of them here: V8 refused the array, and the diagnosis failed
// with "Invalid typed array length"). The diagnosis must come, with the
// mmapped chunks' residency right, which is all doctor needs from such
// memory.
import { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtures, NO_PYTHON, PYTHON, startTarget } from '../helpers/target';
import { inQuietChild } from '../helpers/quiet-child';
import { attach } from '../../lib/index';
import { TOTALLED_FIELDS } from '../../lib/allocator/totals';
import { openPagemap } from '../../lib/doctor/residency';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// The doctor of this file runs in a quiet child and in python3: this process's own room does not matter.
heapRoomNotNeeded();

const SHADOW = 17n << 40n;
const PAGE = 4096;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-reservation-'));
const children: ChildProcess[] = [];
let preload = '';
let noCompiler: string | undefined;

beforeAll(() => {
  let programs: Record<string, string>;
  ({ programs, noCompiler } = buildFixtures(dir, ['reserve-preload'], { shared: true }));
  preload = programs['reserve-preload'];
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Beside whatever this process preloads itself (the sanitizer's runtime, which the addon it built needs).
const withPreload = () => ({ LD_PRELOAD: [process.env.LD_PRELOAD, preload].filter((p) => p).join(' ') });

describe('doctor in a process with a reservation of 17 TiB, as ASan maps its shadow', () => {
  it('doctor(): the diagnosis comes, and a written 40 MiB mmapped chunk is found wholly resident', ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    // 40 MiB: above the most glibc ever raises the mmap threshold to (32 MiB), so always a chunk of its own.
    const out = inQuietChild<{ shadow: boolean; chunk: string; found: { address: string; size: number; resident: number }[]; nMmaps: number }>(`
      const shadow = h.maps().some((r) => r.kind === 'anonymous' && r.perms === 'rw-p' && r.end - r.start >= ${SHADOW}n);
      const { kept, steps } = h.runPlan([{ op: 'malloc', size: 40 << 20 }, { op: 'touch', step: 0 }], { keep: true });
      const d = h.doctor();
      const chunk = steps[0].address - 16n;
      for (const a of kept.values()) a.free();
      return { shadow, chunk, found: d.mmapped.chunks, nMmaps: d.mmapped.nMmaps };
    `, withPreload());
    if (!out.shadow) skip('the kernel refused the 17 TiB MAP_NORESERVE mapping the preload asks for');
    const chunk = out.found.find((c) => c.address === out.chunk);
    expect(chunk).toBeDefined();
    expect(chunk!.size).toBeGreaterThan(40 << 20);
    expect(chunk!.resident).toBe(chunk!.size);
    expect(out.found.length).toBeLessThanOrEqual(out.nMmaps);
  });

  it("attach(pid).doctor() of Debian's python3: its totals are its own mallinfo2(), and each mmapped chunk's residency is its pagemap's", async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const env = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', ...withPreload() };
    const { child, next } = startTarget(PYTHON, [path.join(__dirname, '..', 'fixtures', 'attach-target.py')], { env, into: children });
    const mallinfo = JSON.parse((await next(2))[1]) as Record<string, number>;
    const target = attach(child.pid!);
    if (!target.maps().some((r) => r.kind === 'anonymous' && r.perms === 'rw-p' && r.end - r.start >= SHADOW)) {
      skip('the kernel refused the 17 TiB MAP_NORESERVE mapping the preload asks for');
    }
    const d = target.doctor();
    expect(d.snapshot.consistent).toBe(true);
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    expect([d.mmapped.nMmaps, d.mmapped.mmappedMem]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    // Every chunk found (the search past Python's arenas included); the reservation is too big to search, and left so.
    expect([d.mmapped.found, d.mmapped.bytes]).toEqual([mallinfo.hblks, mallinfo.hblkhd]);
    expect(d.mmapped.unsearched).toBeGreaterThanOrEqual(Number(SHADOW) - PAGE);
    // The target is blocked on its stdin: its pages stay as the diagnosis found them.
    const pagemap = openPagemap(child.pid!, PAGE, (e) => e);
    try {
      for (const c of d.mmapped.chunks) {
        const resident = pagemap.pages(c.address, c.address + BigInt(c.size)).reduce((n, p) => n + p, 0) * PAGE;
        expect({ chunk: c.address, resident: c.resident }).toEqual({ chunk: c.address, resident });
      }
    } finally {
      pagemap.close();
    }
  });
});
