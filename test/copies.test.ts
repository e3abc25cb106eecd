// heapscope installed twice (two dependents, two node_modules): each copy
// has its own addon and live set, so a handle of one means nothing to the
// other. Passing one across must say so, not "got Allocation".
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as here from '../lib/index';

const ROOT = path.resolve(__dirname, '..');
type Heapscope = typeof here;

let dir: string;
let other: Heapscope;

beforeAll(() => {
  // The package as installed: package.json, dist and the built addon (a
  // copy, not a link: the same file would be the same loaded library).
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-copy-'));
  const copy = path.join(dir, 'node_modules', 'heapscope');
  fs.mkdirSync(copy, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(copy, 'package.json'));
  fs.cpSync(path.join(ROOT, 'dist'), path.join(copy, 'dist'), { recursive: true });
  // What node-gyp-build would load here: a local build, else the prebuilds.
  const built = path.join('build', 'Release', 'heapscope.node');
  if (fs.existsSync(path.join(ROOT, built))) {
    fs.mkdirSync(path.join(copy, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, built), path.join(copy, built));
  } else {
    fs.cpSync(path.join(ROOT, 'prebuilds'), path.join(copy, 'prebuilds'), { recursive: true });
  }
  // Its own dependencies resolve from this repository's node_modules.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  other = createRequire(path.join(dir, 'index.js'))('heapscope') as Heapscope;
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('two copies of heapscope in one process', () => {
  it('are two copies, each with its own Allocation class', () => {
    expect(other.Allocation).not.toBe(here.Allocation);
    expect(other.malloc(8) instanceof here.Allocation).toBe(false);
  });

  it("a handle passed to the other copy is named as the other copy's, and stays live", () => {
    const theirs = other.malloc(100);
    const ours = here.malloc(100);
    const fromAnotherCopy = (what: string) => expect.objectContaining({
      code: 'ERR_INVALID_ARG_TYPE',
      message: expect.stringMatching(new RegExp(`^${what} takes an Allocation.*, got an Allocation from another copy of heapscope \\(loaded from .+heapscope-copy-.+; this copy was loaded from .+\\)`)),
    });
    expect(() => here.free(theirs)).toThrow(fromAnotherCopy('free'));
    expect(() => here.realloc(theirs, 200)).toThrow(fromAnotherCopy('realloc'));
    expect(() => here.mallocUsableSize(theirs)).toThrow(fromAnotherCopy('mallocUsableSize'));
    expect(() => here.Allocation.prototype.free.call(theirs)).toThrow(fromAnotherCopy('free'));
    expect(() => other.free(ours)).toThrow(expect.objectContaining({ message: expect.stringMatching(/got an Allocation from another copy/) }));
    expect(theirs.freed).toBe(false);
    expect(theirs.usableSize).toBe(104);
    theirs.free();
    ours.free();
  });
});
