// The plan executor: a list of allocator steps run inside one native call,
// so that no JavaScript or V8 allocation lands in the arena between them.
// Experiments are built on it.
import { inspect } from 'node:util';
import { Allocation, AllocationCall, mintAllocation } from './allocation';
import { binding, RawPlanResult } from './binding';
import { IN_WORDS, OP_CODES, RECORD_WORDS, STATUS } from './plan-codes';
import { ChunkHeader, headerOf } from './chunk';
import { EXACT_HIGH_LIMIT, TWO_32 } from './exact';
import { HeapscopeError, illegalConstructor, native, rangeError, typeError } from './errors';
import { plural } from './format';
import { keptBytes, mappedBytes, releaseBytes, zeroedArray } from './fresh-memory';
import { MAX_FAST_SIZE } from './size-classes';
import { fromWords, Mallinfo, MALLINFO_FIELDS } from './stats';
import {
  defineOwn, describe, descriptor, readArray, readFailed, readOptions, readOwn, recordKind, Size, sizeArg, toAddress, toIndex, toSize,
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
   * `toBreak: true` copies no further than the program break as it is when
   * the step runs, `length` being the most: [heap] as it stands then, when
   * the plan's own steps have moved the break since the plan was built.
   * `lengthAt` (a multiple of 8 below 4096, not with `toBreak`) copies no
   * further than the 64-bit word at `address + lengthAt` says, as it is when
   * the step runs (read as the copy is: a frozen child's), `length` being
   * the most and `atLeast` (default 0, below 4 GiB) the least: a thread
   * heap as its own header (heap_info's mprotect_size) has it then, however
   * it grew since the map was read, and never less than the map showed.
   */
  | { op: 'read'; address: bigint; length: Size; anonymous?: boolean; toBreak?: boolean; lengthAt?: number; atLeast?: Size }
  /**
   * Forks a child that holds this process as it is now: glibc's fork()
   * takes every arena's lock first, so no thread is inside malloc or free.
   * Until the `thaw` (or the plan's end), `read`, `mallinfo` and `break`
   * steps, the only ones allowed there, read the child's memory, its
   * mallinfo2() and its break, however this process's other threads go on.
   * The child is ended and reaped at the thaw. A freeze that fails (fork
   * refused, or reading the child refused: Yama's ptrace_scope 2 or 3, a
   * non-dumpable process) says why, and the steps up to the thaw read this
   * process live. With `maxFast` (0 to 160), the child sets its fastbin
   * limit to it first (`mallopt(M_MXFAST, maxFast)`), this process's
   * staying as it was: the reads see glibc's state with the limit moved
   * (how heapscope finds global_max_fast).
   */
  | { op: 'freeze'; maxFast?: number }
  | { op: 'thaw' }
  /**
   * Counts the pages of [address, address + length) (whole pages: each
   * page the range touches) that /proc/self/pagemap shows resident as RSS
   * counts them: present, and this process's alone or a file's or shared
   * memory's (not the shared zero page, which a read of never-written memory
   * maps). Nothing is read at the address: an unmapped page is not
   * resident, and a range past user space fails (EIO).
   */
  | { op: 'pagemap'; address: bigint; length: Size };

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
  /** `resident` steps: resident and total pages of the allocation's range; `pagemap` steps: of the range. */
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
  /** `freeze` steps: the child's pid (ended and reaped by the plan's end). */
  pid?: number;
}

export interface PlanResult {
  /**
   * What each step saw, by index. The records are decoded into these
   * objects when `steps` is first read (a plan run only for its effect, or
   * timed, makes none); the same array is returned after that.
   */
  readonly steps: StepResult[];
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
const FIELDS = ['op', 'step', 'size', 'count', 'alignment', 'pad', 'byte', 'address', 'length', 'anonymous', 'toBreak', 'lengthAt', 'atLeast', 'maxFast'] as const;

/** The native executor's limit. */
const MAX_STEPS = 1 << 22;
/** The most one `read` step copies: one Buffer's worth in Node 20, the smallest of the supported Nodes. */
export const MAX_PLAN_READ = 1n << 32n;
/** The most one `pagemap` step counts: x86_64's user address space. */
const MAX_PAGEMAP_RANGE = 1n << 47n;

type Field = (typeof FIELDS)[number];

// Op codes as numbers, and ops by code, for the words' 32-bit halves.
const OPNUMBERS = Object.fromEntries(OPS.map((op) => [op, Number(OPCODES[op])])) as Record<PlanOp, number>;
const OP_OF_CODE: PlanOp[] = [];
for (const op of OPS) OP_OF_CODE[OPNUMBERS[op]] = op;
const ALLOCATING_CODE = OP_OF_CODE.map((op) => ALLOCATING.has(op));
/**
 * The code of a step's `op` (whatever a caller gave): a switch, so that no
 * inherited name is an op, with the common ops first. A Map's get here was
 * about a tenth of the check (~24 of ~220 ns an item of four steps). What
 * the check asks of an op after that is asked of its code, by index.
 */
function codeOf(value: unknown): number | undefined {
  const op = value as PlanOp;
  switch (op) {
    case 'malloc': return OPNUMBERS.malloc;
    case 'free': return OPNUMBERS.free;
    case 'header': return OPNUMBERS.header;
    case 'usableSize': return OPNUMBERS.usableSize;
    case 'calloc': return OPNUMBERS.calloc;
    case 'realloc': return OPNUMBERS.realloc;
    case 'alignedAlloc': return OPNUMBERS.alignedAlloc;
    case 'break': return OPNUMBERS.break;
    case 'mallinfo': return OPNUMBERS.mallinfo;
    case 'trim': return OPNUMBERS.trim;
    case 'touch': return OPNUMBERS.touch;
    case 'resident': return OPNUMBERS.resident;
    case 'maps': return OPNUMBERS.maps;
    case 'statm': return OPNUMBERS.statm;
    case 'read': return OPNUMBERS.read;
    case 'freeze': return OPNUMBERS.freeze;
    case 'thaw': return OPNUMBERS.thaw;
    case 'pagemap': return OPNUMBERS.pagemap;
    default:
      // An op added to PlanOp without its case here fails to compile.
      op satisfies never;
      return undefined;
  }
}
const REFERRING_CODE = OP_OF_CODE.map((op) => REFERRING.has(op));
/** A read step's flags, in the word other steps name the step they act on with (native/plan.cc). */
const READ_ANONYMOUS = 1;
/** The same flag in a read's record's head word (plan-codes.ts). */
const READ_ANONYMOUS_HEAD = 1 << 16;
const READ_TO_BREAK = 2;
/** With the word's offset from the read's address in bits 8 to 19. */
const READ_TO_LENGTH_WORD = 4;

/**
 * Plans of up to WARM_STEPS steps are checked into, and plans whose records
 * fit in WARM_RECORD_WORDS have them written into, one buffer made on the
 * first plan and kept: a fresh zeroed array each way per plan (640 KiB for
 * 4,000 steps) cost more than the steps. Bigger plans, and a plan run from
 * inside another's check (a step's getter may call runPlan), get arrays of
 * their own.
 *
 * Records are in memory the addon maps, never in the heap: a plan writes
 * them as it goes, and a plan that copies [heap] twice would see its own
 * records change between the copies. They are copied out into V8's heap
 * right after the plan (transcribe), so the buffer is free again for the next.
 */
const WARM_STEPS = 8192;
/** Four words a step: an allocation, a header and a free take 2, 4 and 1. */
const WARM_RECORD_WORDS = WARM_STEPS * 4;
interface WarmArrays {
  steps: BigUint64Array;
  records: BigUint64Array;
  busy: boolean;
}
let warm: WarmArrays | undefined;

function warmArrays(): WarmArrays {
  if (warm === undefined) {
    const { buffer } = mappedBytes((WARM_STEPS * IN_WORDS + WARM_RECORD_WORDS) * 8);
    warm = {
      steps: new BigUint64Array(buffer, 0, WARM_STEPS * IN_WORDS),
      records: new BigUint64Array(buffer, WARM_STEPS * IN_WORDS * 8, WARM_RECORD_WORDS),
      busy: false,
    };
  }
  return warm;
}

/**
 * A plan's records, copied into V8's own heap: a result that is never read
 * holds no memory of the addon's, and is collected as any object is. (Held
 * in the mapped buffer instead, each unread result of a loop that never
 * yielded kept a mapping of its own until Node ran its finalizer: a loop of
 * 20,000 two-step plans grew the resident set by 89 MiB, 6 MiB so.)
 *
 * The copy is one-byte strings, a byte a character (latin1), each of at
 * most PART_WORDS words: made by one copy, ~5 ns an item of four steps,
 * where a number a word took ~30. Every word is kept exactly, whatever its
 * bits. Each part stays below what V8 allocates apart, in memory of its own
 * (128 KiB), and far below where Node makes a string outside V8's heap, in
 * memory from malloc (about 1 MiB): in the heap a plan may copy.
 */
interface Transcript {
  parts: string[];
  /** Words in all. */
  length: number;
}

const PART_WORDS = 8192;

function transcribe(words: BigUint64Array, length: number): Transcript {
  const bytes = Buffer.from(words.buffer, words.byteOffset, length * 8);
  const parts: string[] = [];
  for (let k = 0; k < length; k += PART_WORDS) parts.push(bytes.toString('latin1', k * 8, Math.min(length, k + PART_WORDS) * 8));
  return { parts, length };
}

/**
 * The words of a transcript, written back as bytes (one copy a part) into
 * memory the addon mapped: read from the strings a character at a time
 * instead, decoding took ~330 ns an item, ~120 so. Records up to
 * WARM_RECORD_WORDS go to an area kept for this; bigger ones to a mapping
 * of their own, given back once decoded, so that no area as big as the
 * biggest plan ever read stays mapped.
 */
const decodeArea = keptBytes();

function wordsOf({ parts, length }: Transcript, into: Uint8Array): Uint32Array {
  const area = Buffer.from(into.buffer, into.byteOffset, length * 8);
  parts.forEach((part, p) => area.write(part, p * PART_WORDS * 8, 'latin1'));
  return new Uint32Array(into.buffer, into.byteOffset, length * 2);
}

/**
 * The checked plan is its words: each step is checked and written in one
 * pass, as the executor takes it (op, ref or read flag, two operands), and
 * decoding reads the same words, so what was checked is what runs and what
 * is decoded. Whole numbers below 2^53 are written as 32-bit halves: most
 * plans need no BigInt at all.
 */
class Words {
  readonly halves: Uint32Array;
  /** The steps checked so far end inside a freeze. */
  frozen = false;
  /** The words of their records (RECORD_WORDS). */
  recordWords = 0;
  /** compilePlan's id for the addon (binding.planId): a compiled plan's runs are not checked there again either. */
  compiledId: number | undefined;
  constructor(readonly words: BigUint64Array, readonly count: number) {
    this.halves = new Uint32Array(words.buffer, words.byteOffset, words.length * 2);
  }
  op(i: number): PlanOp { return OP_OF_CODE[this.halves[2 * IN_WORDS * i]]; }
  allocates(i: number): boolean { return ALLOCATING_CODE[this.halves[2 * IN_WORDS * i]]; }
  /** The step a referring op acts on; a read's flags (READ_ANONYMOUS, READ_TO_BREAK). */
  ref(i: number): number { return this.halves[2 * IN_WORDS * i + 2]; }
  operand(i: number, k: 0 | 1): number | bigint {
    const at = 2 * (IN_WORDS * i + 2 + k);
    return this.halves[at + 1] < EXACT_HIGH_LIMIT ? this.halves[at] + this.halves[at + 1] * TWO_32 : this.words[IN_WORDS * i + 2 + k];
  }
  /** Writes every half of step i's words (a warm array holds the last plan's). */
  put(i: number, code: number, ref: number, a: number | bigint, b: number | bigint, refHigh = 0): void {
    const at = IN_WORDS * i;
    const h = this.halves;
    this.recordWords += RECORD_WORDS[code];
    h[2 * at] = code;
    h[2 * at + 1] = 0;
    h[2 * at + 2] = ref; // below MAX_STEPS, or a read's flags
    h[2 * at + 3] = refHigh; // a read's least length
    this.set(at + 2, a);
    this.set(at + 3, b);
  }
  /** Bytes an allocating step asked for, for a kept Allocation. */
  requested(i: number): number {
    const op = this.op(i);
    if (op === 'calloc') return Number(BigInt(this.operand(i, 0)) * BigInt(this.operand(i, 1)));
    return Number(this.operand(i, op === 'alignedAlloc' ? 1 : 0));
  }
  private set(at: number, value: number | bigint): void {
    if (typeof value === 'bigint') {
      this.words[at] = value;
    } else {
      this.halves[2 * at] = value >>> 0;
      this.halves[2 * at + 1] = value < TWO_32 ? 0 : (value / TWO_32) >>> 0;
    }
  }
}

function check(steps: unknown, warmWords: BigUint64Array | undefined): Words {
  const list = readArray(steps, 'a plan', MAX_STEPS);
  if (list.length === 0) throw rangeError('a plan needs at least one step');
  const n = list.length;
  const words = warmWords !== undefined && n <= WARM_STEPS ? warmWords.subarray(0, n * IN_WORDS) : zeroedArray(BigUint64Array, n * IN_WORDS);
  const checked = new Words(words, n);
  for (let i = 0; i < n; i++) checkStep(list[i], i, checked);
  return checked;
}

/** Between a freeze and its thaw only these run (native/plan.cc refuses the rest too). */
const WHILE_FROZEN_CODE = OP_OF_CODE.map((op) => op === 'read' || op === 'mallinfo' || op === 'break' || op === 'thaw');

/**
 * `step i`, made once for an index below WARM_STEPS and kept: with
 * `step i.step`, built for every step though only an error shows them, it
 * cost about a tenth of a 4,000-step plan's time in JavaScript.
 */
const STEP_NAMES: string[] = [];
const stepName = (i: number): string => (i < WARM_STEPS ? (STEP_NAMES[i] ??= `step ${i}`) : `step ${i}`);

function checkStep(value: unknown, i: number, checked: Words): void {
  const name = stepName(i);
  const proxy = recordKind(value, name);
  const step = value as object;
  // Only the fields the op uses are read: own properties, once each.
  const code = codeOf(stepField(step, 'op', name, proxy));
  if (code === undefined) throw typeError(`${name}: op must be one of ${OPS.join(', ')}`);
  const op = OP_OF_CODE[code];
  if (op === 'freeze' && checked.frozen) throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: a freeze before the last one was thawed`);
  if (op === 'thaw' && !checked.frozen) throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: a thaw without a freeze`);
  if (checked.frozen && !WHILE_FROZEN_CODE[code]) {
    throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: only read, mallinfo and break steps run between a freeze and its thaw, not ${op}`);
  }
  if (op === 'freeze' || op === 'thaw') checked.frozen = op === 'freeze';
  let ref = 0;
  if (REFERRING_CODE[code]) {
    const index = stepField(step, 'step', name, proxy);
    if (index === undefined) {
      throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: ${op} needs \`step\`, the index of an earlier allocating step`);
    }
    // The common case inline, as in sizeField: the field's name is made only for an error.
    ref = typeof index === 'number' && Number.isSafeInteger(index) && index >= 0 ? index : toIndex(index, `${name}.step`);
    if (ref >= i || !checked.allocates(ref)) {
      throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: step ${ref} is not an earlier allocating step`);
    }
  }
  switch (op) {
    case 'malloc': case 'realloc':
      return checked.put(i, code, ref, sizeField(step, 'size', name, proxy), 0);
    case 'calloc': {
      const count = sizeField(step, 'count', name, proxy);
      return checked.put(i, code, ref, count, sizeField(step, 'size', name, proxy));
    }
    case 'alignedAlloc': {
      const alignment = sizeField(step, 'alignment', name, proxy);
      return checked.put(i, code, ref, alignment, sizeField(step, 'size', name, proxy));
    }
    case 'trim': {
      const pad = stepField(step, 'pad', name, proxy);
      return checked.put(i, code, ref, pad === undefined ? 0 : sizeArg(pad, `${name}.pad`), 0);
    }
    case 'touch':
      return checked.put(i, code, ref, toIndex(stepField(step, 'byte', name, proxy) ?? 0xa5, `${name}.byte`, 255), 0);
    case 'freeze': {
      // On the wire, 1 + the limit: 0 is no limit.
      const maxFast = stepField(step, 'maxFast', name, proxy);
      return checked.put(i, code, ref, maxFast === undefined ? 0 : toIndex(maxFast, `${name}.maxFast`, MAX_FAST_SIZE) + 1, 0);
    }
    case 'read': {
      const address = toAddress(stepField(step, 'address', name, proxy), `${name}.address`);
      const length = toSize(stepField(step, 'length', name, proxy), `${name}.length`, MAX_PLAN_READ);
      const flag = (key: 'anonymous' | 'toBreak'): boolean => {
        const value = stepField(step, key, name, proxy);
        if (value !== undefined && typeof value !== 'boolean') throw typeError(`${name}.${key} must be a boolean, got ${describe(value)}`);
        return value === true;
      };
      // A read's second word is its flags (native/plan.cc), where other steps name the step they act on.
      const toBreak = flag('toBreak');
      const lengthAt = stepField(step, 'lengthAt', name, proxy);
      const atLeast = stepField(step, 'atLeast', name, proxy);
      let lengthWord = 0;
      let least = 0;
      if (lengthAt !== undefined) {
        const offset = toIndex(lengthAt, `${name}.lengthAt`, 4088);
        if (offset % 8 !== 0) throw rangeError(`${name}.lengthAt must be a multiple of 8, got ${offset}`);
        if (toBreak) throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: a read stops at the break or at a length word, not both`);
        lengthWord = READ_TO_LENGTH_WORD | (offset << 8);
        least = atLeast === undefined ? 0 : Number(toSize(atLeast, `${name}.atLeast`, length < MAX_PLAN_READ ? length : MAX_PLAN_READ - 1n));
      } else if (atLeast !== undefined) {
        throw new HeapscopeError('ERR_INVALID_PLAN', `${name}: atLeast is the least a length word may give: it needs lengthAt`);
      }
      return checked.put(i, code, (flag('anonymous') ? READ_ANONYMOUS : 0) | (toBreak ? READ_TO_BREAK : 0) | lengthWord, address, length, least);
    }
    case 'pagemap': {
      const address = toAddress(stepField(step, 'address', name, proxy), `${name}.address`);
      return checked.put(i, code, ref, address, toSize(stepField(step, 'length', name, proxy), `${name}.length`, MAX_PAGEMAP_RANGE));
    }
    default:
      return checked.put(i, code, ref, 0, 0);
  }
}

