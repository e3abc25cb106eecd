// The package's entry, as `require('heapscope')` and `import` resolve it:
// index.ts's whole API, as plain data properties (no getter runs on each
// `h.name`), and every name still a named ESM import.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SYNC_CHILD } from './helpers/sync-child';
import { heapRoomNotNeeded } from './helpers/heap-room';

// Each check runs in a child: no live heap of this process is read.
heapRoomNotNeeded();

const ROOT = path.resolve(__dirname, '..');

function node(args: string[]): unknown {
  const child = spawnSync(process.execPath, args, { ...SYNC_CHILD, cwd: ROOT, encoding: 'utf8' });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout);
}

describe('the package entry', () => {
  it('require() gets every name index.ts exports, each a data property holding the same value', () => {
    const r = node(['-e', `
      const h = require('heapscope');
      const index = require('./dist/index.js');
      const own = Object.getOwnPropertyDescriptors(h);
      console.log(JSON.stringify({
        names: Object.keys(h).sort(), indexNames: Object.keys(index).sort(),
        getters: Object.keys(own).filter((k) => own[k].get !== undefined),
        differ: Object.keys(index).filter((k) => index[k] !== h[k]),
        resolved: require.resolve('heapscope'),
      }));
    `]) as { names: string[]; indexNames: string[]; getters: string[]; differ: string[]; resolved: string };
    expect(r.resolved).toBe(path.join(ROOT, 'dist', 'main.js'));
    expect(r.names).toEqual(r.indexNames);
    expect(r.names).toContain('programBreak');
    expect(r.getters).toEqual([]);
    expect(r.differ).toEqual([]);
  });

  it('import gets every name as a named import, and the same values as require()', () => {
    const r = node(['--input-type=module', '-e', `
      import * as ns from 'heapscope';
      import h from 'heapscope';
      import { createRequire } from 'node:module';
      const index = createRequire(process.cwd() + '/')('./dist/index.js');
      console.log(JSON.stringify({
        missing: Object.keys(index).filter((k) => !(k in ns)),
        differ: Object.keys(index).filter((k) => ns[k] !== index[k] || h[k] !== index[k]),
      }));
    `]) as { missing: string[]; differ: string[] };
    expect(r).toEqual({ missing: [], differ: [] });
  });
});
