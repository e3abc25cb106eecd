// A plan's results are decoded from its records when `steps` is first read.
// The records of a plan of up to 8,192 steps are written into one buffer
// kept between plans and copied out right after the plan: these
// tests read results in every order against plans run in between, over
// records of every length, and words no number holds exactly.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PlanStep, runPlan, StepResult } from '../lib/index';
import { SYNC_CHILD } from './helpers/sync-child';

const ROOT = path.join(__dirname, '..');

// One step of every op but freeze and thaw, whose records take 1 to 12
// words, and a failed and a skipped step: a record read at the wrong
// place shows in the next step's op or status.
function everyOp(size: number): PlanStep[] {
  return [
    { op: 'malloc', size },
    { op: 'header', step: 0 },
    { op: 'usableSize', step: 0 },
    { op: 'mallinfo' },
    { op: 'calloc', count: 2, size },
    { op: 'touch', step: 4 },
    { op: 'resident', step: 4 },
    { op: 'statm' },
    { op: 'realloc', step: 0, size: size * 2 },
    { op: 'alignedAlloc', alignment: 64, size },
    { op: 'break' },
    { op: 'malloc', size: 2n ** 62n },
    { op: 'usableSize', step: 11 },
    { op: 'trim', pad: 1n << 40n },
    { op: 'free', step: 8 },
    { op: 'free', step: 4 },
    { op: 'free', step: 9 },
  ];
}

/** What does not change from run to run of everyOp(100): no address, no count of the process's pages, no size a free chunk may round up. */
function stable(results: readonly StepResult[]): unknown[] {
  return results.map((r) => ({
    index: r.index,
    op: r.op,
    status: r.status,
    errno: r.errno,
    // everyOp(100)'s block: glibc may hand out a chunk up to 31 bytes bigger than asked, which it did not split.
    usableSize: r.usableSize === undefined ? undefined : r.usableSize >= 100 && r.usableSize < 132,
    headerSize: r.header === undefined ? undefined : r.header.size >= 112 && r.header.size < 144,
    allocated: r.address === undefined ? undefined : r.address !== 0n,
    aligned: r.op === 'alignedAlloc' ? r.address! % 64n : undefined,
    mallinfo: r.mallinfo === undefined ? undefined : r.mallinfo.source,
    pages: r.totalPages === undefined ? undefined : r.totalPages >= 1 && r.residentPages! <= r.totalPages,
    counted: r.rssPages === undefined ? undefined : r.rssPages > 0 && r.sizePages! >= r.rssPages,
    released: typeof r.released,
  }));
}

