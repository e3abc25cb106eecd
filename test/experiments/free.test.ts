import { beforeAll, describe, expect, it } from 'vitest';
import { FreeRow, FreeRunStepRow, FreeStepRow } from '../../lib/experiments/free';
import { trimSummary } from '../../lib/experiments/measure';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { CHUNK_HEADER_SIZE } from '../../lib/chunk';
import { pageSize } from '../../lib/stats';
import { HERE, MMAPPED_TAIL } from '../helpers/glibc-here';

type Result = ExperimentResult<FreeRow>;

const steps = (r: Result, phase: FreeStepRow['phase']) =>
  r.rows.filter((row): row is FreeStepRow => row.kind === 'step' && row.phase === phase);
const runRows = (r: Result) => r.rows.filter((row): row is FreeRunStepRow => row.kind === 'free-run');

/** (a): the probe, its free, and the malloc after it. */
function smallCase(r: Result): { probe: FreeStepRow; freed: FreeStepRow; again: FreeStepRow } {
  const rows = steps(r, 'small');
  return {
    probe: rows.find((row) => row.role === 'probe' && row.op === 'malloc')!,
    freed: rows.find((row) => row.op === 'free')!,
    again: rows.find((row) => row.role === 'again')!,
  };
}

describe('free', () => {
  let result: Result;
  beforeAll(async () => {
    result = (await run('free')) as Result;
  });

  it('ran in a fresh child by default', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.question).toBe('Does free give memory back to the kernel?');
  });

  it('(a) a small free keeps the chunk: the same address comes back, the break stays', () => {
    const { probe, freed, again } = smallCase(result);
    expect(again.address).toBe(probe.address);
    expect(freed.programBreak).toBe(probe.programBreak);
    expect(again.programBreak).toBe(probe.programBreak);
    expect(result.findings.some((f) => f.includes(`malloc(48) at 0x${probe.address!.toString(16)}`) && f.endsWith('returned the same address.'))).toBe(true);
  });

  it('(a) with the tcache off, the chunk waits in a fastbin instead (from 2.43, which has none, in a bin) and still comes back first', async () => {
    const off = (await run('free', { tunables: { 'glibc.malloc.tcache_count': 0 } })) as Result;
    const { probe, freed, again } = smallCase(off);
    expect(again.address).toBe(probe.address);
    const rows = steps(off, 'small');
    const before = rows[rows.indexOf(freed) - 1];
    if (HERE.fastbins) expect(freed.fastbinBytes - before.fastbinBytes).toBeGreaterThanOrEqual(probe.chunkSize!);
    else expect({ fast: freed.fastbinBytes - before.fastbinBytes, inUse: freed.inUse - before.inUse }).toEqual({ fast: 0, inUse: -probe.chunkSize! });
  });

  it('(b) freeing an mmapped chunk removes its mapping at once', () => {
    const [start, allocated, freed] = steps(result, 'mmapped');
    expect(start.chunkMapped).toBe(false);
    expect(allocated.mmapped).toBe(true);
    expect(allocated.chunkMapped).toBe(true);
    expect(freed.chunkMapped).toBe(false);
    // mallinfo counts the mapping: the chunk, and from 2.43 the 16 bytes past it.
    expect(allocated.mmappedBytes - start.mmappedBytes).toBe(allocated.chunkSize! + MMAPPED_TAIL);
    expect(allocated.mmappedBytes - freed.mmappedBytes).toBe(allocated.chunkSize! + MMAPPED_TAIL);
    expect(freed.programBreak).toBe(allocated.programBreak);
    const chunk = allocated.address! - CHUNK_HEADER_SIZE;
    expect(result.findings.some((f) => f.startsWith(`free() unmapped ${allocated.chunkSize! + MMAPPED_TAIL} bytes at 0x${chunk.toString(16)}`))).toBe(true);
  });

  it('(c) freeing a run into the top brings the break down, by what the top lost', () => {
    const rows = runRows(result);
    expect(rows).toHaveLength(512);
    const t = trimSummary(rows);
    expect(t.firstTrim, `the break never moved down; the top reached ${Math.max(...rows.map((r) => r.topAfter))} bytes`).toBeDefined();
    const last = rows[rows.length - 1];
    expect(last.breakAfter).toBeLessThan(rows[0].breakBefore);
    expect(t.returned).toBe(Number(rows[0].breakBefore - last.breakAfter));
    for (const r of rows.filter((row) => row.returned > 0)) {
      // systrim gives back whole pages off the top chunk and nothing else.
      expect(r.returned % pageSize()).toBe(0);
      // Block 0 may also have merged with a free chunk below it, which mergedTop does not count.
      if (r.besideTop && r.block > 0) expect(r.mergedTop - r.topAfter).toBe(r.returned);
    }
    // A free trims when the top reaches the trim threshold: every kept top is below the first trimming one.
    // The top left once the run's blocks are taken is anywhere below top_pad and a page (48,496-130,768
    // bytes in six runs): within a block of where a free trims, the first free that merges into it trims.
    const f = t.firstTrim!;
    if (t.keptTop === undefined) {
      expect(f).toBe(rows.find((r) => r.besideTop));
      expect(result.findings.some((s) => s.includes('It was the first free to merge a block into the top: no top had stayed before it.'))).toBe(true);
    } else {
      expect(t.keptTop).toBeLessThan(f.mergedTop);
      expect(result.findings.some((s) => s.includes(`Tops of up to ${t.keptTop} bytes had stayed.`))).toBe(true);
    }
    expect(result.findings.some((s) => s.includes(`when merging it made the top ${f.mergedTop} bytes`) && s.includes(`${f.returned} bytes returned`))).toBe(true);
  });

  it('(d) malloc_trim hands back the pages of scattered free chunks: RSS falls, the break stays', () => {
    const rows = steps(result, 'malloc-trim');
    const trims = rows.filter((r) => r.op === 'trim');
    expect(trims).toHaveLength(3);
    const [, padded, zero] = trims;
    const freed = rows[rows.indexOf(padded) - 1];
    const allocated = rows[rows.findIndex((r) => r.op === 'free') - 1];
    const blocks = rows.filter((r) => r.op === 'malloc' && r.role === 'block');
    const page = BigInt(pageSize());
    const wholePages = blocks.reduce((sum, r) => {
      const chunk = r.address! - CHUNK_HEADER_SIZE;
      const first = ((chunk + 48n + page - 1n) / page) * page;
      const end = chunk + BigInt(r.chunkSize!);
      return sum + (end > first ? Number((end - first) / page) : 0);
    }, 0);
    const drop = freed.rssPages! - padded.rssPages!;
    const why = [
      `RSS ${freed.rssPages} → ${padded.rssPages} pages across malloc_trim(${padded.pad}), which returned ${padded.released}`,
      `allocating and touching the blocks grew RSS ${rows[0].rssPages} → ${allocated.rssPages}`,
      `the freed blocks held ${wholePages} whole pages past their headers`,
      `blocks not beside a live guard: ${blocks.filter((b) => {
        const guard = rows[rows.indexOf(b) + 1];
        return guard.address! - CHUNK_HEADER_SIZE !== b.address! - CHUNK_HEADER_SIZE + BigInt(b.chunkSize!);
      }).length}`,
    ].join('; ');
    expect(wholePages, why).toBeGreaterThan(400);
    expect(allocated.rssPages! - rows[0].rssPages!, why).toBeGreaterThanOrEqual(wholePages);
    expect(freed.programBreak, why).toBe(allocated.programBreak);
    expect(padded.released, why).toBe(true);
    expect(drop, why).toBeGreaterThanOrEqual(wholePages / 2);
    expect(padded.programBreak, why).toBe(freed.programBreak);
    expect(padded.top).toBe(freed.top);
    // malloc_trim(0) shrinks the top to less than a page more than its header.
    expect(zero.top).toBeLessThan(pageSize() + 64);
    expect(Number(padded.programBreak - zero.programBreak)).toBe(padded.top - zero.top);
  });

  it('runs in this process too', async () => {
    const here = (await run('free', { isolated: false })) as Result;
    expect(here.environment.pid).toBe(process.pid);
    expect(here.rows.length).toBe(result.rows.length);
    const [, allocated, freed] = steps(here, 'mmapped');
    expect(allocated.chunkMapped && !freed.chunkMapped).toBe(true);
  });
});
