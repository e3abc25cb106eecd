import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { experiments } from '../lib/experiments/run';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

function cli(...args: string[]) {
  const child = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: child.status, stdout: child.stdout, stderr: child.stderr };
}

describe('heapscope CLI', () => {
  it('list names every experiment with its question', () => {
    const { code, stdout } = cli('list');
    expect(code).toBe(0);
    for (const e of experiments()) expect(stdout).toContain(`${e.name}`);
    expect(stdout.trim().split('\n')).toHaveLength(experiments().length);
  });

  it('run --json prints one JSON document with bigints as hex strings', () => {
    const { code, stdout } = cli('run', 'chunk-sizes', '--json');
    expect(code).toBe(0);
    const doc = JSON.parse(stdout);
    expect(doc.name).toBe('chunk-sizes');
    expect(doc.environment.isolated).toBe(true);
    expect(doc.rows[10].address).toMatch(/^0x[0-9a-f]+$/);
    expect(doc.rows[10].chunkSize).toBe(32);
    expect(doc.findings.length).toBeGreaterThan(0);
  });

  it('run passes --tunable to the child', () => {
    const { code, stdout } = cli('run', 'chunk-sizes', '--json', '--tunable', 'glibc.malloc.tcache_count=0');
    expect(code).toBe(0);
    expect(JSON.parse(stdout).environment.tunables).toEqual({ 'glibc.malloc.tcache_count': '0' });
  });

  it('run prints a readable story', () => {
    const { code, stdout } = cli('run', 'chunk-sizes', '--in-process');
    expect(code).toBe(0);
    expect(stdout).toContain('== chunk-sizes: malloc(n): how many bytes do you really get?');
    expect(stdout).toContain('this process');
    expect(stdout).toMatch(/- malloc\(10\) returned a \d+-byte chunk/);
  });

  it.each([
    [[]],
    [['frobnicate']],
    [['run']],
    [['run', 'no-such-experiment']],
    [['run', 'chunk-sizes', '--tunable', 'glibc.malloc.nope=1']],
    [['run', 'chunk-sizes', '--tunable', 'novalue']],
    [['run', 'chunk-sizes', '--isolated', '--in-process']],
    [['run', 'chunk-sizes', '--bogus']],
  ])('exits 2 with a usage message on bad usage: %j', (args) => {
    const { code, stderr, stdout } = cli(...args);
    expect(code).toBe(2);
    expect(stderr).toContain('usage: heapscope');
    expect(stdout).toBe('');
  });

  it('help exits 0', () => {
    expect(cli('help').code).toBe(0);
    expect(cli('--help').stdout).toContain('usage: heapscope');
  });

  it('maps prints the classified map, and --json parses', () => {
    const text = cli('maps');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/ heap +\[heap\]/);
    const { stdout } = cli('maps', '--json', '--rss');
    const regions = JSON.parse(stdout);
    expect(regions.some((r: { kind: string }) => r.kind === 'stack')).toBe(true);
    expect(regions.every((r: { rss?: number }) => typeof r.rss === 'number')).toBe(true);
  });

  it('exits 1 with the reason when an experiment fails', () => {
    // A child killed by a signal is a failure of the experiment, not of usage.
    const child = spawnSync(process.execPath, ['-e', `
      const cp = require('node:child_process');
      const spawn = cp.spawn;
      cp.spawn = (cmd, args, opts) => spawn(cmd, ['-e', 'process.kill(process.pid, "SIGKILL")'], opts);
      require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'cli.js'))}).main(['run', 'chunk-sizes'])
        .then((code) => { process.exitCode = code; });`], { encoding: 'utf8' });
    expect(child.status).toBe(1);
    expect(child.stderr).toMatch(/ERR_EXPERIMENT_FAILED: experiment chunk-sizes failed in its child process: killed by SIGKILL/);
  });
});
