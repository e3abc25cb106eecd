// Measurements that must not be disturbed: another thread of the test process
// (vitest's own, a worker another test left behind) can malloc and free in
// main_arena between two native calls. A fresh node with V8 single-threaded
// and no platform worker threads runs nothing but the body.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');

/**
 * Runs `body` (the body of an async function, CommonJS) in a fresh
 * `node --single-threaded` and returns what it returns; bigints come back as
 * decimal strings. In the body, `h` is heapscope, `binding` its raw addon and
 * `addonPath` the addon's file (for workers).
 */
export function inQuietChild<T>(body: string): T {
  const source = `
    const h = require(${JSON.stringify(root)});
    const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'binding'))});
    const addonPath = require('node-gyp-build').path(${JSON.stringify(root)});
    (async () => { ${body} })().then((result) => {
      process.stdout.write(JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
    });
  `;
  const child = spawnSync(process.execPath, ['--single-threaded', '--v8-pool-size=0', '-e', source], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`quiet child failed (${child.status ?? child.signal}): ${child.stderr}`);
  return JSON.parse(child.stdout) as T;
}