/**
 * A step's own field, read once, as readOwn reads it, but with each key's
 * load written out: readOwn's one keyed load serves every record and array
 * the package reads, and a load that has met that many shapes is slow.
 */
function stepField(step: object, key: Field, name: string, proxy: boolean): unknown {
  if (proxy) return readOwn(step, key, name, true);
  const s = step as { [K in Field]?: unknown };
  try {
    switch (key) {
      case 'op': return Object.hasOwn(s, 'op') ? s.op : undefined;
      case 'step': return Object.hasOwn(s, 'step') ? s.step : undefined;
      case 'size': return Object.hasOwn(s, 'size') ? s.size : undefined;
      case 'count': return Object.hasOwn(s, 'count') ? s.count : undefined;
      case 'alignment': return Object.hasOwn(s, 'alignment') ? s.alignment : undefined;
      case 'pad': return Object.hasOwn(s, 'pad') ? s.pad : undefined;
      case 'byte': return Object.hasOwn(s, 'byte') ? s.byte : undefined;
      case 'address': return Object.hasOwn(s, 'address') ? s.address : undefined;
      case 'length': return Object.hasOwn(s, 'length') ? s.length : undefined;
      case 'anonymous': return Object.hasOwn(s, 'anonymous') ? s.anonymous : undefined;
      case 'toBreak': return Object.hasOwn(s, 'toBreak') ? s.toBreak : undefined;
      case 'lengthAt': return Object.hasOwn(s, 'lengthAt') ? s.lengthAt : undefined;
      case 'atLeast': return Object.hasOwn(s, 'atLeast') ? s.atLeast : undefined;
      case 'maxFast': return Object.hasOwn(s, 'maxFast') ? s.maxFast : undefined;
      // A field added to FIELDS without its case here fails to compile.
      default: return key satisfies never;
    }
  } catch (error) {
    throw readFailed(`${name}.${key}`, error);
  }
}

