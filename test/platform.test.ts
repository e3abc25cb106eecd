// Loading on anything but Linux x86_64 with glibc fails with one clear error.
// The other platforms are simulated in a child process, since this machine
// is the supported one: by overriding what Node reports, or (an old glibc)
// by a gnu_get_libc_version() preloaded ahead of glibc's.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SYNC_CHILD } from './helpers/sync-child';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { buildFixtures } from './helpers/target';

// What is checked runs in children: no live heap of this process is read.
heapRoomNotNeeded();

const root = path.join(__dirname, '..');

function loadAs(setup: string, env: NodeJS.ProcessEnv = process.env): { code?: string; message?: string } {
  const script = `${setup}
    try { require(${JSON.stringify(root)}); console.log(JSON.stringify({})); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const child = spawnSync(process.execPath, ['-e', script], { ...SYNC_CHILD, encoding: 'utf8', env });
  return JSON.parse(child.stdout);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-platform-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A shared object whose gnu_get_libc_version() says 2.27, or why none could be built. */
function oldGlibc(): string {
  const { programs, noCompiler } = buildFixtures(dir, ['old-glibc'], { shared: true });
  if (noCompiler !== undefined) throw new Error(noCompiler);
  return programs['old-glibc'];
}

/** The addon cannot be loaded: as on a libc it was not built for. */
const NO_DLOPEN = `process.dlopen = () => { throw new Error('Error relocating heapscope.node: symbol not found'); };`;

describe('unsupported platforms', () => {
  it.each([
    ['macOS', `Object.defineProperty(process, 'platform', { value: 'darwin' });`, /darwin/],
    ['Windows', `Object.defineProperty(process, 'platform', { value: 'win32' });`, /win32/],
    ['arm64', `Object.defineProperty(process, 'arch', { value: 'arm64' });`, /arm64/],
    ['musl', `${NO_DLOPEN} process.report.getReport = () => ({ header: {} });`, /musl/],
    ['an old glibc the addon was not built for', `${NO_DLOPEN} process.report.getReport = () => ({ header: { glibcVersionRuntime: '2.27' } });`, /glibc 2\.27/],
  ])('%s: ERR_UNSUPPORTED_PLATFORM naming the requirement', (_name, setup, found) => {
    const result = loadAs(setup);
    expect(result.code).toBe('ERR_UNSUPPORTED_PLATFORM');
    expect(result.message).toMatch(/requires Linux on x86_64 with glibc 2\.28 or later/);
    expect(result.message).toMatch(found);
  });

  it('a supported glibc whose binary does not load: ERR_UNSUPPORTED_PLATFORM saying why and how to build one', () => {
    const result = loadAs(NO_DLOPEN);
    expect(result.code).toBe('ERR_UNSUPPORTED_PLATFORM');
    expect(result.message).toMatch(/^no heapscope binary loads for platform linux, arch x64, libc glibc \d+\.\d+ .*symbol not found\. Build it from source/);
  });

  it('an old glibc as the running process reports it (gnu_get_libc_version preloaded): ERR_UNSUPPORTED_PLATFORM naming that version', () => {
    const result = loadAs('', { ...process.env, LD_PRELOAD: oldGlibc() });
    expect(result.code).toBe('ERR_UNSUPPORTED_PLATFORM');
    expect(result.message).toMatch(/requires Linux on x86_64 with glibc 2\.28 or later; found glibc 2\.27$/);
  });

  it('loads here', () => {
    expect(loadAs('')).toEqual({});
  });
});
