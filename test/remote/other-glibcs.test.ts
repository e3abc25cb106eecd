// attach(pid) of processes running on other glibc releases than this
// machine's (fetched into test/.glibcs by scripts/fetch-glibcs.mjs): the
// version and build ID are read in each process's own memory; a release
// whose layout is known is diagnosed, its totals equal to the program's own
// mallinfo() and mp_ as its libc initialises it to what gdb reads in that
// file with the release's debug symbols; any other release is refused with
// a code, never decoded with a guessed layout.
// test/allocator/gdb-state.test.ts compares every struct on each release.
import { ChildProcess, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { attach, diffHeapSnapshots, maps } from '../../lib/index';
import { libcFileOf } from '../../lib/allocator/libc-file';
import { KNOWN_GLIBC_VERSIONS, layoutFor } from '../../lib/allocator/layouts';
import { TOTALLED_FIELDS } from '../../lib/allocator/totals';
import { gdbInitialParams } from '../helpers/gdb';
import { ccFlagsFor, gdbFlagsFor, libcOf, notFetched, OtherGlibc, OTHER_GLIBCS } from '../helpers/glibcs';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { readelfBuildId } from '../helpers/readelf';
import { SYNC_CHILD } from '../helpers/sync-child';
import { buildFixtures, startTarget } from '../helpers/target';

// The heaps read are other processes': this process's own room does not matter.
heapRoomNotNeeded();

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-other-glibcs-'));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** test/fixtures/allocator-state.c built on `g` and started: its pid and its own mallinfo(), or why it cannot be. */
async function startOn(g: OtherGlibc): Promise<{ pid: number; mallinfo: Record<string, number> } | string> {
  const cannot = notFetched(g);
  if (cannot !== undefined) return cannot;
  const into = fs.mkdtempSync(path.join(dir, `${g.name}-`));
  const { programs, noCompiler } = buildFixtures(into, ['allocator-state'], { flags: ccFlagsFor(g) });
  if (noCompiler !== undefined) return noCompiler;
  const { child, next } = startTarget(programs['allocator-state'], [], { into: children });
  const [mallinfo] = await next(2);
  return { pid: child.pid!, mallinfo: JSON.parse(mallinfo) as Record<string, number> };
}

const known = OTHER_GLIBCS.filter((g) => KNOWN_GLIBC_VERSIONS.includes(g.glibc));
const unknown = OTHER_GLIBCS.filter((g) => !KNOWN_GLIBC_VERSIONS.includes(g.glibc));

for (const g of known) describe(`a process on glibc ${g.glibc} (${g.name})`, () => {
  it('is attached with its own version, and diagnosed: mp_ as its libc initialises it is what gdb reads in that file', async ({ skip }) => {
    const started = await startOn(g);
    if (typeof started === 'string') skip(started);
    const { pid, mallinfo } = started as Exclude<typeof started, string>;
    const target = attach(pid);
    expect(target.glibc).toBe(g.glibc);
    // Its build ID, read in its memory, is the one readelf reads in the file; another build than this process's libc, whose forks measure global_max_fast.
    const readelf = readelfBuildId(libcOf(g));
    if (typeof readelf === 'string') expect(target.libc.buildId).toBe(readelf);
    // Measured in forks of this process, which maps another build; 2.43 has none.
    expect(target.mallocParams().globalMaxFast).toEqual(layoutFor(g.glibc).globalMaxFast === 'none'
      ? { found: false, absent: true, reason: expect.stringMatching(/^glibc 2\.43 has no global_max_fast/) }
      : { found: false, reason: expect.stringContaining(`which maps another libc (build-id ${libcFileOf(maps()).buildId}) than this one (build-id ${target.libc.buildId})`) });
    const d = target.doctor();
    expect(d.glibc).toBe(g.glibc);
    expect(d.snapshot.consistent).toBe(true);
    expect(d.arenas.map((a) => a.kind)).toEqual(['main', 'thread', 'thread', 'thread']);
    // Its totals are its own mallinfo(), field for field.
    for (const f of TOTALLED_FIELDS) expect({ field: f, value: d.totals[f] }).toEqual({ field: f, value: mallinfo[f] });
    // Its three mmapped chunks are found by their headers (from 2.43 a size 16 bytes short of the mapping), as mp_ counts
    // them; but 2.43's mremap_chunk counted 16 bytes too many for the one realloc moved, which the doctor says.
    const drift = layoutFor(g.glibc).mmappedTail;
    expect({ found: d.mmapped.found, bytes: d.mmapped.bytes + drift }).toEqual({ found: 3, bytes: mallinfo.hblkhd });
    expect({ nMmaps: d.mmapped.nMmaps, mmappedMem: d.mmapped.mmappedMem }).toEqual({ nMmaps: 3, mmappedMem: mallinfo.hblkhd });
    const said = d.findings.filter((f) => /mmapped chunks? that mp_ counts/.test(f));
    expect(said).toEqual([drift === 0
      ? expect.stringMatching(/^All 3 mmapped chunks that mp_ counts \(.*\) were found by their headers in anonymous memory; /)
      : expect.stringMatching(/^All 3 mmapped chunks that mp_ counts \(.*\) were found by their headers in anonymous memory, but mp_\.mmapped_mem says \d+ bytes, 16 more \(1 × 16\), less than a page, which no mapping accounts for: what glibc 2\.43's mremap_chunk leaves /)]);
    // The snapshot views, and a diff's, have a fast column and a fastbin row only where the release has fastbins (2.43 has none).
    const fastbins = layoutFor(g.glibc).fastbins;
    const snapshot = target.heapSnapshot();
    const diffed = diffHeapSnapshots(snapshot, target.heapSnapshot()).toMarkdown();
    const lines = [...snapshot.toMarkdown().split('\n'), ...diffed.split('\n')];
    const heads = lines.filter((l) => /^\| (arena|chunk size) \|/.test(l));
    expect(heads.length).toBeGreaterThan(2);
    expect(heads.filter((l) => l.includes('| fast |')).length).toBe(fastbins ? heads.length : 0);
    expect(lines.some((l) => l.startsWith('| free in fastbins |'))).toBe(fastbins);
    const initial = gdbInitialParams(libcOf(g), gdbFlagsFor(g));
    if ('skip' in initial) skip(initial.skip);
    expect(d.params.initial).toEqual(initial);
  });
});

// 2.43's free caches a chunk before it looks at IS_MMAPPED: where glibc.malloc.tcache_max reaches past the mmap threshold, a
// tcache bin can hold an mmapped chunk, whose memory no copy of the arenas holds. The decode says so, naming the pointer freed.
for (const g of known.filter((r) => layoutFor(r.glibc).mmappedTail !== 0)) describe(`a process on glibc ${g.glibc} (${g.name}) with an mmapped chunk in its tcache`, () => {
  it('has that tcache bin decoded up to the chunk, and the reason it stops there', async ({ skip }) => {
    const cannot = notFetched(g);
    if (cannot !== undefined) skip(cannot);
    const into = fs.mkdtempSync(path.join(dir, `${g.name}-mmapped-`));
    const { programs, noCompiler } = buildFixtures(into, ['tcache-mmapped'], { flags: ccFlagsFor(g) });
    if (noCompiler !== undefined) skip(noCompiler);
    const { child, next } = startTarget(programs['tcache-mmapped'], [], { into: children, env: { GLIBC_TUNABLES: 'glibc.malloc.tcache_max=1048576' } });
    const [pointer] = await next(2);
    const caches = attach(child.pid!).tcaches();
    const stopped = caches.tcaches.flatMap((t) => t.bins.filter((b) => b.reason !== undefined).map((b) => ({ index: b.index, count: b.count, reason: b.reason })));
    expect(stopped).toEqual([{
      index: expect.any(Number), count: 1,
      reason: `entry 0, ${pointer}, is outside every arena's memory: from glibc ${g.glibc} the tcache can hold an mmapped chunk (where glibc.malloc.tcache_max reaches its size), whose memory this copy does not hold`,
    }]);
    expect(stopped[0].index).toBeGreaterThanOrEqual(64);
  });
});

for (const g of unknown) describe(`a process on glibc ${g.glibc} (${g.name}), whose layout heapscope does not know`, () => {
  it('is refused with ERR_UNKNOWN_GLIBC_LAYOUT, naming the version read in its memory; so is every command', async ({ skip }) => {
    const started = await startOn(g);
    if (typeof started === 'string') skip(started);
    const { pid } = started as Exclude<typeof started, string>;
    const refusal = `glibc "${g.glibc}": malloc's layout is known for releases ${KNOWN_GLIBC_VERSIONS[0]} to ${KNOWN_GLIBC_VERSIONS.at(-1)} only`;
    expect(() => attach(pid)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_GLIBC_LAYOUT', message: refusal }));
    for (const command of ['doctor', 'arenas', 'walk']) {
      const run = spawnSync(process.execPath, [CLI, command, '--pid', String(pid)], { ...SYNC_CHILD, encoding: 'utf8' });
      expect({ command, status: run.status, stderr: run.stderr.trim() }).toEqual({ command, status: 1, stderr: `heapscope: ERR_UNKNOWN_GLIBC_LAYOUT: ${refusal}` });
    }
  });
});