describe('plan results decoded when read', () => {
  it('decodes every op from its own record, read at once or after other plans ran', () => {
    const read = stable(runPlan(everyOp(100)).steps);
    expect(read.map((r) => (r as StepResult).status)).toEqual([
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'failed', 'skipped', 'ok', 'ok', 'ok', 'ok',
    ]);
    const first = runPlan(everyOp(100));
    const second = runPlan(everyOp(100));
    const third = runPlan(everyOp(100));
    // In every order, with plans in between.
    expect(stable(third.steps)).toEqual(read);
    for (let i = 0; i < 50; i++) runPlan(everyOp(1000)).steps;
    expect(stable(first.steps)).toEqual(read);
    expect(stable(second.steps)).toEqual(read);
  });

  it('decodes many plans read after they all ran, and one too big for the kept buffer', () => {
    const holder = runPlan([{ op: 'malloc', size: 24 }, { op: 'free', step: 0 }]);
    // Records of 9,000 words a plan, all written into the one kept buffer.
    const items = (size: number): PlanStep[] => Array.from({ length: 1000 }, (_, i) => [
      { op: 'malloc', size } as const, { op: 'header', step: 4 * i } as const, { op: 'usableSize', step: 4 * i } as const, { op: 'free', step: 4 * i } as const,
    ]).flat();
    const held = Array.from({ length: 24 }, (_, k) => runPlan(items(24 + 16 * k)));
    // And one too big for the kept buffer: its records are mapped for it.
    const big = runPlan(Array.from({ length: 17000 }, () => ({ op: 'break' as const })));
    held.forEach((result, k) => {
      const asked = 24 + 16 * k;
      const { steps } = result;
      expect(steps.every((r, i) => r.index === i && r.status === 'ok')).toBe(true);
      for (let i = 0; i < steps.length; i += 4) {
        // Each item's own three records agree; a chunk bigger than asked is one glibc did not split (less than 32 bytes over).
        const [made, header, usable] = [steps[i], steps[i + 1], steps[i + 2]];
        expect(header.header!.address, `plan ${k}, step ${i}`).toBe(made.address! - 16n);
        expect(header.header!.size).toBe(usable.usableSize! + 8);
        expect(usable.usableSize).toBeGreaterThanOrEqual(asked);
        expect(usable.usableSize).toBeLessThan(asked + 32);
      }
    });
    expect(big.steps.every((r, i) => r.index === i && r.op === 'break' && r.programBreak! > 0n)).toBe(true);
    expect(holder.steps.map((r) => r.op)).toEqual(['malloc', 'free']);
  });

  it("decodes records that straddle the copy's parts of 8,192 words", () => {
    // A prefix of 3 to 11 words (a malloc, 0 to 8 one-word touches, a free),
    // then items of 9 words: across the nine prefixes some record of every
    // item's four starts each word of a part's end, one crossing into the next part.
    for (let touches = 0; touches <= 8; touches++) {
      const prefix: PlanStep[] = [{ op: 'malloc', size: 40 }, ...Array.from({ length: touches }, () => ({ op: 'touch', step: 0 }) as const), { op: 'free', step: 0 }];
      const first = prefix.length;
      const items = Array.from({ length: 1000 }, (_, i) => {
        const at = first + 4 * i;
        return [{ op: 'malloc', size: 24 + (i % 7) * 8 } as const, { op: 'header', step: at } as const, { op: 'usableSize', step: at } as const, { op: 'free', step: at } as const];
      }).flat();
      const { steps } = runPlan([...prefix, ...items]);
      expect(steps.map((r) => r.op).slice(0, first)).toEqual(prefix.map((p) => p.op));
      expect(steps.every((r, i) => r.index === i && r.status === 'ok')).toBe(true);
      for (let i = first; i < steps.length; i += 4) {
        const [made, header, usable, freed] = [steps[i], steps[i + 1], steps[i + 2], steps[i + 3]];
        expect([made.op, header.op, usable.op, freed.op], `touches ${touches}, step ${i}`).toEqual(['malloc', 'header', 'usableSize', 'free']);
        expect(header.header!.address, `touches ${touches}, step ${i}`).toBe(made.address! - 16n);
        expect(header.header!.size).toBe(usable.usableSize! + 8);
        expect(usable.usableSize).toBeGreaterThanOrEqual(24 + ((i - first) / 4 % 7) * 8);
      }
    }
  });

  // 0xfe.. is a word above 2^53; 0xff.. is a quiet NaN's bits.
  it.each([0xfe, 0xff])('keeps a word no number holds exactly (a prev_size of byte %i, written by the block before) exact', (byte) => {
    // Blocks of 60,000 bytes, each written whole: where one lies right after
    // another, the other's last 8 usable bytes are its prev_size, unused
    // while the block before is in use. Six blocks a plan, for some such pair.
    const N = 6;
    const word = BigInt(`0x${byte.toString(16).repeat(8)}`);
    const steps: PlanStep[] = [
      ...Array.from({ length: N }, () => ({ op: 'malloc', size: 60000 }) as const),
      ...Array.from({ length: N }, (_, i) => ({ op: 'touch', step: i, byte }) as const),
      ...Array.from({ length: N }, (_, i) => ({ op: 'header', step: i }) as const),
      ...Array.from({ length: N }, (_, i) => ({ op: 'free', step: i }) as const),
    ];
    let adjacent = 0;
    for (let round = 0; round < 3; round++) {
      const headers = runPlan(steps).steps.slice(2 * N, 3 * N).map((r) => r.header!);
      for (const first of headers) {
        const second = headers.find((h) => h.address === first.address + BigInt(first.size));
        if (second === undefined) continue;
        adjacent++;
        expect(second.prevSize).toBe(word);
        expect(second.rawSize & ~7n).toBe(BigInt(second.size));
        expect(second.prevInUse).toBe(true);
      }
    }
    expect(adjacent).toBeGreaterThan(0);
  });

  it("keeps a signalling NaN's bits (a prev_size written through a handle) exact", () => {
    // A signalling NaN's bits: a word V8 changes (quiets) when it is stored
    // as a double. Written at the end of a block p, the pattern is the
    // prev_size of the chunk right after p's, q's. q's chunk, freed alone, is
    // what the plan's malloc of the same size takes back, when no other free
    // chunk fitted better.
    const pattern = 0x7ff0000000000001n;
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(pattern);
    let hits = 0;
    for (let round = 0; round < 10 && hits === 0; round++) {
      const { kept } = runPlan(Array.from({ length: 12 }, () => ({ op: 'malloc', size: 60000 }) as const), { keep: true });
      const blocks = [...kept.values()];
      const p = blocks.find((b) => blocks.some((c) => c.address === b.address + BigInt(b.chunk.size)));
      const q = p && blocks.find((c) => c.address === p.address + BigInt(p.chunk.size));
      let alloc: StepResult | undefined;
      let header: StepResult | undefined;
      if (p !== undefined && q !== undefined) {
        p.write(p.usableSize - 8, bytes);
        q.free();
        [alloc, header] = runPlan([{ op: 'malloc', size: 60000 }, { op: 'header', step: 0 }, { op: 'free', step: 0 }]).steps;
      }
      for (const block of blocks) if (!block.freed) block.free();
      if (q === undefined || alloc!.address !== q.address) continue;
      hits++;
      expect(header!.header!.prevSize).toBe(pattern);
    }
    expect(hits).toBeGreaterThan(0);
  });

  it('keeps what a result decoded, whatever the plans after it write', () => {
    const result = runPlan(everyOp(100));
    const steps = result.steps;
    const copy = structuredClone(steps);
    for (let i = 0; i < 20; i++) {
      runPlan(everyOp(5000));
      runPlan(everyOp(24)).steps;
    }
    expect(result.steps).toBe(steps);
    expect(steps).toEqual(copy);
  });

  // In a process of its own: the resident set of this one moves with the other tests.
  it('holds no memory of its own for a result left unread, in a loop that never yields', () => {
    const child = spawnSync(process.execPath, ['-e', `
      const { runPlan } = require(${JSON.stringify(path.join(ROOT, 'dist', 'plan.js'))});
      const before = process.memoryUsage.rss();
      for (let i = 0; i < 20000; i++) runPlan([{ op: 'malloc', size: 24 }, { op: 'free', step: 0 }]);
      console.log(JSON.stringify({ grew: process.memoryUsage.rss() - before }));
    `], { ...SYNC_CHILD, encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    // 6 MiB here; 89 MiB when each unread result held a mapping until Node ran its finalizer.
    expect(JSON.parse(child.stdout).grew).toBeLessThan(32 * 2 ** 20);
  });

  it('shows its steps to inspect, JSON, spreads and structuredClone', () => {
    const result = runPlan([{ op: 'malloc', size: 24 }, { op: 'usableSize', step: 0 }, { op: 'free', step: 0 }]);
    expect(inspect(result)).toMatch(/^\{\n? *steps: \[/);
    expect(inspect(result)).toContain("op: 'usableSize'");
    expect(Object.keys(result)).toEqual(['steps', 'kept']);
    expect({ ...result }.steps).toBe(result.steps);
    expect(JSON.parse(JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? String(v) : v))).steps[1].usableSize).toBe(24);
    expect(structuredClone(result).steps).toEqual(result.steps);
    expect(result).toEqual({ steps: result.steps, kept: new Map() });
  });

  it('refuses its steps getter called on anything runPlan did not return, with a TypeError', () => {
    const result = runPlan([{ op: 'break' }]);
    const getter = Object.getOwnPropertyDescriptor(result, 'steps')!.get!;
    for (const other of [{}, null, 1, Object.create(result)]) {
      expect(() => getter.call(other)).toThrow(TypeError);
    }
    expect(getter.call(result)).toBe(result.steps);
  });
});
