// The plan's `read` step: bytes copied inside the native call, through the safe path.
import { describe, expect, it } from 'vitest';
import { malloc, maps, runPlan } from '../../lib/index';

describe("runPlan's read step", () => {
  it("copies an allocation's header and bytes as they are", () => {
    using a = malloc(64);
    a.fill(0x5a);
    const { steps } = runPlan([
      { op: 'read', address: a.address - 16n, length: 16 },
      { op: 'read', address: a.address, length: 64 },
    ]);
    expect(steps.map((s) => s.status)).toEqual(['ok', 'ok']);
    // The P bit is the chunk before's state, which a free by another thread
    // can change between the plan and a.chunk; the size and the M and A bits are this chunk's.
    expect(steps[0].bytes!.readBigUInt64LE(8) & ~1n).toBe(a.chunk.rawSize & ~1n);
    expect(steps[1].bytes!.equals(Buffer.alloc(64, 0x5a))).toBe(true);
  });

  it('a read of an unmapped address fails with EFAULT, and the plan goes on', () => {
    const { steps } = runPlan([{ op: 'read', address: 8n, length: 8 }, { op: 'break' }]);
    expect(steps[0]).toMatchObject({ status: 'failed', errno: 14 });
    expect(steps[0].bytes).toBeUndefined();
    expect(steps[1].status).toBe('ok');
  });

  it('refuses reads above 4 GiB and non-bigint addresses before anything runs', () => {
    expect(() => runPlan([{ op: 'read', address: 0x1000n, length: 2 ** 32 + 1 }])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => runPlan([{ op: 'read', address: 4096 as unknown as bigint, length: 8 }])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('toBreak: the copy stops at the break as it is when the step runs, after the plan grew the heap', () => {
    const heap = maps().find((r) => r.kind === 'heap')!;
    const room = 64n << 20n;
    // 4 MiB in blocks below the mmap threshold: more than top holds, so the break moves inside the plan.
    const grow = Array.from({ length: 40 }, () => ({ op: 'malloc' as const, size: 100_000 }));
    const { steps } = runPlan([
      ...grow,
      { op: 'break' },
      { op: 'read', address: heap.start, length: heap.end - heap.start + room, toBreak: true },
      { op: 'read', address: heap.start + (2n << 32n), length: 4096, toBreak: true },
      { op: 'break' },
    ]);
    const [brk, whole, above, after] = steps.slice(grow.length);
    expect(after.programBreak).toBe(brk.programBreak);
    expect(whole.status).toBe('ok');
    expect(BigInt(whole.bytes!.length)).toBe(brk.programBreak! - heap.start);
    expect(whole.bytes!.length).toBeGreaterThan(Number(heap.end - heap.start));
    // Above the break nothing is copied, and nothing fails.
    expect(above).toMatchObject({ status: 'ok' });
    expect(above.bytes!.length).toBe(0);
    expect(() => runPlan([{ op: 'read', address: heap.start, length: 8, toBreak: 1 as unknown as boolean }]))
      .toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: 'step 0.toBreak must be a boolean, got number' }));
  });

  it("lengthAt: the copy stops where the word at address + lengthAt says, as it is when the step runs (a frozen child's), length being the most", () => {
    using a = malloc(4096);
    const word = (n: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(n);
      a.write(24, b);
    };
    word(100n);
    const read = (length: number, lengthAt = 24, atLeast?: number) => ({ op: 'read' as const, address: a.address, length, lengthAt, ...(atLeast === undefined ? {} : { atLeast }) });
    const { steps } = runPlan([read(4000), read(50), read(4000, 24, 300), { op: 'freeze' }, read(4000), { op: 'thaw' }, read(4000, 0)]);
    // 100 bytes, the word's; the step's own 50 when it is less; its atLeast, 300, when the word says less; the same from the frozen child.
    expect(steps.map((s) => s.bytes?.length)).toEqual([100, 50, 300, undefined, 100, undefined, expect.any(Number)]);
    expect(steps[0].bytes!.equals(a.read(0, 100))).toBe(true);
    // A word past the length copies the length.
    word(1n << 60n);
    expect(runPlan([read(4000)]).steps[0].bytes!.length).toBe(4000);
    // An unmapped word fails as the read would.
    expect(runPlan([{ op: 'read', address: 0x1000n, length: 8, lengthAt: 16 }]).steps[0]).toMatchObject({ status: 'failed', errno: 14 });
    const refused = (lengthAt: unknown, more = {}) => {
      try {
        runPlan([{ op: 'read', address: a.address, length: 8, lengthAt: lengthAt as number, ...more }]);
        return undefined;
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    expect([refused(12), refused(4096), refused(-8), refused('8'), refused(8, { toBreak: true }), refused(8, { atLeast: 9 }), refused(undefined, { atLeast: 8 })])
      .toEqual(['ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_PLAN', 'ERR_OUT_OF_RANGE', 'ERR_INVALID_PLAN']);
  });

  it("an anonymous read's untouchedPages counts its own pages, whatever the plan before left in the records", () => {
    // Mmapped on its own (above the threshold): nothing but its header page was ever written.
    using a = malloc(1 << 20);
    const plan = [{ op: 'read' as const, address: a.address, length: 1 << 20, anonymous: true }];
    const first = runPlan(plan).steps[0].untouchedPages!;
    const again = runPlan(plan).steps[0].untouchedPages!;
    expect(first).toBeGreaterThan(200);
    expect(first).toBeLessThanOrEqual(256);
    expect(again).toBe(first);
  });
});