function sizeField(step: object, key: Field, name: string, proxy: boolean): number | bigint {
  const value = stepField(step, key, name, proxy);
  // The common case inline; sizeArg names the field only when it must.
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : sizeArg(value, `${name}.${key}`);
}

/**
 * The records' results, decoded one record after another: each record's
 * head word says its op (and so its length), so nothing of the plan's own
 * words is needed. Only addresses and raw header words become bigints.
 * Each result is one literal with exactly its fields, in one order (index,
 * op, status, errno, then the op's own): no property is added to an object
 * already made.
 */
function decode(transcript: Transcript, count: number, texts: (string | undefined)[], buffers: (Buffer | undefined)[]): StepResult[] {
  const own = transcript.length > WARM_RECORD_WORDS ? mappedBytes(transcript.length * 8) : undefined;
  try {
    return decodeWords(wordsOf(transcript, own ?? decodeArea(transcript.length * 8)), count, texts, buffers);
  } finally {
    if (own !== undefined) releaseBytes([own]);
  }
}

function decodeWords(halves: Uint32Array, count: number, texts: (string | undefined)[], buffers: (Buffer | undefined)[]): StepResult[] {
  // A count or size: exact below 2^53, as every one the executor writes is.
  // A word below 2^32 is its low half as it is: a 1,000-item plan's decode
  // made 489 KB so, 521 KB with the sum taken for every word.
  const number = (k: number): number => (halves[2 * k + 1] === 0 ? halves[2 * k] : halves[2 * k] + halves[2 * k + 1] * TWO_32);
  // A word, exactly: a 64-bit bigint made from its halves, which V8 makes
  // inline (~4 ns); BigInt(number) took ~18.
  const word = (k: number): bigint => BigInt.asUintN(64, (BigInt(halves[2 * k + 1]) << 32n) | BigInt(halves[2 * k]));
  function decodeOk(op: PlanOp, index: number, status: StepStatus, at: number): StepResult {
    switch (op) {
      case 'malloc': case 'calloc': case 'realloc': case 'alignedAlloc': return { index, op, status, address: word(at + 1) };
      case 'break': return { index, op, status, programBreak: word(at + 1) };
      case 'header': {
        // The size word's low bits hold the flags; its size as a number, then the exact words.
        const flags = halves[2 * (at + 1)] & 7;
        const header = headerOf(word(at + 3), word(at + 2), word(at + 1), number(at + 1) - flags, flags);
        return { index, op, status, header };
      }
      case 'usableSize': return { index, op, status, usableSize: number(at + 1) };
      case 'trim': return { index, op, status, released: number(at + 1) === 1 };
      case 'resident': case 'pagemap': return { index, op, status, residentPages: number(at + 1), totalPages: number(at + 2) };
      case 'statm': return { index, op, status, rssPages: number(at + 1), sizePages: number(at + 2) };
      case 'freeze': return { index, op, status, pid: number(at + 1) };
      case 'maps': return { index, op, status, maps: texts[index] };
      case 'read':
        if ((halves[2 * at] & READ_ANONYMOUS_HEAD) === 0) return { index, op, status, bytes: buffers[index] };
        return number(at + 2) === 0
          ? { index, op, status, bytes: buffers[index], untouchedPages: number(at + 1) }
          : { index, op, status, bytes: buffers[index], untouchedPages: number(at + 1), pagemapErrno: number(at + 2) };
      case 'mallinfo':
        return { index, op, status, mallinfo: fromWords(number(at + 11) === 2 ? 'mallinfo2' : 'mallinfo', MALLINFO_FIELDS.map((_, k) => word(at + 1 + k))) };
      default: return { index, op, status };
    }
  }
  const results: StepResult[] = new Array(count);
  for (let index = 0, at = 0; index < count; index++) {
    // The head word: status, op and a read's flag in its low half, errno in its high.
    const low = halves[2 * at];
    const code = (low >>> 8) & 0xff;
    const op = OP_OF_CODE[code];
    const status = STATUS[low & 0xff];
    if (status === 'skipped') {
      results[index] = { index, op, status };
    } else if (status === 'failed') {
      const errno = halves[2 * at + 1];
      results[index] = ALLOCATING_CODE[code] ? { index, op, status, errno, address: word(at + 1) } : { index, op, status, errno };
    } else {
      results[index] = decodeOk(op, index, status, at);
    }
    at += RECORD_WORDS[code];
  }
  return results;
}

