// The raw binding's runPlan checks every word it uses itself: it is as safe
// as the public runPlan, whose TypeScript checks it does not rely on.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Allocation, malloc } from '../lib/allocation';
import { binding } from '../lib/binding';
import { SYNC_CHILD } from './helpers/sync-child';

const ROOT = path.join(__dirname, '..');
const OP = { malloc: 1n, realloc: 3n, memalign: 4n, free: 5n, break: 6n, header: 7n, usable: 8n, trim: 10n, touch: 11n, read: 15n, freeze: 16n, thaw: 17n, pagemap: 18n };
const BIG = 1n << 63n;

const words = (...steps: bigint[][]) => BigUint64Array.from(steps.flatMap((s) => [...s, 0n, 0n, 0n, 0n].slice(0, 4)));

function refusal(plan: unknown): unknown {
  try {
    binding.runPlan(plan as BigUint64Array, false);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('the raw runPlan binding', () => {
  it('refuses hostile word arrays with a coded error before running anything', () => {
    const hostile: [string, BigUint64Array][] = [
      ['a ref far out of range', words([OP.malloc, 0n, 8n], [OP.free, 1n << 40n])],
      ['a ref past the end of the plan', words([OP.malloc, 0n, 8n], [OP.usable, 7n])],
      ['a ref to itself', words([OP.malloc, 0n, 8n], [OP.header, 1n])],
      ['a forward ref', words([OP.free, 1n], [OP.malloc, 0n, 8n])],
      ['a ref to a step that does not allocate', words([OP.break], [OP.free, 0n])],
      ['a ref to a freed step', words([OP.malloc, 0n, 8n], [OP.free, 0n], [OP.touch, 0n])],
      ['op 0', words([0n])],
      ['op 19', words([19n])],
      ['a thaw without a freeze', words([OP.thaw])],
      ['a freeze inside a freeze', words([OP.freeze], [OP.freeze])],
      ['a freeze whose fastbin limit is above 160', words([OP.freeze, 0n, 162n], [OP.thaw])],
      ['a malloc between a freeze and its thaw', words([OP.freeze], [OP.malloc, 0n, 8n], [OP.thaw])],
      ['a free after a freeze never thawed', words([OP.malloc, 0n, 8n], [OP.freeze], [OP.free, 0n])],
      ['op 2^64 - 1', words([(1n << 64n) - 1n])],
      ['a size above PTRDIFF_MAX', words([OP.malloc, 0n, BIG])],
      ['an alignment above PTRDIFF_MAX', words([OP.memalign, 0n, BIG, 8n])],
      ['a realloc to 0 bytes', words([OP.malloc, 0n, 8n], [OP.realloc, 0n, 0n])],
      ['a touch byte above 255', words([OP.malloc, 0n, 8n], [OP.touch, 0n, 256n])],
      ['a trim pad above PTRDIFF_MAX', words([OP.trim, 0n, BIG])],
      ['a read longer than a Buffer holds', words([OP.read, 0n, 4096n, 1n << 40n])],
      ['a read flag above 4', words([OP.read, 8n, 4096n, 8n])],
      ['a read to the break and to a length word', words([OP.read, 6n, 4096n, 8n])],
      ['a length word offset without its flag', words([OP.read, 16n << 8n, 4096n, 8n])],
      ['a length word offset that is no multiple of 8', words([OP.read, 4n | (12n << 8n), 4096n, 8n])],
      ['a length word offset of 4096', words([OP.read, 4n | (4096n << 8n), 4096n, 8n])],
      ['a least length without a length word', words([OP.read, 8n << 32n, 4096n, 8n])],
      ['a least length above the length', words([OP.read, 4n | (9n << 32n), 4096n, 8n])],
      ['a pagemap range longer than the user address space', words([OP.pagemap, 0n, 0n, (1n << 47n) + 1n])],
      ['a pagemap between a freeze and its thaw', words([OP.freeze], [OP.pagemap, 0n, 0n, 4096n], [OP.thaw])],
      ['a partial step', new BigUint64Array(5)],
      ['no steps', new BigUint64Array(0)],
    ];
    for (const [what, plan] of hostile) {
      expect(refusal(plan), what).toMatchObject({ code: 'ERR_INVALID_PLAN' });
    }
    for (const bad of [undefined, [1n, 0n, 8n, 0n], new BigInt64Array(4), new Uint32Array(8)]) {
      expect(refusal(bad)).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    }
    expect(binding.liveCount()).toBe(0);
  });

  it('refuses a records array of the wrong type or too short, before running anything', () => {
    const plan = words([OP.malloc, 0n, 8n], [OP.free, 0n]);
    const attempt = (records: unknown) => {
      try {
        binding.runPlan(plan, false, records as BigUint64Array);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    for (const bad of [[0n], new Float64Array(32), new BigInt64Array(32), {}]) {
      expect(attempt(bad)).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    }
    // A malloc's record is two words and a free's one (lib/plan-codes.ts).
    expect(attempt(new BigUint64Array(2))).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(attempt(new BigUint64Array(3))).toBeUndefined();
    expect(binding.liveCount()).toBe(0);
  });

  it('writes records in place, and hands over texts and Buffers from its own account of them, not the records', () => {
    // Records in a SharedArrayBuffer that another thread overwrites with
    // hostile offsets and lengths while the plan runs: what the addon hands
    // over after the steps (a maps text, a read's Buffer) must come from
    // what it kept itself, or a rewritten length would read past its memory.
    const child = spawnSync(process.execPath, ['-e', `
      const { Worker } = require('node:worker_threads');
      const { binding } = require(${JSON.stringify(path.join(ROOT, 'dist', 'binding.js'))});
      const source = Buffer.from('heapscope records');
      const block = binding.malloc(64);
      binding.writeAllocation(block, 0, source);
      const plan = new BigUint64Array([13n, 0n, 0n, 0n, 15n, 0n, BigInt(block), BigInt(source.length), 14n, 0n, 0n, 0n]);
      const records = new BigUint64Array(new SharedArrayBuffer(3 * 16 * 8));
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(\`
        const { workerData: [records, flag] } = require('node:worker_threads');
        for (let k = 0; Atomics.load(flag, 0) === 0; k++) records.fill(k % 2 === 0 ? (1n << 62n) : 0n);
      \`, { eval: true, workerData: [records, flag] });
      worker.on('online', () => {
        let texts = 0, bytes = 0;
        for (let i = 0; i < 2000; i++) {
          const result = binding.runPlan(plan, false, records);
          if (result.words !== records) throw new Error('words is not the records array');
          if (typeof result.texts[0] === 'string' && result.texts[0].includes('[stack]')) texts++;
          if (result.buffers[1] !== undefined && result.buffers[1].equals(source)) bytes++;
        }
        Atomics.store(flag, 0, 1);
        binding.free(block);
        worker.once('exit', () => console.log(JSON.stringify({ texts, bytes, live: binding.liveCount() })));
      });
    `], { ...SYNC_CHILD, encoding: 'utf8' });
    expect(child.signal, child.stderr).toBeNull();
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ texts: 2000, bytes: 2000, live: 0 });
  });

  it('runs a plan whose SharedArrayBuffer another thread rewrites: checked and run from one copy', () => {
    // A worker flips the last step's ref between valid (0) and far out of
    // range, and its op between usableSize and unknown ones, while this
    // thread runs the plan again and again. Run from the array itself, a
    // check could pass and the run see the hostile word: slot[2^40], a SIGSEGV.
    const child = spawnSync(process.execPath, ['-e', `
      const { Worker } = require('node:worker_threads');
      const { binding } = require(${JSON.stringify(path.join(ROOT, 'dist', 'binding.js'))});
      const STEPS = 4096;
      const shared = new BigUint64Array(new SharedArrayBuffer(STEPS * 4 * 8));
      shared.set([1n, 0n, 64n, 0n]);
      for (let i = 1; i < STEPS; i++) shared.set([8n, 0n, 0n, 0n], i * 4);
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(\`
        const { workerData: [words, flag] } = require('node:worker_threads');
        const last = words.length - 4;
        const ops = [8n, 13n, 15n, 99n];
        for (let k = 0; Atomics.load(flag, 0) === 0; k++) {
          words[last + 1] = k % 2 === 0 ? 1n << 40n : 0n;
          words[last] = ops[k % ops.length];
          words[last + 3] = k % 3 === 0 ? 1n << 40n : 8n;
          words[5] = k % 5 === 0 ? 3n : 0n;
        }
      \`, { eval: true, workerData: [shared, flag] });
      const codes = {};
      let ran = 0;
      let refused = 0;
      worker.on('online', () => {
        // Until both outcomes have been seen often (a starved worker would
        // leave the plan whole), within a bound.
        for (let i = 0; i < 100000 && (i < 3000 || ran < 100 || refused < 100); i++) {
          try {
            const { words } = binding.runPlan(shared, false);
            if ((words[0] & 0xffn) !== 0n) throw new Error('the malloc step failed');
            ran++;
          } catch (e) {
            refused++;
            codes[e.code] = (codes[e.code] ?? 0) + 1;
          }
        }
        Atomics.store(flag, 0, 1);
        worker.once('exit', () => console.log(JSON.stringify({ ran, codes, live: binding.liveCount() })));
      });
    `], { ...SYNC_CHILD, encoding: 'utf8' });
    expect(child.signal, child.stderr).toBeNull();
    expect(child.status, child.stderr).toBe(0);
    const { ran, codes, live } = JSON.parse(child.stdout);
    // Both outcomes happened: some copies were whole plans, some hostile ones refused.
    expect(ran).toBeGreaterThanOrEqual(100);
    expect(Object.keys(codes)).toEqual(['ERR_INVALID_PLAN']);
    expect(codes.ERR_INVALID_PLAN).toBeGreaterThanOrEqual(100);
    expect(live).toBe(0);
  });

  it('runs a plan whose records overlap its own words as it was checked', () => {
    // Steps at words 0-15, records from word 0: the mallinfo step's 12 words
    // of record (2-13) fall on the usableSize and free steps (8-15). Run
    // from the words themselves, those two would be mallinfo's numbers.
    const shared = new BigUint64Array(20);
    shared.set(words([OP.malloc, 0n, 64n], [9n], [OP.usable, 0n], [OP.free, 0n]));
    const live = binding.liveCount();
    const { words: records } = binding.runPlan(shared.subarray(0, 16), false, shared);
    expect(records).toBe(shared);
    const pointer = records[1];
    // Each record's head: status 0 (ok) in its low byte, the op above it.
    expect([records[0], records[2], records[14], records[16]].map((w) => [w & 0xffn, (w >> 8n) & 0xffn])).toEqual([[0n, OP.malloc], [0n, 9n], [0n, OP.usable], [0n, OP.free]]);
    expect(pointer).toBeGreaterThan(0n);
    expect(records[15]).toBeGreaterThanOrEqual(64n);
    expect(binding.liveCount()).toBe(live);
  });
});

describe("the raw runPlan binding's compiled plans", () => {
  /** The usable size the plan's usableSize step (its second) recorded: at least the size asked, and less than any larger size asked here. */
  const usable = ({ words: r }: { words: BigUint64Array }): bigint => r[3];
  const plan = (size: bigint) => words([OP.malloc, 0n, size], [OP.usable, 0n], [OP.free, 0n]);
  const hostile = words([OP.malloc, 0n, 64n], [OP.usable, 0n], [OP.free, 1n << 40n]);

  it('checks a compiled plan on its first run and runs what it checked until another compiled plan runs', () => {
    const id = binding.planId();
    const live = binding.liveCount();
    const run = (steps: BigUint64Array, planId = id) => usable(binding.runPlan(steps, false, undefined, undefined, planId));
    expect(run(plan(64n))).toBeLessThan(200n);
    // Held: the words given with the id are not read, a hostile ref included.
    expect(run(plan(1000n))).toBeLessThan(200n);
    expect(run(hostile)).toBeLessThan(200n);
    // Words of another length with the same id are checked, run as given, and held.
    expect(run(words([OP.malloc, 0n, 1000n], [OP.usable, 0n], [OP.free, 0n], [OP.break]))).toBeGreaterThanOrEqual(1000n);
    expect(run(plan(1000n))).toBeGreaterThanOrEqual(1000n);
    // Plans that are not compiled, between its runs, leave it held.
    binding.runPlan(plan(24n), false);
    expect(() => binding.runPlan(hostile, false)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PLAN' }));
    expect(run(plan(200n))).toBeGreaterThanOrEqual(1000n);
    // Another compiled plan, refused: the id's next words are checked and run.
    expect(() => run(hostile, binding.planId())).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PLAN' }));
    const fresh = run(plan(200n));
    expect(fresh >= 200n && fresh < 1000n).toBe(true);
    // Another compiled plan, run: the id's hostile words are checked and refused.
    run(plan(24n), binding.planId());
    expect(() => run(hostile)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_PLAN' }));
    expect(binding.liveCount()).toBe(live);
  });

  it('refuses an id that is not a whole number above 0, and gives each id once', () => {
    for (const id of [0, -1, 1.5, Number.NaN, 2 ** 53, '1', 1n, {}]) {
      expect(() => binding.runPlan(plan(64n), false, undefined, undefined, id as number)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
    const ids = Array.from({ length: 100 }, () => binding.planId());
    expect(new Set(ids).size).toBe(100);
    expect(ids.every((id) => Number.isSafeInteger(id) && id > 0)).toBe(true);
  });
});

describe('releaseCopies: a read copy given back before its finalizer runs', () => {
  /** A read step over a block of `length` bytes of 0x5a: the Buffer runPlan hands over, and the block's handle. */
  const readCopy = (block: Allocation): Buffer => {
    const { buffers } = binding.runPlan(words([OP.read, 0n, block.address, BigInt(block.requested)]), false);
    return buffers[0]!;
  };

  it('detaches the copy (every view of it reads as empty) and unmaps it; a second release, a foreign Buffer, a part of a copy and a non-Buffer are passed over', () => {
    const block = malloc(3 * 4096);
    try {
      block.fill(0x5a);
      const copy = readCopy(block);
      expect(copy.length).toBe(3 * 4096);
      expect(copy.every((b) => b === 0x5a)).toBe(true);
      const part = readCopy(block).subarray(16);
      const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
      const foreign = Buffer.alloc(64, 1);
      expect(binding.releaseCopies([copy, copy, foreign, part, 'not a buffer', 7, null])).toBe(1);
      expect([copy.length, copy.buffer.byteLength]).toEqual([0, 0]);
      expect(() => view.getUint8(0)).toThrow(TypeError);
      expect(foreign.every((b) => b === 1)).toBe(true);
      expect(part.length).toBe(3 * 4096 - 16);
      expect(part.every((b) => b === 0x5a)).toBe(true);
      expect(binding.releaseCopies([copy])).toBe(0);
    } finally {
      block.free();
    }
  });

  it('past the registry\'s room (3,072 copies at once), a copy is not given back early, and stays whole until Node frees it', () => {
    const block = malloc(64);
    try {
      block.fill(0xa5);
      const steps = Array.from({ length: 3500 }, () => [OP.read, 0n, block.address, 64n]);
      const { buffers } = binding.runPlan(words(...steps), false);
      const copies = buffers.filter((b): b is Buffer => b !== undefined);
      expect(copies).toHaveLength(3500);
      const released = binding.releaseCopies(copies);
      expect(released).toBeGreaterThan(0);
      expect(released).toBeLessThan(3500);
      const kept = copies.filter((b) => b.length > 0);
      expect(kept).toHaveLength(3500 - released);
      for (const b of kept) expect(b.length === 64 && b.every((x) => x === 0xa5)).toBe(true);
    } finally {
      block.free();
    }
  });

  it('refuses anything but an array with a coded error', () => {
    for (const bad of [undefined, null, 'x', 7, {}]) {
      expect(() => binding.releaseCopies(bad as unknown as unknown[])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
  });
});
