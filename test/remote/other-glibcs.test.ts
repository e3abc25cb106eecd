// attach(pid) of processes running on other glibc releases than this
// machine's (fetched into test/.glibcs by scripts/fetch-glibcs.mjs): the
// version is read in each process's own memory; a release whose layout is
// known is diagnosed, with mp_ as its libc initialises it equal to what gdb
// reads in that file with the release's debug symbols; any other release
// is refused with a code, never decoded with a guessed layout.
// test/allocator/gdb-state.test.ts compares every struct on each release.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attach, maps } from '../../lib/index';
import { libcFileOf } from '../../lib/allocator/libc-file';
import { KNOWN_GLIBC_VERSIONS } from '../../lib/allocator/layouts';
import { AllocatorFixture, startAllocatorFixture } from '../helpers/allocator-fixture';
import { gdbInitialParams } from '../helpers/gdb';
import { ccFlagsFor, gdbFlagsFor, libcOf, notFetched, OTHER_GLIBCS } from '../helpers/glibcs';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { SYNC_CHILD } from '../helpers/sync-child';

// The heaps read are other processes': this process's own room does not matter.
heapRoomNotNeeded();

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const fixtures: AllocatorFixture[] = [];

afterEach(() => {
  for (const f of fixtures.splice(0)) f.stop();
});

/** test/fixtures/allocator-state.c built on `g` and started, or why it cannot be. */
async function startOn(g: (typeof OTHER_GLIBCS)[number]): Promise<number | string> {
  const cannot = notFetched(g);
  if (cannot !== undefined) return cannot;
  const started = await startAllocatorFixture('allocator-state', ccFlagsFor(g));
  if (typeof started === 'string') return started;
  fixtures.push(started);
  return started.child.pid!;
}

const known = OTHER_GLIBCS.filter((g) => KNOWN_GLIBC_VERSIONS.includes(g.glibc));
const unknown = OTHER_GLIBCS.filter((g) => !KNOWN_GLIBC_VERSIONS.includes(g.glibc));

for (const g of known) describe(`a process on glibc ${g.glibc} (${g.name})`, () => {
  it('is attached with its own version, and diagnosed: mp_ as its libc initialises it is what gdb reads in that file', async ({ skip }) => {
    const pid = await startOn(g);
    if (typeof pid === 'string') skip(pid);
    const target = attach(pid as number);
    expect(target.glibc).toBe(g.glibc);
    // Its build ID, read in its memory, is the one readelf reads in the file; another build than this process's libc, whose forks measure global_max_fast.
    const readelf = spawnSync('readelf', ['-n', libcOf(g)], { ...SYNC_CHILD, encoding: 'utf8' });
    if (readelf.error === undefined) expect(target.libc.buildId).toBe(/Build ID: ([0-9a-f]+)/.exec(readelf.stdout)![1]);
    expect(target.mallocParams().globalMaxFast).toEqual({ found: false, reason: expect.stringContaining(`which maps another libc (build-id ${libcFileOf(maps()).buildId}) than this one (build-id ${target.libc.buildId})`) });
    const d = target.doctor();
    expect(d.glibc).toBe(g.glibc);
    expect(d.snapshot.consistent).toBe(true);
    expect(d.arenas.map((a) => a.kind)).toEqual(['main', 'thread', 'thread', 'thread']);
    const initial = gdbInitialParams(libcOf(g), gdbFlagsFor(g));
    if ('skip' in initial) skip(initial.skip);
    expect(d.params.initial).toEqual(initial);
  });
});

for (const g of unknown) describe(`a process on glibc ${g.glibc} (${g.name}), whose layout heapscope does not know`, () => {
  it('is refused with ERR_UNKNOWN_GLIBC_LAYOUT, naming the version read in its memory; so is every command', async ({ skip }) => {
    const pid = await startOn(g);
    if (typeof pid === 'string') skip(pid);
    const refusal = `glibc "${g.glibc}": malloc's layout is known for releases ${KNOWN_GLIBC_VERSIONS[0]} to ${KNOWN_GLIBC_VERSIONS.at(-1)} only`;
    expect(() => attach(pid as number)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_GLIBC_LAYOUT', message: refusal }));
    for (const command of ['doctor', 'arenas', 'walk']) {
      const run = spawnSync(process.execPath, [CLI, command, '--pid', String(pid)], { ...SYNC_CHILD, encoding: 'utf8' });
      expect({ command, status: run.status, stderr: run.stderr.trim() }).toEqual({ command, status: 1, stderr: `heapscope: ERR_UNKNOWN_GLIBC_LAYOUT: ${refusal}` });
    }
  });
});
