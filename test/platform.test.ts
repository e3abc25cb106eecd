// Loading on anything but Linux x86_64 with glibc fails with one clear error.
// The other platforms are simulated in a child process by overriding what
// Node reports, since this machine is the supported one.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SYNC_CHILD } from './helpers/sync-child';

const root = path.join(__dirname, '..');

function loadAs(setup: string): { code?: string; message?: string } {
  const script = `${setup}
    try { require(${JSON.stringify(root)}); console.log(JSON.stringify({})); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const child = spawnSync(process.execPath, ['-e', script], { ...SYNC_CHILD, encoding: 'utf8' });
  return JSON.parse(child.stdout);
}

describe('unsupported platforms', () => {
  it.each([
    ['macOS', `Object.defineProperty(process, 'platform', { value: 'darwin' });`, /darwin/],
    ['Windows', `Object.defineProperty(process, 'platform', { value: 'win32' });`, /win32/],
    ['arm64', `Object.defineProperty(process, 'arch', { value: 'arm64' });`, /arm64/],
    ['musl', `process.report.getReport = () => ({ header: {} });`, /musl/],
    ['old glibc', `process.report.getReport = () => ({ header: { glibcVersionRuntime: '2.27' } });`, /2\.27/],
  ])('%s: ERR_UNSUPPORTED_PLATFORM naming the requirement', (_name, setup, found) => {
    const result = loadAs(setup);
    expect(result.code).toBe('ERR_UNSUPPORTED_PLATFORM');
    expect(result.message).toMatch(/requires Linux on x86_64 with glibc 2\.28 or later/);
    expect(result.message).toMatch(found);
  });

  it('loads here', () => {
    expect(loadAs('')).toEqual({});
  });
});
