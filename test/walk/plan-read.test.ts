// The plan's `read` step: bytes copied inside the native call, through the safe path.
import { describe, expect, it } from 'vitest';
import { malloc, runPlan } from '../../lib/index';

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
});