/** The pointers the kept steps (`kept`, ascending step indices) returned, from their records. */
function keptPointers(words: BigUint64Array, kept: readonly number[]): number[] {
  const halves = new Uint32Array(words.buffer, words.byteOffset, words.length * 2);
  const pointers = new Array<number>(kept.length);
  for (let index = 0, k = 0, at = 0; k < kept.length; index++) {
    if (index === kept[k]) pointers[k++] = halves[2 * (at + 1)] + halves[2 * (at + 1) + 1] * TWO_32;
    at += RECORD_WORDS[(halves[2 * at] >>> 8) & 0xff];
  }
  return pointers;
}

let decoded: (result: unknown) => StepResult[];

/**
 * `steps` is an own enumerable getter, so that spreads, JSON,
 * structuredClone and equality checks see the decoded array as they saw a
 * plain object's. One descriptor serves every result: an accessor made per
 * result (a literal's getter) is allocated in V8's old space, and what its
 * closure holds, the decoded steps among it, then outlived every scavenge
 * (48 mark-compacts where a plain result took none, over ten seconds of
 * 1,000-item plans read).
 */
const STEPS = descriptor({
  get(this: unknown): StepResult[] {
    return decoded(this);
  },
  enumerable: true,
});

/** A plan's result: its records, decoded into `steps` when first read. */
class PlanOutcome {
  #records: { transcript: Transcript; texts: (string | undefined)[]; buffers: (Buffer | undefined)[] } | undefined;
  readonly #count: number;
  #steps: StepResult[] | undefined;
  declare readonly steps: StepResult[];
  declare readonly kept: Map<number, Allocation>;

