// The plan executor: a list of allocator steps run inside one native call,
// so that no JavaScript or V8 allocation lands in the arena between them.
// Experiments are built on it.
import { Allocation } from './allocation';
import { binding } from './binding';
import { ChunkHeader, decodeHeader } from './chunk';
import { native, rangeError, typeError } from './errors';
import { fromWords, Mallinfo, MALLINFO_FIELDS } from './stats';
import { describe, Size, toAddress, toIndex, toSize } from './validate';

/**
 * One step. `step` refers to an earlier allocating step (malloc, calloc,
 * realloc, alignedAlloc) by its index in the plan; the executor refuses a
 * plan that frees or reads a step already freed or reallocated.
 */
export type PlanStep =
  | { op: 'malloc'; size: Size }
  | { op: 'calloc'; count: Size; size: Size }
  | { op: 'realloc'; step: number; size: Size }
  | { op: 'alignedAlloc'; alignment: Size; size: Size }
  | { op: 'free'; step: number }
  /** Reads the program break, sbrk(0). */
  | { op: 'break' }
  /** Reads the chunk header of an allocation. */
  | { op: 'header'; step: number }
  | { op: 'usableSize'; step: number }
  | { op: 'mallinfo' }
  | { op: 'trim'; pad?: Size }
  /** Writes `byte` (default 0xa5) over the whole usable size, making its pages resident. */
  | { op: 'touch'; step: number; byte?: number }
  /** Counts the allocation's resident pages with mincore(2). */
  | { op: 'resident'; step: number }
  /** Snapshots /proc/self/maps (raw text; parse it with parseMaps). */
  | { op: 'maps' }
  /** Reads /proc/self/statm: the process's resident set. */
  | { op: 'statm' }
  /**
   * Copies `length` bytes (at most 4 GiB, what one Buffer holds in Node 20)
   * at `address` through the safe path (an unmapped address fails with
   * EFAULT, never a crash). The Buffer is the copy itself, not a copy of it.
   */
  | { op: 'read'; address: bigint; length: Size };

export type PlanOp = PlanStep['op'];

export type StepStatus = 'ok' | 'failed' | 'skipped' | 'truncated';

export interface StepResult {
  index: number;
  op: PlanOp;
  /** `skipped`: the step referred to an allocation that had failed. `truncated`: a maps snapshot above 1 MiB. */
  status: StepStatus;
  /** errno when `status` is `failed`. */
  errno?: number;
  /** The pointer an allocating step returned (0n when it failed). */
  address?: bigint;
  /** `break` steps. */
  programBreak?: bigint;
  /** `header` steps. */
  header?: ChunkHeader;
  /** `usableSize` steps. */
  usableSize?: number;
  /** `mallinfo` steps. */
  mallinfo?: Mallinfo;
  /** `trim` steps: malloc_trim's return value. */
  released?: boolean;
  /** `resident` steps: resident and total pages of the allocation's range. */
  residentPages?: number;
  totalPages?: number;
  /** `statm` steps: resident set and total size of the process, in pages. */
  rssPages?: number;
  sizePages?: number;
  /** `maps` steps: /proc/self/maps as it was at this step. */
  maps?: string;
  /** `read` steps: the bytes as they were at this step. */
  bytes?: Buffer;
}

export interface PlanResult {
  steps: StepResult[];
  /** With `keep: true`, the allocations still live at the end, by step index. */
  kept: Map<number, Allocation>;
}

export interface PlanOptions {
  /**
   * Leave the plan's live allocations allocated and return them as
   * `Allocation`s. By default they are freed, newest first, after the
   * last step has been recorded.
   */
  keep?: boolean;
}

const OPCODES: Record<PlanOp, bigint> = {
  malloc: 1n, calloc: 2n, realloc: 3n, alignedAlloc: 4n, free: 5n, break: 6n, header: 7n,
  usableSize: 8n, mallinfo: 9n, trim: 10n, touch: 11n, resident: 12n, maps: 13n, statm: 14n, read: 15n,
};
const OPS = Object.keys(OPCODES) as PlanOp[];
const ALLOCATING = new Set<PlanOp>(['malloc', 'calloc', 'realloc', 'alignedAlloc']);
const IN_WORDS = 4;
const OUT_WORDS = 16;
/** The most one `read` step copies: one Buffer's worth in Node 20, the smallest of the supported Nodes. */
export const MAX_PLAN_READ = 1n << 32n;
const STATUS: StepStatus[] = ['ok', 'failed', 'skipped', 'truncated'];

