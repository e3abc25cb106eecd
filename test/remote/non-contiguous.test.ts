// attach(pid) to a program whose break cannot grow (test/fixtures/
// attach-blocked.c): glibc grows its main_arena with mmap, so the top lies
// in memory no map line names as heap. The copy that misses it is torn (its
// top cannot be read) and is retaken with the region holding the top; the
// top it decodes is the program's own mallinfo2() keepcost.
import { ChildProcess, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach } from '../../lib/index';
import { startLines } from '../helpers/target';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-blocked-'));
const program = path.join(dir, 'attach-blocked');
let noCompiler: string | undefined;
const children: ChildProcess[] = [];

beforeAll(() => {
  const cc = spawnSync('cc', ['-O1', '-o', program, path.join(__dirname, '..', 'fixtures', 'attach-blocked.c')], { encoding: 'utf8' });
  if (cc.error !== undefined) noCompiler = 'no C compiler (cc) to build test/fixtures/attach-blocked.c';
  else if (cc.status !== 0) throw new Error(`cc failed:\n${cc.stderr}`);
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

async function started(): Promise<{ pid: number; mallinfo: Record<string, number> }> {
  const { lines } = await startLines(program, [], 2, { into: children });
  return { pid: Number(lines[0]), mallinfo: JSON.parse(lines[1]) as Record<string, number> };
}

describe('attach(pid) to a process whose main_arena is not contiguous', () => {
  it('copies the region holding the top on a retake, and decodes the top the program itself reports', async ({ skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    const { pid, mallinfo } = await started();
    const target = attach(pid);
    expect(target.maps().some((r) => r.kind === 'heap')).toBe(false);
    const s = target.snapshot();
    expect(s.consistent).toBe(true);
    // The first copy could not read the top.
    expect(s.attempts).toBeGreaterThanOrEqual(2);
    const main = target.arenas(s).arenas.find((a) => a.kind === 'main')!;
    expect(main.noncontiguous).toBe(true);
    expect(Number(main.top.size)).toBe(mallinfo.keepcost);
    expect(s.image.memory.ranges.map((r) => r.label)).toContain("main_arena's top");
  });
});
