import { beforeAll, describe, expect, it } from 'vitest';
import { ChunkSizeRow } from '../../lib/experiments/chunk-sizes';
import { stairs } from '../../lib/experiments/chunk-sizes/measure';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { withArticle } from '../../lib/format';
import { MINSIZE, requestToChunkSize, usableSizeOf } from '../../lib/size-classes';
import { pageSize } from '../../lib/stats';
import { MMAPPED_TAIL } from '../helpers/glibc-here';

describe('chunk-sizes', () => {
  let result: ExperimentResult<ChunkSizeRow>;
  beforeAll(async () => {
    result = (await run('chunk-sizes')) as ExperimentResult<ChunkSizeRow>;
  });

  it('ran in a fresh child by default and says so', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
    expect(result.question).toMatch(/malloc\(n\)/);
  });

  it('measures every request from 0 to 1 KiB and the probes', () => {
    const requests = result.rows.map((r) => r.request);
    expect(requests.slice(0, 1025)).toEqual(Array.from({ length: 1025 }, (_, n) => n));
    expect(requests.at(-1)).toBe(4 << 20);
  });

  it('every heap chunk follows request2size or is an exhausted chunk, flagged with its sizes', () => {
    const heap = result.rows.filter((r) => !r.header.isMmapped);
    for (const row of heap) {
      expect(row.usableSize).toBe(row.chunkSize - 8);
      if (row.chunkSize === requestToChunkSize(row.request)) continue;
      const extra = row.chunkSize - requestToChunkSize(row.request);
      expect(extra).toBeGreaterThan(0);
      expect(extra).toBeLessThan(MINSIZE);
      expect(result.surprises.some((s) => s.startsWith(`malloc(${row.request}) got ${withArticle(row.chunkSize)}-byte chunk`))).toBe(true);
    }
  });

  it('mmapped probes are whole pages with usable = chunk - 16 (from 2.43, 16 bytes short of whole pages with usable = chunk - 8)', () => {
    const mapped = result.rows.filter((r) => r.header.isMmapped);
    expect(mapped.length).toBeGreaterThan(0);
    for (const row of mapped) {
      expect((row.chunkSize + MMAPPED_TAIL) % pageSize()).toBe(0);
      expect(row.usableSize).toBe(usableSizeOf(row.chunkSize, true, MMAPPED_TAIL));
    }
    // A 4 MiB request is above the highest the dynamic threshold reaches before it (the 1 MiB probe).
    expect(result.rows.at(-1)!.header.isMmapped).toBe(true);
  });

  it('states what it measured, with the numbers', () => {
    const ten = result.rows[10];
    expect(result.findings).toContain(
      `malloc(10) returned ${withArticle(ten.chunkSize)}-byte chunk with ${ten.usableSize} usable bytes: ${ten.usableSize - 10} more than asked for.`,
    );
    const min = Math.min(...result.rows.map((r) => r.chunkSize));
    expect(result.findings).toContain(`The smallest chunk handed out was ${min} bytes.`);
    expect(result.findings.some((f) => /^Every returned address was a multiple of (16|32|64|128|\d+)\.$/.test(f))).toBe(true);
  });

  it('the staircase climbs in 16-byte steps from a 32-byte minimum', () => {
    const exact = result.rows.filter((r) => r.request <= 1024 && r.chunkSize === requestToChunkSize(r.request));
    const steps = stairs(exact);
    expect(steps[0].chunkSize).toBe(32);
    expect(result.findings.some((f) => f.startsWith('Chunk sizes climb in steps of 16 bytes'))).toBe(true);
  });

  it('runs in this process too', async () => {
    const here = await run('chunk-sizes', { isolated: false });
    expect(here.environment.isolated).toBe(false);
    expect(here.environment.pid).toBe(process.pid);
    expect(here.rows.length).toBe(result.rows.length);
  });
});
