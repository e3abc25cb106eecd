// The environment of a program a test starts that is not heapscope (a C
// target, Debian's python3, gdb, chromium): `env` (this process's by
// default) without the preload this process itself runs under, the
// sanitizer run's ASan (scripts/sanitize.sh); a preload the test asks for
// itself (jemalloc) stays. None of these programs runs heapscope's code.
// Under ASan's preload chromium spun at full CPU, orphaned, until it was
// killed, and a C target that reads glibc's chunk headers
// (test/fixtures/old-heap-ends.c) read ASan's memory instead and crashed;
// a target on glibc's malloc is also what attach(pid) is for.
//
// Under scripts/test-on-release.mjs, this process and its node children run
// on another release's libraries, on LD_LIBRARY_PATH; a program of this
// machine's (cc, sh, python3, gdb, a target built here) cannot load them,
// and gets the LD_LIBRARY_PATH the script was started with instead, which
// the script leaves in HOST_LIBRARY_PATH (empty: none).
export const HOST_LIBRARY_PATH = 'HEAPSCOPE_TEST_HOST_LIBRARY_PATH';

export function foreignEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return hostLibraries(withoutOwnPreload(env));
}

/** `env` without the preload this process runs under (see above). */
function withoutOwnPreload(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && !(key === 'LD_PRELOAD' && value === process.env.LD_PRELOAD)) kept[key] = value;
  return kept;
}

/**
 * `env` with the LD_LIBRARY_PATH of this machine's programs (the one
 * scripts/test-on-release.mjs was started with, where it runs), preloads
 * and all: for a program of this machine's that starts this node again
 * (a shell, script(1), setpriv), with nodeAgain().
 */
export function hostLibraries(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const host = process.env[HOST_LIBRARY_PATH];
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || (key === 'LD_LIBRARY_PATH' && host !== undefined && value === process.env.LD_LIBRARY_PATH)) continue;
    kept[key] = value;
  }
  if (host !== undefined && host !== '' && kept.LD_LIBRARY_PATH === undefined) kept.LD_LIBRARY_PATH = host;
  return kept;
}

/**
 * The words that start this node again from a program given foreignEnv()
 * or hostLibraries() (`program… ...nodeAgain(), process.execPath, args…`):
 * under scripts/test-on-release.mjs, `env` setting the release's
 * LD_LIBRARY_PATH back; none otherwise.
 */
export function nodeAgain(): string[] {
  return process.env[HOST_LIBRARY_PATH] === undefined ? [] : ['/usr/bin/env', `LD_LIBRARY_PATH=${process.env.LD_LIBRARY_PATH ?? ''}`];
}

/** nodeAgain() and this node, as words of a shell command line, each quoted. */
export function nodeAgainLine(): string {
  return [...nodeAgain(), process.execPath].map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
}

/**
 * What a target that is this node (process.execPath) runs with: `env`
 * without this process's preload, and this node's libraries unless `env`
 * names its own (under scripts/test-on-release.mjs, the release's).
 */
export function nodeTargetEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const own = process.env[HOST_LIBRARY_PATH] === undefined || process.env.LD_LIBRARY_PATH === undefined ? {} : { LD_LIBRARY_PATH: process.env.LD_LIBRARY_PATH };
  return withoutOwnPreload({ ...own, ...env });
}
