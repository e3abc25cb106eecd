// `heapscope walk` in a fresh process, and the walk's agreement with mallinfo2().
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'cli.js');

// V8's helper threads would share that one arena too and could change it
// while the walk copies it (the walk then retries, and under load may give
// up); the child runs without them, as isolated experiments do.
function heapscope(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--single-threaded', cli, ...args], {
    cwd: root, encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, NO_COLOR: '', ...env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

// With glibc.malloc.arena_max=1 every thread of the child shares main_arena,
// so mallinfo2's sums over arenas are main_arena's alone and every
// comparison must hold exactly.
const ONE_ARENA = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' };

interface Check { mallinfo: string; mallinfoValue: number; walkValue: number; exact: boolean; equal: boolean }

describe('heapscope walk', () => {
  it('--json: in a process with one arena, the walk agrees with mallinfo2() on every total', () => {
    const { code, stdout, stderr } = heapscope(['walk', '--json'], ONE_ARENA);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const walk = JSON.parse(stdout) as { singleArena: boolean; main: { complete: boolean; chunks: unknown[] }; checks: Check[] };
    expect(walk.singleArena).toBe(true);
    expect(walk.main.complete).toBe(true);
    expect(walk.checks.map((c) => c.mallinfo)).toEqual(['keepcost', 'arena', 'ordblks', 'fordblks - fsmblks', 'uordblks + fsmblks']);
    for (const c of walk.checks) {
      expect(c.exact).toBe(true);
      expect(c.walkValue, c.mallinfo).toBe(c.mallinfoValue);
    }
  });

  it('prints a strip and a summary whose totals are those of the walk, without colour off a TTY', () => {
    const { code, stdout } = heapscope(['walk'], ONE_ARENA);
    expect(code).toBe(0);
    expect(stdout).not.toContain('\u001b[');
    expect(stdout).toMatch(/^main_arena \[heap\] 0x[0-9a-f]+-0x[0-9a-f]+/m);
    expect(stdout).toMatch(/^ {2}\d+ chunks: in use \d+ \(.+\), free \d+ \(.+\), in tcache \d+ \(.+\), top .+$/m);
    expect(stdout).toContain('walked to the end: the chunk sizes tile the heap exactly');
    expect(stdout).toMatch(/^[#.t@S~|]+$/m);
    const lines = stdout.split('\n').filter((l) => /^ {2}(keepcost|arena|ordblks|fordblks|uordblks) /.test(l));
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(line, line).toMatch(/^ {2}\S+(?: [-+] \S+)? (\d+) = \1 /);
  });

  it('--arena all walks the thread arenas too; a bad --arena is a usage error', () => {
    const all = heapscope(['walk', '--arena', 'all']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^thread arena 0x[0-9a-f]+, heap 0x[0-9a-f]+/m);
    const bad = heapscope(['walk', '--arena', 'some']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--arena takes main or all');
  });
});