function encode(steps: readonly PlanStep[]): BigUint64Array {
  if (!Array.isArray(steps)) throw typeError(`a plan is an array of steps, got ${describe(steps)}`);
  if (steps.length === 0) throw rangeError('a plan needs at least one step');
  const words = new BigUint64Array(steps.length * IN_WORDS);
  steps.forEach((step, i) => {
    const at = (k: number, v: bigint) => { words[i * IN_WORDS + k] = v; };
    const name = `step ${i}`;
    const op: unknown = (step as { op?: unknown } | null)?.op;
    if (typeof op !== 'string' || !Object.hasOwn(OPCODES, op)) {
      throw typeError(`${name}: op must be one of ${OPS.join(', ')}`);
    }
    at(0, OPCODES[op as PlanOp]);
    if ('step' in step) at(1, BigInt(toIndex(step.step, `${name}.step`)));
    switch (step.op) {
      case 'malloc': at(2, toSize(step.size, `${name}.size`)); break;
      case 'realloc': at(2, toSize(step.size, `${name}.size`)); break;
      case 'calloc': at(2, toSize(step.count, `${name}.count`)); at(3, toSize(step.size, `${name}.size`)); break;
      case 'alignedAlloc': at(2, toSize(step.alignment, `${name}.alignment`)); at(3, toSize(step.size, `${name}.size`)); break;
      case 'trim': at(2, toSize(step.pad ?? 0, `${name}.pad`)); break;
      case 'touch': at(2, BigInt(toIndex(step.byte ?? 0xa5, `${name}.byte`, 255))); break;
      case 'read': at(2, toAddress(step.address, `${name}.address`)); at(3, toSize(step.length, `${name}.length`, MAX_PLAN_READ)); break;
    }
  });
  return words;
}

function decode(
  steps: readonly PlanStep[], words: BigUint64Array, texts: (string | undefined)[], buffers: (Buffer | undefined)[],
): StepResult[] {
  return steps.map((step, index) => {
    const w = (k: number) => words[index * OUT_WORDS + k];
    const status = STATUS[Number(w(0))];
    const result: StepResult = { index, op: step.op, status };
    if (status === 'failed') result.errno = Number(w(1));
    if (status === 'skipped') return result;
    const failed = status === 'failed';
    if (ALLOCATING.has(step.op)) result.address = w(2);
    else if (failed) return result;
    switch (step.op) {
      case 'break': result.programBreak = w(2); break;
      case 'header': result.header = decodeHeader(words[(step.step) * OUT_WORDS + 2], w(4), w(3)); break;
      case 'usableSize': result.usableSize = Number(w(2)); break;
      case 'trim': result.released = w(2) === 1n; break;
      case 'resident': result.residentPages = Number(w(2)); result.totalPages = Number(w(3)); break;
      case 'statm': result.rssPages = Number(w(2)); result.sizePages = Number(w(3)); break;
      case 'maps': result.maps = texts[index]; break;
      case 'read': result.bytes = buffers[index]; break;
      case 'mallinfo':
        result.mallinfo = fromWords(w(15) === 2n ? 'mallinfo2' : 'mallinfo', MALLINFO_FIELDS.map((_, k) => w(5 + k)));
        break;
    }
    return result;
  });
}

/**
 * Runs `steps` inside one native call on the calling thread and returns
 * what each step saw. Plans are checked before anything runs: an unknown
 * op, a bad size, or a step that frees or reads a freed step is an error
 * (`ERR_INVALID_PLAN` or a `TypeError`/`RangeError`), never a glibc abort.
 */
export function runPlan(steps: readonly PlanStep[], options: PlanOptions = {}): PlanResult {
  const encoded = encode(steps);
  const keep = options.keep === true;
  const raw = native(() => binding.runPlan(encoded, keep));
  const results = decode(steps, raw.words, raw.texts, raw.buffers);
  const kept = new Map<number, Allocation>();
  for (const index of raw.kept) {
    const step = steps[index];
    const requested = step.op === 'calloc' ? Number(step.count) * Number(step.size)
      : 'size' in step ? Number(step.size) : 0;
    const call = step.op === 'malloc' || step.op === 'calloc' || step.op === 'realloc' || step.op === 'alignedAlloc'
      ? step.op : 'plan';
    kept.set(index, new Allocation(results[index].address!, requested, call));
  }
  return { steps: results, kept };
}
