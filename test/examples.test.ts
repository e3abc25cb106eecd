// examples/fragmentation.mjs run as a reader runs it (node, from the
// package root, heapscope imported by name), and what the README says of it
// checked against its own --json output.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { STATM_SLACK } from './helpers/statm';
import { SYNC_CHILD } from './helpers/sync-child';
import { heapRoomNotNeeded } from './helpers/heap-room';

// The example runs in a node of its own: no live heap of this process is read.
heapRoomNotNeeded();

const root = path.join(__dirname, '..');

interface Run {
  mainNoncontiguous: boolean;
  cpus: number;
  workers: number;
  mmapThresholdSaid: number;
  mmapThreshold: number;
  largeMax: number;
  bursts: { blocks: number; allocated: number; kept: number; keptBytes: number }[];
  arenaMax: number;
  arenas: number;
  threadArenas: number;
  system: number;
  free: number;
  advice: { rule: string; text: string }[];
  trim: { predicted: number; atTrim: number; stillResident: number; elsewhere: number; released: boolean; drop: number };
}

describe('examples/fragmentation.mjs', () => {
  it('fragments one arena per worker, and MALLOC_ARENA_MAX=2 caps them; malloc_trim(0) gives back what the doctor predicted', () => {
    const child = spawnSync(process.execPath, [path.join(root, 'examples', 'fragmentation.mjs'), '--json'], { ...SYNC_CHILD, cwd: root, encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const { default: byDefault, arenaMax2: capped } = JSON.parse(child.stdout) as { default: Run; arenaMax2: Run };

    // The same workload in both runs: one bound on large blocks, below either run's mp_.mmap_threshold (a child's may
    // have risen while Node started), the seeded sizes, and what each worker kept.
    expect(capped.largeMax).toBe(byDefault.largeMax);
    expect(byDefault.largeMax).toBe(Math.floor(Math.min(byDefault.mmapThresholdSaid, capped.mmapThresholdSaid) * 0.75));
    for (const run of [byDefault, capped]) expect(run.largeMax).toBeLessThan(run.mmapThreshold);
    expect(capped.bursts).toEqual(byDefault.bursts);
    expect(byDefault.bursts).toHaveLength(byDefault.workers);
    expect(byDefault.bursts.every((b) => b.kept > 0 && b.keptBytes > 0)).toBe(true);

    // mp_.arena_max as each process read it: 0 (8 arenas per CPU) by default, 2 from the environment.
    expect(byDefault.arenaMax).toBe(0);
    expect(capped.arenaMax).toBe(2);
    // arena_get2 compares narenas, which counts main_arena, with arena_max: two arenas in all.
    expect(capped.arenas).toBeLessThanOrEqual(2);
    expect(byDefault.arenas).toBeGreaterThan(2);
    // With 2 CPUs or more, 8 × CPUs leaves room for main_arena, Node's own threads' and one per worker.
    if (os.availableParallelism() >= 2) expect(byDefault.threadArenas).toBeGreaterThanOrEqual(byDefault.workers);
    // The workers' freed memory is shared in two arenas, not kept in one each.
    expect(capped.system).toBeLessThan(byDefault.system);
    expect(capped.free).toBeLessThan(byDefault.free);
    // The doctor advises the cap where two or more thread arenas hold the free memory, and cannot under it.
    expect(byDefault.advice.map((a) => a.rule)).toEqual(expect.arrayContaining(['arena-max', 'trim']));
    expect(capped.advice.map((a) => a.rule)).not.toContain('arena-max');

    for (const run of [byDefault, capped]) {
      const t = run.trim;
      expect(t.released).toBe(true);
      expect(t.drop).toBeGreaterThan(0);
      // Every predicted page resident right before the call went, but those the diagnosis's own allocations took
      // back (still resident after), and with them the pages of chunks it freed after its snapshot (its garbage
      // collected), which the trim measures outside the predicted ranges: within statm's per-CPU slack.
      expect(Math.abs(t.drop - (t.atTrim - t.stillResident + t.elsewhere))).toBeLessThanOrEqual(STATM_SLACK);
      // Those are few, as in the doctor's own test. (A run whose break was blocked, main_arena non-contiguous, once
      // predicted 23 of 40 MiB: its chunks outside [heap] had not been copied.) Where the break was blocked, the drop
      // still matches (above), but trims less and takes more from outside the ranges: with the break blocked on purpose
      // (test/fixtures/block-break.cjs), 0.6-1.7 MiB of 24 MiB under the cap, 7 % once in three runs, against 0.5 MiB
      // of 40 MiB (1.2-1.3 %) with room; test/doctor/trim.test.ts bounds that case in a heap made for it.
      if (!run.mainNoncontiguous) expect(t.elsewhere).toBeLessThan(t.atTrim * 0.05);
    }
  }, 180_000);
});
