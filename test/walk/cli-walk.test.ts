// `heapscope walk` in a fresh process, and the walk's agreement with mallinfo2().
import { describe, expect, it } from 'vitest';
import { quietCli } from '../helpers/quiet-child';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Each command runs in a quiet child: no live heap of this process is read.
heapRoomNotNeeded();

// V8's helper threads would share that one arena too and could change it
// while the walk copies it (the walk then retries, and under load may give
// up), and a child whose break cannot grow walks a non-contiguous heap: the
// command runs in a quiet child (helpers/quiet-child.ts).
function heapscope(args: string[], env: Record<string, string> = {}) {
  const result = quietCli(args, { ...process.env, NO_COLOR: '', ...env });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

// With glibc.malloc.arena_max=1 every thread of the child shares main_arena.
const ONE_ARENA = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' };
const FIELDS = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'uordblks', 'fsmblks', 'fordblks', 'keepcost'];

interface Check { field: string; mallinfo: number; walk: number; difference: number; equal: boolean }

describe('heapscope walk', () => {
  it('--json: every field of mallinfo2() equals the walk\'s own total', () => {
    const { code, stdout, stderr } = heapscope(['walk', '--json'], ONE_ARENA);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const walk = JSON.parse(stdout) as { consistent: boolean; main: { complete: boolean; chunks: unknown[] }; checks: Check[]; problems: string[] };
    expect(walk.consistent).toBe(true);
    expect(walk.main.complete).toBe(true);
    expect(walk.problems).toEqual([]);
    expect(walk.checks.map((c) => c.field)).toEqual(FIELDS);
    for (const c of walk.checks) expect({ field: c.field, walk: c.walk, difference: c.difference }).toEqual({ field: c.field, walk: c.mallinfo, difference: 0 });
  });

  it('prints a strip and a summary whose totals are those of the walk, without colour off a TTY', () => {
    const { code, stdout } = heapscope(['walk'], ONE_ARENA);
    expect(code).toBe(0);
    expect(stdout).not.toContain('\u001b[');
    expect(stdout).toMatch(/^main_arena \[heap\] 0x[0-9a-f]+-0x[0-9a-f]+/m);
    expect(stdout).toMatch(/^ {2}\d+ chunks: in use \d+ \(.+\), .*top .+$/m);
    expect(stdout).toContain('walked to the end: the chunk sizes tile the heap exactly');
    expect(stdout).toMatch(/^[#@Stf.~|!]+$/m);
    expect(stdout).toContain("mallinfo2() of the same native call against the walk's own totals (every arena): every field equal");
    const lines = stdout.split('\n').filter((l) => new RegExp(`^ {2}(${FIELDS.join('|')}) `).test(l));
    expect(lines).toHaveLength(9);
    for (const line of lines) expect(line, line).toMatch(/^ {2}\S+ (\d+) = \1$/);
  });

  it('walks the thread arenas by default, only main_arena with --arena main; a bad --arena is a usage error', () => {
    const all = heapscope(['walk']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^thread arena 0x[0-9a-f]+, heap 0x[0-9a-f]+/m);
    const main = heapscope(['walk', '--arena', 'main']);
    expect(main.code).toBe(0);
    expect(main.stdout).not.toMatch(/^thread arena /m);
    const bad = heapscope(['walk', '--arena', 'some']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--arena takes main or all');
  });
});
