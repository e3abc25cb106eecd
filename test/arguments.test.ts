// Every export of lib/index.ts, given every kind of bad argument in every
// position: each call returns or throws an Error with a string `code`
// (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE or a heapscope code), never a
// bare TypeError from deep inside. A new export without an entry here fails.
import { describe, expect, it } from 'vitest';
import * as h from '../lib/index';

function detachedView(): Uint8Array {
  const buffer = new ArrayBuffer(16);
  const view = new Uint8Array(buffer, 4, 8);
  structuredClone(buffer, { transfer: [buffer] });
  return view;
}

const thrower = () => { throw new Error('hostile'); };
// Every option and step field heapscope reads, as a getter that throws.
const FIELDS = ['keep', 'isolated', 'tunables', 'rss', 'arena', 'before', 'attempts', 'start', 'end', 'top', 'fenceposts',
  'mainArena', 'columns', 'rows', 'trim', 'op', 'step', 'size', 'count', 'alignment', 'pad', 'byte', 'address', 'length', '0'];
const hostileGetters = Object.defineProperties({}, Object.fromEntries(FIELDS.map((f) => [f, { get: thrower, enumerable: true }])));
const hostileArray = Object.defineProperty([{ op: 'break' }], '0', { get: thrower });
const trapAll = new Proxy({}, {
  get: thrower, has: thrower, ownKeys: thrower, getOwnPropertyDescriptor: thrower, getPrototypeOf: thrower,
});
const trapArray = new Proxy([{ op: 'break' }], { get: thrower, getOwnPropertyDescriptor: thrower });
const revoked = Proxy.revocable({}, {});
revoked.revoke();
const revokedArray = Proxy.revocable([], {});
revokedArray.revoke();
const hostileConversions = { toString: thrower, valueOf: thrower, [Symbol.toPrimitive]: thrower };

const BAD: [string, unknown][] = [
  ['undefined', undefined], ['null', null], ['true', true], ['0.5', 0.5], ['-1', -1], ['NaN', NaN], ['Infinity', Infinity],
  ['2^64', 2 ** 64], ['-1n', -1n], ['1n', 1n], ['2n^64', 1n << 64n], ["''", ''], ["'x'", 'x'], ['a Symbol', Symbol('s')],
  ['{}', {}], ['[]', []], ['[null]', [null]], ['a function', () => 1], ['Object.create(null)', Object.create(null)],
  ['an object whose getters throw', hostileGetters], ['an array whose element getter throws', hostileArray],
  ['an object whose conversions throw', hostileConversions], ['a Proxy whose traps throw', trapAll],
  ['an array Proxy whose traps throw', trapArray], ['a revoked Proxy', revoked.proxy], ['a revoked array Proxy', revokedArray.proxy],
  ['a view of a detached ArrayBuffer', detachedView()], ['an Allocation prototype object', Object.create(h.Allocation.prototype)],
];

// Fresh arguments for each call: a live block is spent by free or realloc.
const live = () => h.malloc(24);
const heapscopeResults: unknown[] = [];
// One snapshot file's text, taken once, for the calls that read one.
let text: string | undefined;
const snapshotText = () => (text ??= JSON.stringify(h.heapSnapshot()));

interface Entry {
  /** Good arguments (functions are called for a fresh value each time). */
  args: unknown[];
  /** Bad values not to try (they are valid and too slow, or change the process). */
  skip?: (value: unknown, position: number) => boolean;
}

const FUNCTIONS: Record<string, Entry> = {
  alignedAlloc: { args: [16, 16] },
  // The allocator-state calls take an optional snapshot (each bad value stands in for it).
  allocatorSnapshot: { args: [{}] },
  allocatorTotals: { args: [] },
  allocationAt: { args: [0x1000n] },
  arenas: { args: [] },
  // Any pid in range is a real attach: every bad value stands in for it.
  attach: { args: [1] },
  binIndex: { args: [32] },
  binRange: { args: [2] },
  bins: { args: [] },
  chunkPlaces: { args: [] },
  // Without trim: malloc_trim(0) would change the process the other calls measure.
  doctor: { args: [{}], skip: (value) => value === true },
  calloc: { args: [1, 16] },
  compilePlan: { args: [[{ op: 'break' }]] },
  diffHeapSnapshots: { args: [snapshotText, snapshotText] },
  experiment: { args: ['layout'] },
  experiments: { args: [] },
  fastbinIndex: { args: [32, 128] },
  free: { args: [live] },
  glibcVersion: { args: [] },
  heapSnapshot: { args: [] },
  hex: { args: [0n] },
  largebinIndex: { args: [1024] },
  liveAllocations: { args: [] },
  mainHeapSnapshot: { args: [1] },
  mallinfo2: { args: [] },
  malloc: { args: [16] },
  mallocInfo: { args: [] },
  mallocParams: { args: [] },
  mallocTrim: { args: [0] },
  mallocUsableSize: { args: [live] },
  // -5 is no value of any parameter: no bad parameter makes a valid call.
  mallopt: { args: ['M_PERTURB', -5] },
  maps: { args: [{}] },
  mmappedChunkSize: { args: [100, 4096] },
  pageSize: { args: [] },
  parseMallocInfo: { args: ['<malloc version="1"></malloc>'] },
  parseMaps: { args: [''] },
  parseSmaps: { args: [''] },
  programBreak: { args: [] },
  readMemory: { args: [() => live().address, 8] },
  readHeapSnapshot: { args: [snapshotText] },
  realloc: { args: [live, 32] },
  regionOf: { args: [0x1000n, []] },
  reportHTML: { args: [[]] },
  requestToChunkSize: { args: [100] },
  // Options are checked before the name is looked up: no bad value in either place runs an experiment.
  run: { args: ['no-such-experiment', {}] },
  runPlan: { args: [[{ op: 'break' }], {}] },
  sizeClass: { args: [100, '2.36'] },
  smallbinIndex: { args: [32] },
  tcacheIndex: { args: [32] },
  tcaches: { args: [] },
  usableSizeOf: { args: [32, false] },
  // Options, then the snapshot they decode.
  vis: { args: [{ count: 1 }, () => h.allocatorSnapshot()] },
  walkHeap: { args: [{}] },
  walkSnapshot: { args: [Buffer.alloc(64), 0n, {}] },
  // Any string is a file name: writing a report runs every experiment.
  writeReport: { args: [42], skip: (value) => typeof value === 'string' },
};

