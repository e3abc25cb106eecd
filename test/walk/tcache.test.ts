// Decoding the calling thread's tcache_perthread_struct.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { glibcVersion, PlanStep, walkHeap } from '../../lib/index';

const root = path.join(__dirname, '..', '..');
const [major, minor] = glibcVersion().split('.').map(Number);
const atLeast = (m: number) => major > 2 || (major === 2 && minor >= m);

describe('tcache', () => {
  it('has 64 bins, uint16_t counts from glibc 2.30 and safe-linking from 2.32, every list as long as its count', () => {
    const { tcache } = walkHeap({ arena: 'all' });
    expect(tcache).toBeDefined();
    expect(tcache!.bins).toHaveLength(64);
    expect(tcache!.countWidth).toBe(atLeast(30) ? 2 : 1);
    expect(tcache!.safeLinking).toBe(atLeast(32));
    expect(tcache!.bins.map((b) => b.chunkSize)).toEqual(Array.from({ length: 64 }, (_, i) => 32 + 16 * i));
    for (const bin of tcache!.bins) {
      expect(bin.reason).toBeUndefined();
      expect(bin.entries).toHaveLength(bin.count);
      for (const entry of bin.entries) expect(entry % 16n).toBe(0n);
    }
  });

  it('finds chunks freed in the same native call at the head of their bin, newest first', () => {
    // Draining first empties the bin, so the two frees are not pushed to a fastbin by a full bin.
    const drain: PlanStep[] = Array.from({ length: 8 }, () => ({ op: 'malloc', size: 100 }));
    const x = drain.length;
    const walk = walkHeap({
      arena: 'all',
      before: [
        ...drain,
        { op: 'malloc', size: 100 }, { op: 'header', step: x },
        { op: 'malloc', size: 100 }, { op: 'header', step: x + 2 },
        { op: 'free', step: x }, { op: 'free', step: x + 2 },
      ],
    });
    const X = walk.steps[x].address!;
    const Y = walk.steps[x + 2].address!;
    const sizeX = walk.steps[x + 1].header!.size;
    const sizeY = walk.steps[x + 3].header!.size;
    const bin = walk.tcache!.bins[(sizeX - 32) / 16];
    expect(bin.chunkSize).toBe(sizeX);
    if (sizeY === sizeX) {
      // The second entry is only right if its safe-linked pointer was demangled.
      expect(bin.entries.slice(0, 2)).toEqual([Y, X]);
    } else {
      expect(bin.entries[0]).toBe(X);
    }
    const chunk = [walk.main, ...walk.threadHeaps].flatMap((h) => h.chunks).find((c) => c.address === X - 16n);
    expect(chunk?.state).toBe('tcache');
  });

  it('with glibc.malloc.tcache_count=0 every bin is empty, even right after a free', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const { walkHeap } = require('heapscope');
      const w = walkHeap({ before: [{ op: 'malloc', size: 100 }, { op: 'free', step: 0 }] });
      console.log(JSON.stringify({
        found: w.tcache !== undefined,
        counts: w.tcache.bins.map((b) => b.count),
        entries: w.tcache.chunks,
        complete: w.tcache.complete,
        tunables: process.env.GLIBC_TUNABLES,
      }));`], { cwd: root, encoding: 'utf8', env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' } });
    const seen = JSON.parse(out) as { found: boolean; counts: number[]; entries: number; complete: boolean; tunables: string };
    expect(seen).toEqual({ found: true, counts: new Array(64).fill(0), entries: 0, complete: true, tunables: 'glibc.malloc.tcache_count=0' });
  });
});
