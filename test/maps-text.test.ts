// The maps text a plan step reads comes back as a string made from the
// step's own memory: nothing on the way to JavaScript copies it through
// malloc (node-addon-api's Set, given a Napi::String, made a std::string of
// it, a text-sized chunk of main_arena at every maps() call).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SYNC_CHILD } from './helpers/sync-child';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { buildFixtures } from './helpers/target';

// The plans run in a child: no live heap of this process is read.
heapRoomNotNeeded();

const root = path.join(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-maps-text-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('a maps step', () => {
  it('hands its text over without a malloc of its size', (context) => {
    const { programs, noCompiler } = buildFixtures(dir, ['malloc-log'], { shared: true });
    if (noCompiler !== undefined) return context.skip(noCompiler);
    const shim = programs['malloc-log'];
    // 50,000 bytes through heapscope's malloc shows the shim sees the addon's calls.
    const child = spawnSync(process.execPath, ['-e', `
      const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'binding'))});
      const { runPlan } = require(${JSON.stringify(root)});
      require('node:fs').writeSync(2, 'BEGIN\\n');
      const lengths = [];
      for (let i = 0; i < 20; i++) lengths.push(runPlan([{ op: 'maps' }]).steps[0].maps.length);
      binding.free(binding.malloc(50000n));
      console.log(JSON.stringify(lengths));
    `], { ...SYNC_CHILD, encoding: 'utf8', env: { ...process.env, LD_PRELOAD: shim } });
    expect(child.status).toBe(0);
    const lengths = JSON.parse(child.stdout) as number[];
    const sizes = child.stderr.slice(child.stderr.indexOf('BEGIN\n')).split('\n').flatMap((line) => (/^malloc (\d+)$/.exec(line) ?? []).slice(1).map(Number));
    expect(sizes).toContain(50000);
    expect(Math.min(...lengths)).toBeGreaterThan(4096);
    // A std::string of the text asks for its length and a byte or two more.
    expect(sizes.filter((size) => lengths.some((length) => size >= length && size <= length + 16))).toEqual([]);
  });
});