// Classes: Allocation's constructor always throws; HeapscopeError is an Error subclass like any other.
const CLASSES = ['Allocation', 'CompiledPlan', 'HeapscopeError'];

function outcome(call: () => unknown): Promise<unknown> {
  let value: unknown;
  try {
    value = call();
  } catch (error) {
    return Promise.resolve({ thrown: error });
  }
  // Blocks made by a call that succeeded are freed again.
  if (value instanceof h.Allocation && !value.freed) value.free();
  if (typeof value === 'object' && value !== null && 'kept' in value && value.kept instanceof Map) {
    for (const a of value.kept.values()) a.free();
  }
  if (value instanceof Promise) return value.then(() => ({}), (error: unknown) => ({ thrown: error }));
  heapscopeResults.push(value);
  return Promise.resolve({});
}

function uncoded(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null || !('thrown' in result)) return undefined;
  const error = result.thrown as { code?: unknown; message?: unknown };
  if (error instanceof Error && typeof error.code === 'string') return undefined;
  return error instanceof Error ? `${error.constructor.name}: ${error.message}` : `threw a non-Error: ${String(error)}`;
}

async function gaps(name: string, call: (args: unknown[]) => unknown, entry: Entry): Promise<string[]> {
  const found: string[] = [];
  for (let position = 0; position < Math.max(entry.args.length, 1); position++) {
    for (const [label, value] of BAD) {
      if (entry.skip?.(value, position)) continue;
      const args = entry.args.map((a, k) => (k === position ? value : typeof a === 'function' ? a() : a));
      if (args.length === 0) args.push(value);
      const problem = uncoded(await outcome(() => call(args)));
      if (problem !== undefined) found.push(`${name}: argument ${position + 1} ${label}: ${problem}`);
    }
  }
  // Arguments left over from a refused call (a live block that was not spent).
  for (const a of h.liveAllocations()) a.free();
  return found;
}

describe('every export, every bad argument', () => {
  it('has an entry here for each function heapscope exports', () => {
    const exported = Object.entries(h).filter(([, v]) => typeof v === 'function').map(([k]) => k);
    expect(exported.filter((k) => !(k in FUNCTIONS) && !CLASSES.includes(k))).toEqual([]);
  });

  it('functions: each call returns or throws an error with a string code', async () => {
    const found: string[] = [];
    for (const [name, entry] of Object.entries(FUNCTIONS)) {
      const f = (h as unknown as Record<string, (...args: unknown[]) => unknown>)[name];
      found.push(...await gaps(name, (args) => f(...args), entry));
    }
    expect(found).toEqual([]);
  }, 120_000);

  it('Allocation methods: each call returns or throws an error with a string code', async () => {
    const methods: Record<string, Entry> = { read: { args: [0, 8] }, write: { args: [0, 'x'] }, fill: { args: [0] } };
    const found: string[] = [];
    for (const [name, entry] of Object.entries(methods)) {
      found.push(...await gaps(`Allocation.${name}`, (args) => {
        const a = live();
        try {
          return (a as unknown as Record<string, (...args: unknown[]) => unknown>)[name](...args);
        } finally {
          a.free();
        }
      }, entry));
    }
    expect(found).toEqual([]);
  });

  it('HeapWalk views: each call returns or throws an error with a string code', async () => {
    const walk = h.walkHeap();
    const found: string[] = [];
    for (const name of ['toSVG', 'toHTML'] as const) {
      found.push(...await gaps(`HeapWalk.${name}`, (args) => walk[name](...(args as [])), { args: [{}] }));
    }
    expect(found).toEqual([]);
  });

  it('the cases found by hand before: each a coded error', async () => {
    const a = h.malloc(32);
    const argType = expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => a.write(0, detachedView())).toThrow(argType);
    a.free();
    expect(() => h.runPlan([{ op: 'break' }], null as never)).toThrow(argType);
    await expect(h.run('free', null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => h.walkSnapshot(Buffer.alloc(64), 0n, { top: 5 as never })).toThrow(argType);
    await expect(h.run(1n as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => h.experiment(1n as never)).toThrow(argType);
  });

  it('new Allocation(…) and new CompiledPlan(…) with any arguments are ERR_ILLEGAL_CONSTRUCTOR', () => {
    const Ctor = h.Allocation as unknown as new (...args: unknown[]) => unknown;
    const Compiled = h.CompiledPlan as unknown as new (...args: unknown[]) => unknown;
    for (const [label, value] of BAD) {
      expect(() => new Ctor(value, 32, 'malloc'), label).toThrow(expect.objectContaining({ code: 'ERR_ILLEGAL_CONSTRUCTOR' }));
      expect(() => new Compiled(value, Symbol('compilePlan')), label).toThrow(expect.objectContaining({ code: 'ERR_ILLEGAL_CONSTRUCTOR' }));
    }
  });
});
