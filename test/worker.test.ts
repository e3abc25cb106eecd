// The addon is context-aware: each worker thread loads its own instance,
// and its allocations come from a thread arena, not main_arena.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');

function inWorker<T>(source: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const h = require(${JSON.stringify(root)});
       Promise.resolve((() => { ${source} })()).then((v) => parentPort.postMessage(v));`,
      { eval: true },
    );
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

describe('worker threads', () => {
  it('an allocation made in a worker has the A bit and lies in a thread arena heap', async () => {
    const seen = await inWorker<{ a: boolean; m: boolean; kind: string }>(`
      const a = h.malloc(100);
      const out = { a: a.chunk.nonMainArena, m: a.chunk.isMmapped, kind: a.region.kind };
      a.free();
      return out;
    `);
    expect(seen).toEqual({ a: true, m: false, kind: 'arena-heap' });
  });

  it("a worker cannot free the main thread's allocations", async () => {
    const { malloc } = await import('../lib/index');
    const a = malloc(10);
    const result = await inWorker<string>(`
      try { h.free(${a.address}n); return 'freed'; } catch (e) { return e.code; }
    `);
    expect(result).toBe('ERR_UNKNOWN_POINTER');
    a.free();
  });
});

describe('module formats', () => {
  it('works from require() and from import', () => {
    const cjs = execFileSync(process.execPath, ['-e', `
      const h = require('heapscope'); const a = h.malloc(10); console.log(a.usableSize, a.chunk.size); a.free();`],
    { cwd: root, encoding: 'utf8' });
    expect(cjs.trim()).toBe('24 32');
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { malloc } from 'heapscope'; const a = malloc(10); console.log(a.usableSize, a.chunk.size); a.free();`],
    { cwd: root, encoding: 'utf8' });
    expect(esm.trim()).toBe('24 32');
  });
});
