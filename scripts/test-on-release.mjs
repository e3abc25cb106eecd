#!/usr/bin/env node
// Runs the test suite (or the files named) on another glibc release than
// this machine's: vitest and every test process in the Node.js release
// binary on that release's own ld.so and libraries (fetched into
// test/.glibcs by scripts/fetch-glibcs.mjs). What a test builds with cc or
// starts of this machine's programs (cc, sh, readelf, gdb, chromium) runs
// with the LD_LIBRARY_PATH this script was started with, which it leaves in
// HEAPSCOPE_TEST_HOST_LIBRARY_PATH for the tests' foreignEnv(): those
// programs cannot load the release's libraries. HEAPSCOPE_TEST_RELEASE names
// the release: a program a test builds for this machine's glibc is built
// for it (test/helpers/glibcs.ts, RELEASE_UNDER_TEST), and tests of Debian's
// python3, which runs on this machine's glibc only, are skipped.
//
//   node scripts/test-on-release.mjs debian-forky [vitest run arguments...]
//
// Run `npm run build` first (the addon and dist/). Exits with vitest's status.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetched, GLIBCS_DIR, ldSoIn, libraryPathIn, nodeWithInterpreter, RELEASES } from './fetch-glibcs.mjs';

const [name, ...vitestArgs] = process.argv.slice(2);
const release = RELEASES.find((r) => r.name === name);
if (release === undefined) {
  console.error(`usage: node scripts/test-on-release.mjs <release> [vitest arguments...]; releases: ${RELEASES.map((r) => r.name).join(', ')}`);
  process.exit(2);
}
if (!fetched(release)) {
  console.error(`${name} (glibc ${release.glibc}) was not fetched: run node scripts/fetch-glibcs.mjs`);
  process.exit(1);
}
const root = path.join(GLIBCS_DIR, name, 'root');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hs-release-'));
// Readable by all, as this machine's node is: a test that starts it as another user (doctor.test.ts) must be able to.
fs.chmodSync(dir, 0o755);
try {
  const made = nodeWithInterpreter(ldSoIn(root), dir);
  if ('cannot' in made) {
    console.error(made.cannot);
    process.exit(1);
  }
  const libraries = libraryPathIn(root);
  const vitest = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'vitest', 'vitest.mjs');
  console.error(`vitest on glibc ${release.glibc} (${name}): ${made.node}, LD_LIBRARY_PATH=${libraries}`);
  const run = spawnSync(made.node, [vitest, 'run', ...vitestArgs], {
    stdio: 'inherit',
    env: { ...process.env, LD_LIBRARY_PATH: libraries, HEAPSCOPE_TEST_HOST_LIBRARY_PATH: process.env.LD_LIBRARY_PATH ?? '', HEAPSCOPE_TEST_RELEASE: name },
  });
  process.exitCode = run.status ?? 1;
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
