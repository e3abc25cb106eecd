// The plan executor: a list of allocator steps run inside one native call,
// so that no JavaScript or V8 allocation lands in the arena between them.
// Experiments are built on it.
import { Allocation, AllocationCall, mintAllocation } from './allocation';
import { binding } from './binding';
import { IN_WORDS, OP_CODES, OUT_WORDS, STATUS } from './plan-codes';
import { ChunkHeader, decodeHeader } from './chunk';
import { HeapscopeError, native, rangeError, typeError } from './errors';
import { fromWords, Mallinfo, MALLINFO_FIELDS } from './stats';
import {
  describe, lookup, readArray, readOptions, readOwn, recordKind, Size, sizeArg, toAddress, toIndex, toSize,
} from './validate';

/** A step's index in its plan: a whole number, as number or bigint. */
export type StepIndex = number | bigint;

/**
 * One step. `step` refers to an earlier allocating step (malloc, calloc,
 * realloc, alignedAlloc) by its index in the plan; a step that needs it
 * must give it. The executor refuses a plan that frees or reads a step
 * already freed or reallocated.
 */
export type PlanStep =
  | { op: 'malloc'; size: Size }
  | { op: 'calloc'; count: Size; size: Size }
  | { op: 'realloc'; step: StepIndex; size: Size }
  | { op: 'alignedAlloc'; alignment: Size; size: Size }
  | { op: 'free'; step: StepIndex }
  /** Reads the program break, sbrk(0). */
  | { op: 'break' }
  /** Reads the chunk header of an allocation. */
  | { op: 'header'; step: StepIndex }
  | { op: 'usableSize'; step: StepIndex }
  | { op: 'mallinfo' }
  | { op: 'trim'; pad?: Size }
  /** Writes `byte` (default 0xa5) over the whole usable size, making its pages resident. */
  | { op: 'touch'; step: StepIndex; byte?: number }
  /** Counts the allocation's resident pages with mincore(2). */
  | { op: 'resident'; step: StepIndex }
  /** Snapshots /proc/self/maps (raw text; parse it with parseMaps). */
  | { op: 'maps' }
  /** Reads /proc/self/statm: the process's resident set. */
  | { op: 'statm' }
  /**
   * Copies `length` bytes (at most 4 GiB, what one Buffer holds in Node 20)
   * at `address` through the safe path (an unmapped address fails with
   * EFAULT, never a crash). The Buffer is the copy itself, not a copy of it.
   * `anonymous: true` says the range is private anonymous memory (see
   * untouchedReadsZero): its pages never touched (neither present nor
   * swapped in /proc/self/pagemap) are left zero instead of read, so the
   * copy does not make them resident. Said of any other memory, the copy
   * would be wrong: those zeros stand for bytes not read.
   */
  | { op: 'read'; address: bigint; length: Size; anonymous?: boolean };

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
  /** `anonymous` `read` steps: the pages left zero, never touched. */
  untouchedPages?: number;
  /** `anonymous` `read` steps: why /proc/self/pagemap could not be read, when it could not (every page was then read). */
  pagemapErrno?: number;
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

// Checked against PlanOp here: every op has a code, and no code lacks an op.
const OPCODES: Record<PlanOp, bigint> = OP_CODES;
const OPS = Object.keys(OPCODES) as PlanOp[];
const ALLOCATING = new Set<PlanOp>(['malloc', 'calloc', 'realloc', 'alignedAlloc']);
/** Ops that act on an earlier allocation, named by its step index. */
const REFERRING = new Set<PlanOp>(['realloc', 'free', 'header', 'usableSize', 'touch', 'resident']);
/** Every field any step has; a step's own properties are read, once each, as its op needs them. */
const FIELDS = ['op', 'step', 'size', 'count', 'alignment', 'pad', 'byte', 'address', 'length', 'anonymous'] as const;

/** The native executor's limit. */
const MAX_STEPS = 1 << 22;
/** The most one `read` step copies: one Buffer's worth in Node 20, the smallest of the supported Nodes. */
export const MAX_PLAN_READ = 1n << 32n;

/**
 * A step as checked: the index it refers to as a number, its operands as
 * the words the executor takes. Encoding and decoding both read only this,
 * so what was checked is what runs and what is decoded. One class, so that
 * every checked step has the same shape.
 */
class CheckedStep {
  constructor(
    readonly op: PlanOp,
    /** The earlier allocating step it acts on (REFERRING ops), else -1. */
    readonly ref: number,
    /** Whole numbers below 2^53 stay numbers: most plans need no BigInt at all. */
    readonly a: number | bigint,
    readonly b: number | bigint,
    /** Bytes asked for, for a kept Allocation (allocating ops). */
    readonly requested: number,
    /** `read` of private anonymous memory. */
    readonly anonymous: boolean,
  ) {}
}

