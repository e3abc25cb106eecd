import { describe, expect, it } from 'vitest';
import { binding } from '../lib/binding';
import { liveAllocations, malloc, mallinfo2, PlanStep, requestToChunkSize, runPlan } from '../lib/index';
import { parseMaps } from '../lib/maps';
import { tcacheFill } from './helpers/tcache-fill';

describe('runPlan', () => {
  it('mallinfo2().uordblks grows by exactly the chunk size of a fresh allocation', () => {
    // 2000 bytes is above the tcache range, so the chunk is not already
    // counted as in use the way a tcache chunk would be.
    const { steps } = runPlan([
      { op: 'mallinfo' },
      { op: 'malloc', size: 2000 },
      { op: 'mallinfo' },
      { op: 'header', step: 1 },
      { op: 'free', step: 1 },
    ]);
    const delta = steps[2].mallinfo!.uordblks - steps[0].mallinfo!.uordblks;
    expect(delta).toBe(steps[3].header!.size);
    expect(steps[3].header!.size).toBeGreaterThanOrEqual(2016);
  });

  it('gives back the same address to a same-size malloc after a free (tcache is LIFO)', () => {
    // A chunk of exactly the size freed first leaves its tcache bin at least
    // one: the next malloc is taken from the bin, and its free fits back.
    // (Mallocs that drain the bin instead can leave it refilled, full, from a
    // fastbin of the size, and the freed chunk goes to the fastbin.)
    const { steps } = runPlan([
      ...tcacheFill(0, 40),
      { op: 'malloc', size: 40 },
      { op: 'header', step: 3 },
      { op: 'free', step: 3 },
      { op: 'malloc', size: 40 },
    ]);
    expect(steps[4].header!.size).toBe(requestToChunkSize(40));
    expect(steps[6].address).toBe(steps[3].address);
  });

  it('a mallinfo step names the call that answered, as mallinfo2() does', () => {
    const { steps } = runPlan([{ op: 'mallinfo' }]);
    expect(steps[0].mallinfo!.source).toBe(mallinfo2().source);
  });

  it('reads the break, usable size, header and the maps inside one call', () => {
    const { steps } = runPlan([
      { op: 'break' },
      { op: 'malloc', size: 10 },
      { op: 'usableSize', step: 1 },
      { op: 'header', step: 1 },
      { op: 'maps' },
      { op: 'statm' },
    ]);
    expect(steps.every((s) => s.status === 'ok')).toBe(true);
    // 32 by the rule; 48 when malloc handed out a remainder under MINSIZE with it.
    expect([32, 48]).toContain(steps[3].header!.size);
    expect(steps[2].usableSize).toBe(steps[3].header!.size - 8);
    const heap = parseMaps(steps[4].maps!).find((r) => r.kind === 'heap')!;
    expect(heap.end).toBe(steps[0].programBreak);
    expect(steps[5].rssPages).toBeGreaterThan(0);
  });

  it('counts resident pages: untouched mmapped memory is not resident until written', () => {
    const { steps } = runPlan([
      { op: 'malloc', size: 4 << 20 },
      { op: 'resident', step: 0 },
      { op: 'touch', step: 0 },
      { op: 'resident', step: 0 },
    ]);
    expect(steps[1].totalPages).toBeGreaterThanOrEqual(1024);
    // The first page holds the chunk header glibc wrote; the rest is untouched.
    expect(steps[1].residentPages).toBeLessThanOrEqual(2);
    expect(steps[3].residentPages).toBe(steps[3].totalPages);
  });

  it('counts a range\'s resident pages from pagemap: every written page, the header page alone of an untouched block, none unmapped', () => {
    // 40 MiB: above the most glibc raises the mmap threshold to (32 MiB), so each block is a mapping of its own, whatever freed before.
    const { steps: made, kept } = runPlan([{ op: 'malloc', size: 40 << 20 }, { op: 'malloc', size: 40 << 20 }, { op: 'touch', step: 0 }], { keep: true });
    try {
      const [written, untouched] = made.map((s) => s.address!);
      const { steps } = runPlan([
        { op: 'pagemap', address: written, length: 40 << 20 },
        { op: 'pagemap', address: untouched, length: 40 << 20 },
        // Page 0, below vm.mmap_min_addr: never mapped.
        { op: 'pagemap', address: 0n, length: 4096 },
        { op: 'pagemap', address: written, length: 0 },
        { op: 'pagemap', address: 1n << 63n, length: 4096 },
        { op: 'pagemap', address: (1n << 64n) - 4096n, length: 8192 },
      ]);
      // Each block starts 16 bytes into a page: its 40 MiB touch 10,241 pages.
      expect(steps.slice(0, 4).map((s) => [s.status, s.residentPages, s.totalPages])).toEqual([
        ['ok', 10241, 10241], ['ok', 1, 10241], ['ok', 0, 1], ['ok', 0, 0],
      ]);
      // Past user space pagemap has no entries (EIO); a range past 2^64 wraps (EFAULT, as a read's).
      expect(steps.slice(4).map((s) => [s.status, s.errno])).toEqual([['failed', 5], ['failed', 14]]);
    } finally {
      for (const a of kept.values()) a.free();
    }
    expect(() => runPlan([{ op: 'pagemap', address: 4096, length: 1 } as never])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => runPlan([{ op: 'pagemap', address: 0n } as never])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => runPlan([{ op: 'pagemap', address: 0n, length: -1 }])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => runPlan([{ op: 'pagemap', address: 0n, length: (1n << 47n) + 1n }])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('frees what is left at the end, or keeps it as Allocations', () => {
    const before = liveAllocations().length;
    runPlan([{ op: 'malloc', size: 10 }]);
    expect(liveAllocations().length).toBe(before);
    const { kept } = runPlan([{ op: 'malloc', size: 10 }, { op: 'calloc', count: 2, size: 8 }], { keep: true });
    expect(kept.size).toBe(2);
    expect(kept.get(1)!.requested).toBe(16);
    for (const a of kept.values()) a.free();
    expect(liveAllocations().length).toBe(before);
  });

  it('records a failed allocation and skips the steps that depend on it', () => {
    const { steps } = runPlan([
      { op: 'malloc', size: 1n << 40n },
      { op: 'header', step: 0 },
      { op: 'free', step: 0 },
    ]);
    expect(steps[0].status).toBe('failed');
    expect(steps[0].errno).toBe(12);
    expect(steps[0].address).toBe(0n);
    expect(steps[1].status).toBe('skipped');
    expect(steps[2].status).toBe('skipped');
  });

  it('a plan run from a step\'s getter, while another is checked, leaves that one\'s words alone', () => {
    const inner: PlanStep[] = [{ op: 'break' }, { op: 'break' }, { op: 'break' }];
    let innerBreaks = 0;
    const { steps } = runPlan([
      { op: 'malloc', size: 64 },
      {
        get op() {
          innerBreaks = runPlan(inner).steps.filter((s) => s.programBreak! > 0n).length;
          return 'usableSize';
        },
        step: 0,
      } as unknown as PlanStep,
    ]);
    expect(innerBreaks).toBe(3);
    expect(steps.map((s) => [s.op, s.status])).toEqual([['malloc', 'ok'], ['usableSize', 'ok']]);
    expect(steps[1].usableSize).toBeGreaterThanOrEqual(64);
  });

  it('a plan after a longer or failing one sees none of its words or records', () => {
    // Plans share warm arrays: each must read only what it wrote.
    runPlan([
      { op: 'malloc', size: 1n << 40n }, { op: 'header', step: 0 }, { op: 'touch', step: 0, byte: 7 },
      { op: 'free', step: 0 }, { op: 'read', address: 8n, length: 8 }, { op: 'mallinfo' },
    ]);
    const { steps } = runPlan([{ op: 'malloc', size: 48 }, { op: 'header', step: 0 }, { op: 'free', step: 0 }]);
    expect(steps.map((s) => [s.status, s.errno])).toEqual([['ok', undefined], ['ok', undefined], ['ok', undefined]]);
    expect(steps[0].address).not.toBe(0n);
    expect(steps[1].header!.size).toBe(64);
    // A bigger plan than the warm arrays hold gets its own, decoded alike.
    const big = runPlan(Array.from({ length: 9000 }, (_, i) => (i % 2 === 0 ? { op: 'malloc', size: 24 } : { op: 'usableSize', step: i - 1 })));
    expect(big.steps.length).toBe(9000);
    expect(big.steps.every((s, i) => s.status === 'ok' && (i % 2 === 0 ? s.address! > 0n : s.usableSize! >= 24))).toBe(true);
  });

  it('refuses a plan that would free twice or read freed memory, before running anything', () => {
    const invalid = { code: 'ERR_INVALID_PLAN' };
    expect(() => runPlan([{ op: 'malloc', size: 8 }, { op: 'free', step: 0 }, { op: 'free', step: 0 }]))
      .toThrow(expect.objectContaining(invalid));
    expect(() => runPlan([{ op: 'malloc', size: 8 }, { op: 'free', step: 0 }, { op: 'header', step: 0 }]))
      .toThrow(expect.objectContaining(invalid));
    expect(() => runPlan([{ op: 'free', step: 0 }])).toThrow(expect.objectContaining(invalid));
    expect(() => runPlan([{ op: 'break' }, { op: 'free', step: 0 }])).toThrow(expect.objectContaining(invalid));
    expect(() => runPlan([{ op: 'malloc', size: 8 }, { op: 'free', step: 5 }])).toThrow(expect.objectContaining(invalid));
    expect(() => runPlan([{ op: 'malloc', size: 8 }, { op: 'realloc', step: 0, size: 0 }]))
      .toThrow(expect.objectContaining(invalid));
    expect(() => runPlan([{ op: 'nope' } as never])).toThrow(TypeError);
    expect(() => runPlan([{ op: 'malloc', size: -1 }])).toThrow(RangeError);
    expect(() => runPlan([])).toThrow(RangeError);
  });

  it('knows each op by its name alone, however the string was made, and nothing else as an op', () => {
    // A string built at run time is not the literal the check compares with first.
    const made = (op: string) => [...op].join('');
    const { steps } = runPlan([
      { op: made('malloc'), size: 40 }, { op: made('header'), step: 0 }, { op: made('usableSize'), step: 0 },
      { op: made('calloc'), count: 2, size: 8 }, { op: made('realloc'), step: 3, size: 64 }, { op: made('alignedAlloc'), alignment: 64, size: 8 },
      { op: made('touch'), step: 0 }, { op: made('resident'), step: 0 }, { op: made('break') }, { op: made('mallinfo') },
      { op: made('statm') }, { op: made('maps') }, { op: made('trim'), pad: 1 << 20 },
      { op: made('freeze') }, { op: made('read'), address: 0n, length: 0 }, { op: made('thaw') }, { op: made('free'), step: 0 },
      { op: made('pagemap'), address: 0n, length: 0 },
    ] as PlanStep[]);
    expect(steps.map((s) => s.op)).toEqual(['malloc', 'header', 'usableSize', 'calloc', 'realloc', 'alignedAlloc', 'touch', 'resident',
      'break', 'mallinfo', 'statm', 'maps', 'trim', 'freeze', 'read', 'thaw', 'free', 'pagemap']);
    expect(steps.filter((s) => s.op !== 'freeze' && s.status !== 'ok')).toEqual([]);
    for (const op of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'Malloc', 'malloc ', '', new String('malloc'), 1, null]) {
      expect(() => runPlan([{ op, size: 8 } as never]), String(op)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
  });

  it('takes a step index as a number or a bigint, and decodes what it checked', () => {
    const { steps } = runPlan([{ op: 'malloc', size: 100 }, { op: 'header', step: 0n }, { op: 'usableSize', step: 0n }]);
    expect(steps[1].status).toBe('ok');
    expect(steps[1].header!.address).toBe(steps[0].address! - 16n);
    expect(steps[1].header!.size).toBe(112);
    expect(steps[2].usableSize).toBe(104);
  });

  it('keeps the blocks of a plan with bigint indices as handles: none is left in the addon without one', () => {
    const addon = binding.liveCount();
    const before = liveAllocations().length;
    const { kept } = runPlan([{ op: 'malloc', size: 100 }, { op: 'header', step: 0n }], { keep: true });
    expect(kept.size).toBe(1);
    expect(binding.liveCount()).toBe(addon + 1);
    kept.get(0)!.free();
    expect(binding.liveCount()).toBe(addon);
    expect(liveAllocations().length).toBe(before);
  });

  it('a refused plan leaves nothing live, kept or not', () => {
    const addon = binding.liveCount();
    for (const steps of [
      [{ op: 'malloc', size: 100 }, { op: 'free', step: 0 }, { op: 'free', step: 0 }],
      [{ op: 'malloc', size: 100 }, { op: 'header', step: 1n }],
      [{ op: 'malloc', size: 100 }, { op: 'header', step: -1n }],
      [{ op: 'malloc', size: 100 }, { op: 'header' }],
    ]) {
      expect(() => runPlan(steps as PlanStep[], { keep: true })).toThrow(expect.objectContaining({ code: expect.any(String) }));
    }
    expect(binding.liveCount()).toBe(addon);
  });

  it('a step that needs `step` and has none is ERR_INVALID_PLAN, never step 0', () => {
    const invalid = expect.objectContaining({ code: 'ERR_INVALID_PLAN', message: expect.stringMatching(/step 2: free needs `step`/) });
    expect(() => runPlan([{ op: 'malloc', size: 10 }, { op: 'malloc', size: 20 }, { op: 'free' } as never])).toThrow(invalid);
    for (const op of ['realloc', 'header', 'usableSize', 'touch', 'resident']) {
      const step = { op, size: 8, step: undefined };
      expect(() => runPlan([{ op: 'malloc', size: 10 }, step as never]), op)
        .toThrow(expect.objectContaining({ code: 'ERR_INVALID_PLAN' }));
    }
  });

  it('reads each field a step\'s op uses once, as an own property, and names one whose read throws', () => {
    const block = malloc(64);
    // The fields of each op (with the malloc before it, for those that act on a step), as they run.
    const cases: Record<string, unknown>[] = [
      { op: 'malloc', size: 8 }, { op: 'calloc', count: 2, size: 8 }, { op: 'alignedAlloc', alignment: 64, size: 8 },
      { op: 'realloc', step: 0, size: 100 }, { op: 'touch', step: 0, byte: 1 }, { op: 'trim', pad: 0 },
      { op: 'read', address: block.address, length: 8, anonymous: false, toBreak: false },
      { op: 'read', address: block.address, length: 8, lengthAt: 0, atLeast: 8 },
    ];
    try {
      for (const fields of cases) {
        const reads = new Map<string, number>();
        const counted = Object.defineProperties({}, Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, {
          get: () => { reads.set(key, (reads.get(key) ?? 0) + 1); return value; }, enumerable: true,
        }])));
        const { steps } = runPlan([{ op: 'malloc', size: 8 }, counted as PlanStep]);
        expect(steps[1].status, String(fields.op)).toBe('ok');
        expect(Object.fromEntries(reads), String(fields.op)).toEqual(Object.fromEntries(Object.keys(fields).map((key) => [key, 1])));
        for (const key of Object.keys(fields)) {
          const throwing = Object.defineProperty({ ...fields }, key, { get: () => { throw new Error('hostile'); } });
          expect(() => runPlan([{ op: 'malloc', size: 8 }, throwing as PlanStep]), key)
            .toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: `step 1.${key} could not be read: hostile` }));
        }
        // A field the op needs, inherited instead of own, is missing.
        const needed = Object.keys(fields).filter((key) => !['pad', 'byte', 'anonymous', 'toBreak', 'lengthAt', 'atLeast'].includes(key));
        for (const key of needed) {
          const { [key]: value, ...rest } = fields;
          const inherited = Object.assign(Object.create({ [key]: value }), rest);
          expect(() => runPlan([{ op: 'malloc', size: 8 }, inherited]), key).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_INVALID_(ARG_TYPE|PLAN)$/) }));
        }
      }
    } finally {
      block.free();
    }
  });

  it('refers only to earlier allocating steps, checked before the native call', () => {
    const invalid = expect.objectContaining({ code: 'ERR_INVALID_PLAN' });
    expect(() => runPlan([{ op: 'malloc', size: 8 }, { op: 'header', step: 1 }])).toThrow(invalid);
    expect(() => runPlan([{ op: 'break' }, { op: 'header', step: 0 }])).toThrow(invalid);
  });
});
