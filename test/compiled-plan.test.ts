// compilePlan(): a plan checked once, run many times without being checked
// again; what runs is what was checked, however its steps change after.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CompiledPlan, compilePlan, liveAllocations, malloc, PlanStep, runPlan } from '../lib/index';

const ITEM = (size: number, at: number): PlanStep[] => [
  { op: 'malloc', size }, { op: 'header', step: at }, { op: 'usableSize', step: at }, { op: 'free', step: at },
];

describe('compilePlan', () => {
  it('runs as the steps run, again and again, each run its own allocations', () => {
    const steps = [...ITEM(100, 0), ...ITEM(5000, 4)];
    const plan = compilePlan(steps);
    expect(plan.length).toBe(8);
    const direct = runPlan(steps).steps;
    for (let run = 0; run < 3; run++) {
      const got = runPlan(plan).steps;
      expect(got.map((s) => [s.index, s.op, s.status])).toEqual(direct.map((s) => [s.index, s.op, s.status]));
      for (const [at, request] of [[0, 100], [4, 5000]]) {
        expect(got[at].address! > 0n).toBe(true);
        expect(got[at + 1].header!.address).toBe(got[at].address! - 16n);
        // The chunk glibc gave the request: its size rounded up (request + 8, to 16), or a free chunk up to 31 bytes
        // bigger, which it hands out whole rather than leave a remainder under MINSIZE (another thread of this
        // process frees into the same arena: a run gave malloc(100) a chunk of 128 where the plan run beside it got 112).
        const least = (request + 8 + 15) & ~15;
        const size = got[at + 1].header!.size;
        expect(size >= least && size < least + 32, `${size} for ${request}`).toBe(true);
        expect(got[at + 2].usableSize).toBe(size - 8);
      }
    }
  });

  it('runs what was checked, whatever its steps become afterwards', () => {
    const steps: PlanStep[] = [...ITEM(100, 0)];
    const plan = compilePlan(steps);
    // A plan that would free what it never allocated, were it read now.
    (steps[0] as { op: string }).op = 'break';
    steps.push({ op: 'free', step: 0 });
    (steps[1] as { step: number }).step = 7;
    const got = runPlan(plan).steps;
    expect(got.map((s) => s.op)).toEqual(['malloc', 'header', 'usableSize', 'free']);
    expect(got[1].header!.size).toBe(112);
  });

  it('runs as compiled whatever runs between its runs: another compiled plan of as many steps, its own steps, other plans', () => {
    // The addon keeps the last compiled plan it ran, checked, and runs it again unchecked (native/plan.cc):
    // each run here must still be the plan it names.
    const a = compilePlan(ITEM(100, 0));
    const b = compilePlan(ITEM(5000, 0));
    const between = [() => undefined, () => runPlan(b), () => runPlan(ITEM(5000, 0)), () => runPlan([{ op: 'break' }]), () => malloc(5000).free()];
    const sizes = (plan: CompiledPlan) => runPlan(plan).steps[1].header!.size;
    for (let k = 0; k < 3; k++) {
      for (const run of between) {
        expect(sizes(a)).toBeLessThan(160);
        run();
        expect(sizes(a)).toBeLessThan(160);
        expect(sizes(b)).toBeGreaterThanOrEqual(5008);
        run();
        expect(sizes(b)).toBeGreaterThanOrEqual(5008);
      }
    }
  });

  it('refuses a bad plan when compiling, with the errors runPlan gives', () => {
    const bad: unknown[] = [
      [{ op: 'free', step: 0 }],
      [{ op: 'malloc', size: -1 }],
      [{ op: 'nope' }],
      [],
      'steps',
    ];
    for (const steps of bad) {
      let fromRun: unknown;
      try {
        runPlan(steps as PlanStep[]);
      } catch (error) {
        fromRun = error;
      }
      expect(fromRun).toBeInstanceOf(Error);
      expect(() => compilePlan(steps as PlanStep[])).toThrow(expect.objectContaining({
        name: (fromRun as Error).name, code: (fromRun as { code: string }).code, message: (fromRun as Error).message,
      }));
    }
  });

  it('keeps what a compiled plan leaves live, as a plan of steps does', () => {
    const plan = compilePlan([{ op: 'malloc', size: 64 }, { op: 'malloc', size: 64 }, { op: 'free', step: 0 }]);
    const { kept } = runPlan(plan, { keep: true });
    expect([...kept.keys()]).toEqual([1]);
    const block = kept.get(1)!;
    expect(liveAllocations()).toContain(block);
    block.free();
    expect(runPlan(plan).kept.size).toBe(0);
  });

  it('runs a plan longer than the records kept between plans (8,192 steps), and one run from inside another plan\'s check', () => {
    const long = compilePlan(Array.from({ length: 2_100 }, (_, k) => ITEM(32 + (k % 4) * 16, 4 * k)).flat());
    expect(long.length).toBe(8_400);
    for (let run = 0; run < 2; run++) {
      const got = runPlan(long).steps;
      expect(got.every((s) => s.status === 'ok')).toBe(true);
      for (let k = 0; k < 2_100; k++) expect(got[4 * k + 1].header!.size).toBe(48 + (k % 4) * 16);
    }
    // A step whose getter runs a compiled plan and a plan of steps while the outer plan is being checked
    // into the kept arrays: neither may write there.
    const inner = compilePlan(ITEM(200, 0));
    let innerSteps: ReturnType<typeof runPlan>['steps'][] = [];
    const outer = runPlan([
      { op: 'malloc', size: 100 },
      { get op() { innerSteps = [runPlan(inner).steps, runPlan(ITEM(300, 0)).steps]; return 'header'; }, step: 0 } as PlanStep,
    ]).steps;
    expect(innerSteps.map((steps) => steps.map((s) => s.status))).toEqual([['ok', 'ok', 'ok', 'ok'], ['ok', 'ok', 'ok', 'ok']]);
    expect(innerSteps.map((steps) => steps[1].header!.size)).toEqual([208, 320]);
    expect(outer[1].header!.size).toBe(112);
    expect(outer[1].header!.address).toBe(outer[0].address! - 16n);
  });

  it('runs read, maps, mallinfo and break steps afresh at each run, each run with bytes of its own', () => {
    const block = malloc(64);
    try {
      const plan = compilePlan([{ op: 'read', address: block.address, length: 64 }, { op: 'maps' }, { op: 'mallinfo' }, { op: 'break' }]);
      block.fill(0x5a);
      const first = runPlan(plan).steps;
      block.fill(0x33);
      const second = runPlan(plan).steps;
      expect([...first[0].bytes!]).toEqual(Array(64).fill(0x5a));
      expect([...second[0].bytes!]).toEqual(Array(64).fill(0x33));
      for (const steps of [first, second]) {
        expect(steps.map((s) => s.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
        expect(steps[1].maps).toMatch(/\[heap\]/);
        expect(steps[2].mallinfo!.uordblks).toBeGreaterThan(0);
        expect(steps[3].programBreak! > 0n).toBe(true);
      }
    } finally {
      block.free();
    }
  });

  it('cannot be made or forged but by compilePlan: a forged one, or a Proxy of a real one, is not run', () => {
    const real = compilePlan(ITEM(32, 0));
    const Ctor = CompiledPlan as unknown as new (...args: unknown[]) => CompiledPlan;
    expect(() => new Ctor([], Symbol('compilePlan'))).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_ILLEGAL_CONSTRUCTOR' }));
    for (const forged of [Object.create(CompiledPlan.prototype), new Proxy(real, {}), { length: 4 }]) {
      expect(() => runPlan(forged)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    }
    expect(inspect(real)).toBe('CompiledPlan { 4 steps }');
    // Asked of a forged one, the plan's own getter is a coded error, and inspect says what it is.
    const forged = Object.create(CompiledPlan.prototype) as CompiledPlan;
    expect(() => forged.length).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    expect(inspect(forged)).toBe('CompiledPlan <not made by compilePlan>');
  });
});
