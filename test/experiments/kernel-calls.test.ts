import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { KernelCallRow, verdictOf } from '../../lib/experiments/kernel-calls';
import { rangeHolding } from '../../lib/experiments/measure';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { MINSIZE, mmappedChunkSize } from '../../lib/size-classes';
import { pageSize } from '../../lib/stats';
import { blockedBreakSaid } from '../helpers/blocked-break';

const BLOCK_BREAK = path.join(__dirname, '..', 'fixtures', 'block-break.cjs');

// glibc's DEFAULT_TOP_PAD on Linux; the isolated child runs without tunables.
const TOP_PAD = 128 * 1024;

describe('kernel-calls', () => {
  let result: ExperimentResult<KernelCallRow>;
  const row = (role: KernelCallRow['role']) => result.rows.find((r) => r.role === role)!;
  // Where the run's child could not grow its heap, no request can move the break, and the experiment says so
  // (the last test below checks that in a child blocked on purpose).
  const blocked = () => blockedBreakSaid(result);
  beforeAll(async () => {
    result = (await run('kernel-calls')) as ExperimentResult<KernelCallRow>;
  });

  it('ran in a fresh child by default', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
    expect(result.rows.map((r) => r.role)).toEqual(expect.arrayContaining(['small', 'past-top', 'large', 'free-large']));
  });

  it('the break moves exactly when the top chunk cannot hold the chunk and MINSIZE more', ({ skip }) => {
    skip(blocked() !== undefined, `this run's child could not grow its heap: ${blocked()}`);
    const heap = result.rows.filter((r) => r.op === 'malloc' && !r.mmapped);
    expect(heap.length).toBeGreaterThanOrEqual(2);
    for (const r of heap) {
      expect({ size: r.size, moved: r.breakDelta > 0 }).toEqual({ size: r.size, moved: r.chunkSize + MINSIZE > r.topBefore });
    }
  });

  it('the small request came from memory malloc held', () => {
    const small = row('small');
    expect(small.verdict).toBe('served from memory it held');
    expect(small.breakDelta).toBe(0);
    expect(small.mapsChange.mapped).toEqual([]);
    expect(small.region?.kind).toBe('heap');
  });

  it('the request past the top chunk moved the break with brk, by whole pages and the top pad', ({ skip }) => {
    skip(blocked() !== undefined, `this run's child could not grow its heap: ${blocked()}`);
    const p = row('past-top');
    expect(p.mmapped).toBe(false);
    expect(p.verdict).toBe('brk');
    expect(p.breakDelta % pageSize()).toBe(0);
    // sysmalloc asks for chunk + top_pad + MINSIZE − top, rounded up to a page.
    const rest = p.breakDelta - (p.chunkSize - p.topBefore) - TOP_PAD;
    expect(rest).toBeGreaterThanOrEqual(MINSIZE);
    expect(rest).toBeLessThan(MINSIZE + pageSize());
    // The new memory continued the old top chunk.
    expect(p.topAfter).toBe(p.topBefore + p.breakDelta - p.chunkSize);
    expect(p.mapsChange.changed.some((c) => c.after.kind === 'heap' && c.after.end === p.breakAfter)).toBe(true);
    const extra = p.breakDelta - (p.chunkSize - p.topBefore);
    expect(result.findings.some((f) => f.startsWith('The first break move seen in this run was +') && f.includes(`${extra} bytes beyond what was missing`))).toBe(true);
  });

  it('1 MiB gets its own anonymous mapping holding the address, and its free removes it', () => {
    const large = row('large');
    // 1 MiB, or mp_.mmap_threshold itself when a chunk node freed while starting had raised it past that: a surprise says so.
    expect(large.size).toBeGreaterThanOrEqual(1 << 20);
    if (large.size > 1 << 20) expect(result.surprises.some((f) => f.startsWith(`The large request was ${large.size} bytes`))).toBe(true);
    expect(large.verdict).toBe('mmap');
    expect(large.mmapped).toBe(true);
    expect(large.breakDelta).toBe(0);
    expect(large.chunkSize).toBe(mmappedChunkSize(large.size, pageSize()));
    const mapped = rangeHolding(large.mapsChange.mapped, large.address)!;
    expect(mapped).toBeDefined();
    expect(mapped.start).toBe(large.address - 16n);
    expect(mapped.size).toBeGreaterThanOrEqual(large.chunkSize);
    expect(large.region?.kind).toBe('anonymous');
    expect(large.region?.perms).toBe('rw-p');

    const freed = row('free-large');
    expect(freed.verdict).toBe('munmap');
    expect(freed.breakDelta).toBe(0);
    const unmapped = rangeHolding(freed.mapsChange.unmapped, large.address)!;
    expect(unmapped.start).toBe(mapped.start);
    expect(unmapped.end).toBeGreaterThanOrEqual(mapped.start + BigInt(large.chunkSize));
    expect(freed.region?.kind).toBe('anonymous');
  });

  it('every verdict follows from its row, and every row has a finding with its numbers', ({ skip }) => {
    skip(blocked() !== undefined, `this run's child could not grow its heap: ${blocked()}`);
    for (const r of result.rows) {
      expect(r.verdict).toBe(verdictOf(r.op, r.address, r.breakDelta, r.mapsChange));
      expect(r.breakDelta).toBe(Number(r.breakAfter - r.breakBefore));
    }
    result.rows.forEach((r, i) => expect(result.findings[i]).toContain(`(${r.size})`));
    expect(result.findings.some((f) => /already had a \[heap\] of .*\(\d+ B\)/.test(f))).toBe(true);
    // None, but the one the large row's own test above checks: node's start-up raised mp_.mmap_threshold past 1 MiB
    // (a full run met it here too).
    const large = row('large');
    expect(result.surprises).toEqual(large.size > 1 << 20 ? [expect.stringMatching(`^The large request was ${large.size} bytes`)] : []);
  });

  it('under a 64 KiB mmap threshold, sizes past-top from mp_ and fills every free chunk the bins hold, or says what got in the way', async () => {
    const low = (await run('kernel-calls', { tunables: { 'glibc.malloc.mmap_threshold': 65536 } })) as ExperimentResult<KernelCallRow>;
    const p = low.rows.find((r) => r.role === 'past-top')!;
    // Two pages below the threshold glibc holds, not below the default.
    expect(p.chunkSize).toBe(65536 - 2 * pageSize());
    expect(p.mmapped).toBe(false);
    const repeated = low.findings.find((f) => f.startsWith('In run'));
    if (p.verdict === 'brk') {
      if (repeated !== undefined) expect(repeated).toMatch(/^In runs? 1(–\d)? of this plan the past-top request was served from memory malloc held: .* run [23] is shown\.$/);
    } else {
      expect(repeated).toMatch(/run 3 is shown\.$/);
      expect(low.surprises.some((s) => s.startsWith(`malloc(${p.size}) was chosen to overflow the top chunk and every free chunk in main_arena's bins, yet the break did not move: `) &&
        (s.includes("free chunk reached main_arena's bins after they were read and before the plan ran") || s.includes('the top chunk had grown to')))).toBe(true);
    }
    expect(low.surprises.join(' ')).not.toContain('other threads');
  });

  it('runs in this process too and describes what it saw', async () => {
    const here = (await run('kernel-calls', { isolated: false })) as ExperimentResult<KernelCallRow>;
    expect(here.environment.isolated).toBe(false);
    expect(here.environment.pid).toBe(process.pid);
    for (const r of here.rows) expect(r.verdict).toBe(verdictOf(r.op, r.address, r.breakDelta, r.mapsChange));
    const large = here.rows.find((r) => r.role === 'large')!;
    // In-process an earlier free of a bigger mmapped chunk may have raised the threshold: then it must say so.
    if (!large.mmapped) expect(here.surprises.some((s) => s.startsWith('malloc(1 MiB'))).toBe(true);
  });

  it('in a child whose break cannot grow, names that cause, measured, and does not measure again', async () => {
    const was = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${was ?? ''} --require ${BLOCK_BREAK}`.trim();
    let blockedRun: ExperimentResult<KernelCallRow>;
    try {
      blockedRun = (await run('kernel-calls')) as ExperimentResult<KernelCallRow>;
    } finally {
      if (was === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = was;
    }
    const p = blockedRun.rows.find((r) => r.role === 'past-top')!;
    expect(p.breakDelta).toBe(0);
    expect(blockedRun.environment.refusedChildren).toHaveLength(2);
    const said = blockedRun.surprises.filter((s) => s.startsWith(`malloc(${p.size}) was chosen to overflow`));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/brk\(\) could not grow the heap .*NONCONTIGUOUS_BIT is set/);
    expect(said[0]).not.toContain('after they were read');
    expect(blockedRun.findings.some((f) => f.includes('measured again') || f.startsWith('The break never moved up'))).toBe(false);
  });
});
