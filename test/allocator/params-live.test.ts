// mallocParams() in processes started with glibc tunables: every value set is
// read back from mp_, and global_max_fast is read at the offset measured
// in forks of that process, each of which moved its own limit.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { layoutFor } from '../../lib/allocator/layouts';
import { libcFileOf } from '../../lib/allocator/libc-file';
import { liveMallocPar, locateLive } from '../../lib/allocator/live-par';
import { maxFastOffset, readGlobalMaxFast } from '../../lib/allocator/max-fast';
import { allocatorSnapshot, arenas, glibcVersion, maps, mallocParams } from '../../lib/index';
import { SYNC_CHILD } from '../helpers/sync-child';
import { HERE, NO_FASTBINS, tcacheMaxBytesFor } from '../helpers/glibc-here';

const root = path.join(__dirname, '..', '..');

describe('mallocParams()', () => {
  it('reads back what GLIBC_TUNABLES set, every field of this version with a meaning, and global_max_fast as set', () => {
    const out = execFileSync(process.execPath, ['--single-threaded', '-e', `
      const h = require('heapscope');
      const s = h.allocatorSnapshot();
      const p = h.mallocParams(s);
      console.log(JSON.stringify({ fields: p.fields, maxFast: p.globalMaxFast, mallinfo: s.mallinfo },
        (k, v) => typeof v === 'bigint' ? v.toString() : v));`], {
      ...SYNC_CHILD,
      cwd: root, encoding: 'utf8',
      env: {
        ...process.env,
        GLIBC_TUNABLES: 'glibc.malloc.tcache_count=3:glibc.malloc.tcache_max=500:glibc.malloc.mxfast=96:glibc.malloc.mmap_threshold=300000:glibc.malloc.top_pad=196608:glibc.malloc.arena_max=3',
      },
    });
    const seen = JSON.parse(out) as { fields: { name: string; value: string | number; meaning: string }[]; maxFast: { found: boolean; value: number }; mallinfo: { hblks: number } };
    const value = Object.fromEntries(seen.fields.map((f) => [f.name, String(f.value)]));
    expect(seen.fields.map((f) => f.name)).toEqual(layoutFor(glibcVersion()).mallocPar.fields.map((f) => f.name));
    expect(seen.fields.filter((f) => f.meaning === '')).toEqual([]);
    expect(value).toMatchObject({
      tcache_count: '3', tcache_max_bytes: String(tcacheMaxBytesFor(500)), mmap_threshold: '300000', top_pad: '196608', arena_max: '3', no_dyn_threshold: '1',
    });
    expect(value.n_mmaps).toBe(String(seen.mallinfo.hblks));
    // The tunable set it before main(); the forks that measured its offset moved their own, not this one. From 2.43 there is none.
    expect(seen.maxFast).toMatchObject(HERE.fastbins ? { found: true, value: 96 } : { found: false, absent: true });
  });

  it('measures the offset once per libc file, in forks of this process, refuses another file, and never guesses from a wrong offset', ({ skip }) => {
    if (NO_FASTBINS !== undefined) skip(`${NO_FASTBINS}, and no global_max_fast to measure`);
    const libc = libcFileOf(maps())!;
    const measured = maxFastOffset(libc);
    expect(measured).toMatchObject({ offset: expect.any(BigInt) });
    expect(maxFastOffset(libc)).toBe(measured);
    expect(maxFastOffset({ ...libc, key: `${libc.key} (another build)` })).toEqual({
      reason: `it is measured in forks of this process, which maps another libc (${libc.key}) than this one (${libc.key} (another build))`,
    });
    const s = allocatorSnapshot();
    const p = mallocParams(s);
    expect(p.globalMaxFast.found).toBe(true);
    // Pointed at mp_.trim_threshold instead: a value set_max_fast never gives.
    const main = arenas(s).arenas[0].address;
    const wrong = readGlobalMaxFast(s.image, main, { offset: p.address - main }, libc.key);
    expect(wrong).toMatchObject({ found: false, reason: expect.stringMatching(/which set_max_fast never gives: the measured offset does not fit this libc/) });
    expect(readGlobalMaxFast(s.image, main, { reason: 'no fork' }, libc.key)).toEqual({ found: false, reason: 'its offset from main_arena is not known: no fork' });
  });

  it("is what the experiments read: mp_ located from libc's data read live, where the frozen snapshot locates it, and read now", () => {
    const layout = layoutFor(glibcVersion());
    // Here, beside vitest's and V8's threads, and in a quiet child started with tunables.
    const here = mallocParams();
    expect(locateLive(layout)).toBe(here.address);
    const live = liveMallocPar();
    expect(live.address).toBe(here.address);
    expect(live.tcacheCount).toBe(here.values.tcacheCount);
    const out = execFileSync(process.execPath, ['--single-threaded', '-e', `
      const { layoutFor } = require('./dist/allocator/layouts');
      const { liveMallocPar, locateLive } = require('./dist/allocator/live-par');
      const h = require('heapscope');
      const located = locateLive(layoutFor(h.glibcVersion()));
      const live = liveMallocPar();
      const p = h.mallocParams();
      console.log(JSON.stringify({ located, live: [live.address, live.mmapThreshold, live.tcacheCount, live.topPad], frozen: [p.address, p.values.mmapThreshold, p.values.tcacheCount, p.values.topPad] },
        (k, v) => typeof v === 'bigint' ? v.toString() : v));`], {
      ...SYNC_CHILD, cwd: root, encoding: 'utf8',
      env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.tcache_count=5:glibc.malloc.mmap_threshold=262144:glibc.malloc.top_pad=65536' },
    });
    const seen = JSON.parse(out) as { located: string; live: string[]; frozen: string[] };
    expect(seen.located).toBe(seen.frozen[0]);
    expect(seen.live).toEqual(seen.frozen);
    expect(seen.live.slice(1)).toEqual(['262144', '5', '65536']);
  });
});
