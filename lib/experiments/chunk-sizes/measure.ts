// The chunk-sizes experiment's measurement: malloc(n) for every n from 0 to
// 1 KiB, then larger probes around the mmap threshold, each freed right after
// its header and usable size were read; around each probe, the top chunk and
// the break.
import { ChunkHeader } from '../../chunk';
import { PlanStep, runPlan } from '../../plan';
import { mmappedChunkSize, requestToChunkSize } from '../../size-classes';
import { pageSize } from '../../stats';
import { mmappedTailHere } from '../measure';

export interface ChunkSizeRow {
  request: number;
  address: bigint;
  chunkSize: number;
  usableSize: number;
  /** Usable bytes beyond the request. */
  slack: number;
  /** What request2size (or, when mmapped, the page rounding: mmappedChunkSize) predicts. */
  ruleSize: number;
  /** The page size, on mmapped rows. */
  pageSize?: number;
  header: ChunkHeader;
  /** main_arena's top chunk just before this request (mallinfo2().keepcost); probes only. */
  topBefore?: number;
  /** How far the program break moved during this request; probes only. */
  breakMoved?: number;
}

/** Requests 0 … 1 KiB byte by byte, then larger probes around the mmap threshold. */
export const SMALL = 1024;
const PROBES = [1500, 4096, 65536, 126 * 1024, 128 * 1024, 256 * 1024, 1 << 20, 4 << 20];

function plan(): PlanStep[] {
  const steps: PlanStep[] = [];
  const requests = [...Array.from({ length: SMALL + 1 }, (_, n) => n), ...PROBES];
  for (const size of requests) {
    if (size > SMALL) steps.push({ op: 'mallinfo' }, { op: 'break' });
    const m = steps.length;
    steps.push({ op: 'malloc', size }, { op: 'header', step: m }, { op: 'usableSize', step: m });
    if (size > SMALL) steps.push({ op: 'break' });
    steps.push({ op: 'free', step: m });
  }
  return steps;
}

export function measure(): ChunkSizeRow[] {
  const steps = plan();
  const { steps: results } = runPlan(steps);
  const rows: ChunkSizeRow[] = [];
  const page = pageSize();
  const tail = mmappedTailHere();
  results.forEach((r, i) => {
    const step = steps[i];
    if (step.op !== 'malloc') return;
    const header = results[i + 1].header!;
    const request = Number(step.size);
    const chunkSize = header.size;
    const usableSize = results[i + 2].usableSize!;
    rows.push({
      request,
      address: r.address!,
      chunkSize,
      usableSize,
      slack: usableSize - request,
      ruleSize: header.isMmapped ? mmappedChunkSize(request, page, tail) : requestToChunkSize(request),
      header,
      ...(header.isMmapped ? { pageSize: page } : {}),
    });
    if (request > SMALL) {
      rows[rows.length - 1].topBefore = results[i - 2].mallinfo!.keepcost;
      rows[rows.length - 1].breakMoved = Number(results[i + 3].programBreak! - results[i - 1].programBreak!);
    }
  });
  return rows;
}

/** Runs of consecutive requests that got the same chunk size: the staircase. */
export function stairs(rows: ChunkSizeRow[]): { from: number; to: number; chunkSize: number }[] {
  const out: { from: number; to: number; chunkSize: number }[] = [];
  for (const row of rows) {
    const last = out[out.length - 1];
    if (last !== undefined && last.chunkSize === row.chunkSize && last.to === row.request - 1) last.to = row.request;
    else out.push({ from: row.request, to: row.request, chunkSize: row.chunkSize });
  }
  return out;
}