  constructor(transcript: Transcript, raw: RawPlanResult, count: number, kept: Map<number, Allocation>) {
    this.#records = { transcript, texts: raw.texts, buffers: raw.buffers };
    this.#count = count;
    Object.defineProperty(this, 'steps', STEPS);
    defineOwn(this, 'kept', kept);
  }

  static {
    decoded = (result) => {
      if (typeof result !== 'object' || result === null || !(#count in result)) {
        throw typeError(`a plan result's steps read from ${describe(result)}, which runPlan did not return`);
      }
      return (result as PlanOutcome).#decoded();
    };
  }

  #decoded(): StepResult[] {
    const records = this.#records;
    if (records !== undefined) {
      this.#steps = decode(records.transcript, this.#count, records.texts, records.buffers);
      this.#records = undefined;
    }
    return this.#steps!;
  }

  /** At the prompt: its steps, decoded, and what it kept, as a plain object's. */
  [inspect.custom](): object {
    return { steps: this.steps, kept: this.kept };
  }
}

/** The checked words of `value` if compilePlan made it, else undefined (a Proxy of one included). */
let compiledWords: (value: unknown) => Words | undefined;
let compiled: (checked: Words) => CompiledPlan;

/**
 * A plan checked once, to run as often as wanted: `runPlan` of it checks
 * nothing again. Its words are made by `compilePlan` and held here alone,
 * so what was checked is what runs, however the steps it was made from
 * change afterwards.
 */