type Field = (typeof FIELDS)[number];

function check(steps: unknown): CheckedStep[] {
  const list = readArray(steps, 'a plan', MAX_STEPS);
  if (list.length === 0) throw rangeError('a plan needs at least one step');
  const checked: CheckedStep[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) checked[i] = checkStep(list[i], i, checked);
  return checked;
}

function checkStep(value: unknown, i: number, checked: readonly CheckedStep[]): CheckedStep {
  const name = `step ${i}`;
  const proxy = recordKind(value, name);
  const step = value as object;
  // Only the fields the op uses are read: own properties, once each.
  const field = (key: Field): unknown => readOwn(step, key, name, proxy);
  const named = field('op');
  const op = lookup(OPCODES, named) === undefined ? undefined : named as PlanOp;
  if (op === undefined) throw typeError(`${name}: op must be one of ${OPS.join(', ')}`);
  let ref = -1;
  if (REFERRING.has(op)) {
    const index = field('step');
    if (index === undefined) {
      throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: ${op} needs \`step\`, the index of an earlier allocating step`);
    }
    ref = toIndex(index, `${name}.step`);
    if (ref >= i || !ALLOCATING.has(checked[ref].op)) {
      throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: step ${ref} is not an earlier allocating step`);
    }
  }
  const size = (key: 'size' | 'count' | 'alignment' | 'pad'): number | bigint => sizeArg(field(key), `${name}.${key}`);
  switch (op) {
    case 'malloc': case 'realloc': {
      const bytes = size('size');
      return new CheckedStep(op, ref, bytes, 0, Number(bytes), false);
    }
    case 'calloc': {
      const count = size('count');
      const bytes = size('size');
      return new CheckedStep(op, ref, count, bytes, Number(BigInt(count) * BigInt(bytes)), false);
    }
    case 'alignedAlloc': {
      const alignment = size('alignment');
      const bytes = size('size');
      return new CheckedStep(op, ref, alignment, bytes, Number(bytes), false);
    }
    case 'trim': {
      const pad = field('pad');
      return new CheckedStep(op, ref, pad === undefined ? 0 : sizeArg(pad, `${name}.pad`), 0, 0, false);
    }
    case 'touch':
      return new CheckedStep(op, ref, toIndex(field('byte') ?? 0xa5, `${name}.byte`, 255), 0, 0, false);
    case 'read': {
      const address = toAddress(field('address'), `${name}.address`);
      const length = toSize(field('length'), `${name}.length`, MAX_PLAN_READ);
      const anonymous = field('anonymous');
      if (anonymous !== undefined && typeof anonymous !== 'boolean') {
        throw typeError(`${name}.anonymous must be a boolean, got ${describe(anonymous)}`);
      }
      return new CheckedStep(op, ref, address, length, 0, anonymous === true);
    }
    default:
      return new CheckedStep(op, ref, 0, 0, 0, false);
  }
}

// Op codes as numbers, for encode's 32-bit halves.
const OPNUMBERS = Object.fromEntries(OPS.map((op) => [op, Number(OPCODES[op])])) as Record<PlanOp, number>;
const TWO_32 = 4294967296;

/**
 * Plans of up to WARM_STEPS steps are encoded into, and have their records
 * written into, one buffer made on the first plan and kept: a fresh zeroed
 * array each way per plan (640 KiB for 4,000 steps) cost more than the
 * steps. It is made at its full size at once (above malloc's default mmap
 * threshold) and never grows, so that it is one allocation made once, not
 * one between two plans. Bigger plans get arrays of their own.
 */
const WARM_STEPS = 8192;
let warm: { steps: BigUint64Array; records: BigUint64Array } | undefined;

function warmArrays(): { steps: BigUint64Array; records: BigUint64Array } {
  if (warm === undefined) {
    const buffer = new ArrayBuffer(WARM_STEPS * (IN_WORDS + OUT_WORDS) * 8);
    warm = {
      steps: new BigUint64Array(buffer, 0, WARM_STEPS * IN_WORDS),
      records: new BigUint64Array(buffer, WARM_STEPS * IN_WORDS * 8, WARM_STEPS * OUT_WORDS),
    };
  }
  return warm;
}

/** The plan's words, written as 32-bit halves where a word is a number (no BigInt per word). */
function encode(steps: readonly CheckedStep[], into?: BigUint64Array): BigUint64Array {
  const words = into === undefined ? new BigUint64Array(steps.length * IN_WORDS) : into.subarray(0, steps.length * IN_WORDS);
  const halves = new Uint32Array(words.buffer, words.byteOffset, words.length * 2);
  // A warm array holds the last plan's words: every half is written.
  if (into !== undefined) halves.fill(0);
  const put = (at: number, value: number | bigint): void => {
    if (typeof value === 'bigint') {
      words[at] = value;
    } else {
      halves[2 * at] = value >>> 0;
      halves[2 * at + 1] = (value / TWO_32) >>> 0;
    }
  };
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const at = i * IN_WORDS;
    halves[2 * at] = OPNUMBERS[step.op];
    // A read's second word is its flag (native/plan.cc), where other steps name the step they act on.
    if (step.ref >= 0) halves[2 * at + 2] = step.ref; // below MAX_STEPS
    else if (step.anonymous) halves[2 * at + 2] = 1;
    put(at + 2, step.a);
    put(at + 3, step.b);
  }
  return words;
}

function decode(
  steps: readonly CheckedStep[], words: BigUint64Array, texts: (string | undefined)[], buffers: (Buffer | undefined)[],
): StepResult[] {
  // Counts and sizes are read as two 32-bit halves (numbers, exact below
  // 2^53); only addresses and raw header words become bigints.
  const halves = new Uint32Array(words.buffer, words.byteOffset, words.length * 2);
  const n = (k: number): number => halves[2 * k] + halves[2 * k + 1] * TWO_32;
  const results: StepResult[] = new Array(steps.length);
  for (let index = 0; index < steps.length; index++) {
    const step = steps[index];
    const at = index * OUT_WORDS;
    const status = STATUS[n(at)];
    const result: StepResult = { index, op: step.op, status };
    results[index] = result;
    if (status === 'failed') result.errno = n(at + 1);
    if (status === 'skipped') continue;
    if (ALLOCATING.has(step.op)) result.address = words[at + 2];
    else if (status === 'failed') continue;
    switch (step.op) {
      case 'break': result.programBreak = words[at + 2]; break;
      case 'header': result.header = decodeHeader(words[step.ref * OUT_WORDS + 2], words[at + 4], words[at + 3]); break;
      case 'usableSize': result.usableSize = n(at + 2); break;
      case 'trim': result.released = n(at + 2) === 1; break;
      case 'resident': result.residentPages = n(at + 2); result.totalPages = n(at + 3); break;
      case 'statm': result.rssPages = n(at + 2); result.sizePages = n(at + 3); break;
      case 'maps': result.maps = texts[index]; break;
      case 'read':
        result.bytes = buffers[index];
        if (step.anonymous) {
          result.untouchedPages = n(at + 4);
          if (n(at + 5) !== 0) result.pagemapErrno = n(at + 5);
        }
        break;
      case 'mallinfo':
        result.mallinfo = fromWords(n(at + 15) === 2 ? 'mallinfo2' : 'mallinfo', MALLINFO_FIELDS.map((_, k) => words[at + 5 + k]));
        break;
    }
  }
  return results;
}

/**
 * Runs `steps` inside one native call on the calling thread and returns
 * what each step saw. Plans are checked before anything runs: an unknown
 * op, a bad size, a missing `step`, or a step that frees or reads a freed
 * step is an error (`ERR_INVALID_PLAN` or a `TypeError`/`RangeError`),
 * never a glibc abort. Steps and options are read once, own properties only.
 */
export function runPlan(steps: readonly PlanStep[], options: PlanOptions = {}): PlanResult {
  const checked = check(steps);
  const { keep } = readOptions(options, 'options', ['keep']);
  if (keep !== undefined && typeof keep !== 'boolean') throw typeError(`options.keep must be a boolean, got ${describe(keep)}`);
  const arrays = checked.length <= WARM_STEPS ? warmArrays() : undefined;
  const encoded = encode(checked, arrays?.steps);
  const raw = native(() => binding.runPlan(encoded, keep === true, arrays?.records));
  const kept = new Map<number, Allocation>();
  try {
    for (const index of raw.kept) {
      const step = checked[index];
      const call = ALLOCATING.has(step.op) ? step.op as AllocationCall : 'plan';
      kept.set(index, mintAllocation(Number(raw.words[index * OUT_WORDS + 2]), step.requested, call));
    }
    return { steps: decode(checked, raw.words, raw.texts, raw.buffers), kept };
  } catch (error) {
    // A plan that fails after the native call strands no block: each kept
    // one is freed, through its handle where it already has one.
    for (const index of raw.kept) {
      try {
        const handle = kept.get(index);
        if (handle !== undefined) handle.free();
        else binding.free(raw.words[index * OUT_WORDS + 2]);
      } catch {
        // Free the rest; the first error is the one to report.
      }
    }
    throw error;
  }
}
