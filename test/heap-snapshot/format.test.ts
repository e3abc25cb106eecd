// Reading snapshot files: a real snapshot of this process round-trips; text
// that is no snapshot, a broken field and a newer version are each a coded
// error, from the API and from heapscope diff (status 1, the file named).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diffHeapSnapshots, heapSnapshot, readHeapSnapshot, SNAPSHOT_VERSION } from '../../lib/index';
import { SYNC_CHILD } from '../helpers/sync-child';

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-format-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const snapshot = heapSnapshot();
const text = JSON.stringify(snapshot);

function file(name: string, content: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

function diff(a: string, b: string) {
  const run = spawnSync(process.execPath, [CLI, 'diff', a, b], { ...SYNC_CHILD, encoding: 'utf8' });
  return { code: run.status, stderr: run.stderr };
}

/** The snapshot's JSON with `edit` applied. */
function edited(edit: (o: Record<string, any>) => void): string { // eslint-disable-line @typescript-eslint/no-explicit-any
  const o = JSON.parse(text);
  edit(o);
  return JSON.stringify(o);
}

describe('reading a snapshot back', () => {
  it('round-trips: the text read back is the same data, and JSON.stringify of it the same text', () => {
    const back = readHeapSnapshot(text);
    expect(JSON.stringify(back)).toBe(text);
    expect(back.arenas.map((a) => a.address)).toEqual(snapshot.arenas.map((a) => a.address));
    expect(typeof back.arenas[0].address).toBe('bigint');
    const d = diffHeapSnapshots(text, back);
    expect(d.arenas.every((a) => a.status === 'both' && a.classes.length === 0)).toBe(true);
  });

  it("a file's own fields only: an outsideHeap on Object.prototype shows in no arena of a diff, a takenAt there stands in for none missing", () => {
    // This process's main_arena is contiguous (its snapshot has no outsideHeap), unless its break was blocked.
    const has = snapshot.arenas.filter((a) => Object.hasOwn(a, 'outsideHeap')).length;
    const clean = diffHeapSnapshots(text, text).arenas.filter((a) => a.outsideHeap !== undefined).length;
    expect(clean).toBe(has);
    const noTakenAt = edited((o) => { delete o.takenAt; });
    Object.defineProperty(Object.prototype, 'outsideHeap', { value: 12345, configurable: true, writable: true });
    Object.defineProperty(Object.prototype, 'takenAt', { value: '2026-12-07T00:00:00.000Z', configurable: true, writable: true });
    try {
      expect(diffHeapSnapshots(text, text).arenas.filter((a) => Object.hasOwn(a, 'outsideHeap')).length).toBe(has);
      expect(() => readHeapSnapshot(noTakenAt)).toThrow(expect.objectContaining({ code: 'ERR_NOT_A_SNAPSHOT', message: 'takenAt must be a string, got nothing' }));
    } finally {
      delete (Object.prototype as { outsideHeap?: number }).outsideHeap;
      delete (Object.prototype as { takenAt?: string }).takenAt;
    }
  });

  it.each([
    ['not JSON', 'hello', 'ERR_NOT_A_SNAPSHOT', /^not JSON: /],
    ['JSON of something else', '{"format":"heapscope-doctor"}', 'ERR_NOT_A_SNAPSHOT', /its format is "heapscope-doctor", not "heapscope-snapshot"/],
    ['an array', '[]', 'ERR_NOT_A_SNAPSHOT', /its format is nothing/],
    ['a count below 0', edited((o) => { o.arenas[0].inUse.count = -1; }), 'ERR_NOT_A_SNAPSHOT', /^arenas\[0\]\.inUse\.count must be a whole number, got -1/],
    ['an address that is no address', edited((o) => { o.arenas[0].address = 12; }), 'ERR_NOT_A_SNAPSHOT', /^arenas\[0\]\.address must be an address/],
    ['a size class without its max', edited((o) => { delete o.arenas[0].classes[0].max; }), 'ERR_NOT_A_SNAPSHOT', /^arenas\[0\]\.classes\[0\]\.max must be a whole number/],
    ['an unknown kind of memory', edited((o) => { o.rss.rows[0].kind = 'heap'; }), 'ERR_NOT_A_SNAPSHOT', /^rss\.rows\[0\]\.kind must be main-heap or /],
    ['no takenAt', edited((o) => { delete o.takenAt; }), 'ERR_NOT_A_SNAPSHOT', /^takenAt must be a string, got nothing/],
    ['a newer version', edited((o) => { o.version = SNAPSHOT_VERSION + 1; }), 'ERR_SNAPSHOT_VERSION', new RegExp(`format version ${SNAPSHOT_VERSION + 1}; this heapscope reads version ${SNAPSHOT_VERSION} and older`)],
  ])('%s', (label, content, code, message) => {
    let thrown: { code?: string; message: string } | undefined;
    try {
      readHeapSnapshot(content);
    } catch (error) {
      thrown = error as { code?: string; message: string };
    }
    expect(thrown?.code, label).toBe(code);
    expect(thrown!.message).toMatch(message);
    // heapscope diff says which file, with the code; the other file is fine.
    const good = file('good.json', text);
    const bad = file(`${label.replace(/\W+/g, '-')}.json`, content);
    const run = diff(good, bad);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^heapscope: ${code}: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  });

  it('a file that cannot be read: ERR_READ_FAILED, status 1', () => {
    const run = diff(path.join(dir, 'missing.json'), path.join(dir, 'missing.json'));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^heapscope: ERR_READ_FAILED: cannot read .*missing\.json: ENOENT/);
  });
});
