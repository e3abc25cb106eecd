// Measurements that must not be disturbed: another thread of the test process
// (vitest's own, a worker another test left behind) can malloc and free in
// main_arena between two native calls. A fresh node with V8 single-threaded
// runs nothing but the body.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');

/**
 * Runs `body` (a function body, CommonJS) in a fresh `node --single-threaded`
 * and returns what it returns; bigints come back as decimal strings. In the
 * body, `h` is heapscope and `binding` its raw addon.
 */
export function inQuietChild<T>(body: string): T {
  const source = `
    const h = require(${JSON.stringify(root)});
    const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'binding'))});
    const result = (() => { ${body} })();
    process.stdout.write(JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
  `;
  const child = spawnSync(process.execPath, ['--single-threaded', '-e', source], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`quiet child failed (${child.status ?? child.signal}): ${child.stderr}`);
  return JSON.parse(child.stdout) as T;
}