export class CompiledPlan {
  readonly #checked: Words;

  // Private, and refused without the module's own token: words that did not
  // come from check() would run unchecked.
  private constructor(checked: Words, token: symbol) {
    if (token !== COMPILING) throw illegalConstructor('a CompiledPlan is made by compilePlan(steps), not by new CompiledPlan()');
    this.#checked = checked;
  }

  static {
    compiledWords = (value) => (typeof value === 'object' && value !== null && #checked in value ? (value as CompiledPlan).#checked : undefined);
    compiled = (checked) => new CompiledPlan(checked, COMPILING);
  }

  /** How many steps the plan has. */
  get length(): number {
    if (!(#checked in this)) throw typeError(`CompiledPlan.length of ${describe(this)}, which compilePlan did not make`);
    return this.#checked.count;
  }

  [inspect.custom](): string {
    return #checked in this ? `CompiledPlan { ${plural(this.#checked.count, 'step')} }` : 'CompiledPlan <not made by compilePlan>';
  }
}
const COMPILING = Symbol('compilePlan');

/** @internal The addon's id of a compiled plan (bench/run.mjs times its native call alone, held as runPlan holds it). */
export function compiledPlanId(plan: CompiledPlan): number | undefined {
  return compiledWords(plan)?.compiledId;
}

/**
 * Checks `steps` as `runPlan` does, once, into a `CompiledPlan` that
 * `runPlan` runs without checking it again: for a plan run many times (an
 * experiment measured again, a loop in a lesson). The same errors as
 * `runPlan`'s, thrown here.
 */
export function compilePlan(steps: readonly PlanStep[]): CompiledPlan {
  const checked = check(steps, undefined);
  checked.compiledId = binding.planId();
  return compiled(checked);
}

/**
 * Runs `steps` inside one native call on the calling thread and returns
 * what each step saw. Plans are checked before anything runs: an unknown
 * op, a bad size, a missing `step`, or a step that frees or reads a freed
 * step is an error (`ERR_INVALID_PLAN` or a `TypeError`/`RangeError`),
 * never a glibc abort. Steps and options are read once, own properties only.
 * A `CompiledPlan` was checked when compilePlan made it.
 */
export function runPlan(steps: readonly PlanStep[] | CompiledPlan, options: PlanOptions = {}): PlanResult {
  return runWarm(steps, options);
}

/**
 * @internal runPlan for a caller that gives the read copies of the steps
 * from `from` on back itself (releaseCopies) once done with them, whatever
 * happens: V8 does not count those as external memory meanwhile
 * (native/copies.cc).
 */
export function runPlanReleasingCopies(steps: readonly PlanStep[], from: number): PlanResult {
  return runWarm(steps, {}, from);
}

function runWarm(steps: readonly PlanStep[] | CompiledPlan, options: PlanOptions, releasedFrom?: number): PlanResult {
  const arrays = warmArrays();
  const own = !arrays.busy;
  arrays.busy = true;
  try {
    return run(steps, options, own ? arrays : undefined, releasedFrom);
  } finally {
    if (own) arrays.busy = false;
  }
}

function run(steps: readonly PlanStep[] | CompiledPlan, options: PlanOptions, arrays: WarmArrays | undefined, releasedFrom?: number): PlanResult {
  const checked = compiledWords(steps) ?? check(steps, arrays?.steps);
  const { keep } = readOptions(options, 'options', ['keep']);
  if (keep !== undefined && typeof keep !== 'boolean') throw typeError(`options.keep must be a boolean, got ${describe(keep)}`);
  const own = arrays === undefined || checked.recordWords > WARM_RECORD_WORDS ? mappedBytes(checked.recordWords * 8) : undefined;
  const records = own === undefined ? arrays!.records : new BigUint64Array(own.buffer, 0, checked.recordWords);
  let raw: RawPlanResult;
  try {
    raw = native(() => binding.runPlan(checked.words, keep === true, records, releasedFrom, checked.compiledId));
  } catch (error) {
    if (own !== undefined) releaseBytes([own]);
    throw error;
  }
  const kept = new Map<number, Allocation>();
  let pointers: number[] = [];
  try {
    pointers = keptPointers(raw.words, raw.kept);
    raw.kept.forEach((index, k) => {
      const op = checked.op(index);
      const call = ALLOCATING.has(op) ? op as AllocationCall : 'plan';
      kept.set(index, mintAllocation(pointers[k], checked.requested(index), call));
    });
    return new PlanOutcome(transcribe(raw.words, checked.recordWords), raw, checked.count, kept);
  } catch (error) {
    // A plan that fails after the native call strands no block: each kept
    // one is freed, through its handle where it already has one.
    for (const [k, index] of raw.kept.entries()) {
      try {
        const handle = kept.get(index);
        if (handle !== undefined) handle.free();
        else binding.free(pointers[k]);
      } catch {
        // Free the rest; the first error is the one to report.
      }
    }
    throw error;
  } finally {
    // Unmapped now: Node would run its finalizer only from its event loop.
    if (own !== undefined) releaseBytes([own]);
  }
}
