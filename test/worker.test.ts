// The addon is context-aware: each worker thread loads its own instance,
// and its allocations come from a thread arena, not main_arena.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SYNC_CHILD } from './helpers/sync-child';

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
    { ...SYNC_CHILD, cwd: root, encoding: 'utf8' });
    expect(cjs.trim()).toBe('24 32');
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { malloc } from 'heapscope'; const a = malloc(10); console.log(a.usableSize, a.chunk.size); a.free();`],
    { ...SYNC_CHILD, cwd: root, encoding: 'utf8' });
    expect(esm.trim()).toBe('24 32');
  });
});

describe('a worker torn down inside a native call', () => {
  // The worker tells the main thread, through shared memory, that it is
  // about to enter a long plan (2,000 statm reads, far longer than the
  // step into it), then runs it over and over; the main thread ends the
  // worker the moment it hears. While a worker is torn down, Node-API calls
  // fail; the addon must turn that into nothing worse than a JS exception
  // nobody sees, never a C++ exception escaping into Node (SIGABRT).
  function cycle(end: 'exit' | 'terminate') {
    const child = spawnSync(process.execPath, ['-e', `
      const { Worker } = require('node:worker_threads');
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(\`
        const { workerData: { binding: file, flag } } = require('node:worker_threads');
        const { binding } = require(file);
        const plan = new BigUint64Array(4 * 2000);
        for (let i = 0; i < plan.length; i += 4) plan[i] = 14n;
        for (;;) {
          Atomics.store(flag, 0, 1);
          Atomics.notify(flag, 0);
          binding.runPlan(plan, false);
        }
      \`, { eval: true, workerData: { binding: ${JSON.stringify(path.join(root, 'dist', 'binding.js'))}, flag } });
      // A worker that failed before its plan could not say so while this thread waits.
      if (Atomics.wait(flag, 0, 0, 60000) === 'timed-out') {
        process.stderr.write('the worker did not reach its plan within 60 s');
        process.exit(3);
      }
      ${end === 'exit' ? 'process.exit(0);' : 'worker.terminate().then(() => process.exit(0));'}
    `], { ...SYNC_CHILD, encoding: 'utf8' });
    return { end, status: child.status, signal: child.signal, stderr: child.stderr };
  }

  it('30 cycles of process.exit() and worker.terminate(): every child exits 0', () => {
    const cycles = Array.from({ length: 30 }, (_, i) => cycle(i % 2 === 0 ? 'exit' : 'terminate'));
    const bad = cycles.filter((c) => c.status !== 0 || c.signal !== null || c.stderr !== '');
    expect(bad).toEqual([]);
  });
});
