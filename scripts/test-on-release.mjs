#!/usr/bin/env node
// Runs the test suite (or the files named) on another glibc release than
// this machine's: vitest and every test process in the Node.js release
// binary on that release's own ld.so and libraries (fetched into
// test/.glibcs by scripts/fetch-glibcs.mjs). What a test builds with cc or
// starts of this machine's programs (sh, readelf, gdb, chromium) cannot run
// with those libraries on LD_LIBRARY_PATH, and fails: read such failures
// as this script's, not the product's.
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
try {
  const made = nodeWithInterpreter(ldSoIn(root), dir);
  if ('cannot' in made) {
    console.error(made.cannot);
    process.exit(1);
  }
  const libraries = libraryPathIn(root);
  const vitest = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'vitest', 'vitest.mjs');
  console.error(`vitest on glibc ${release.glibc} (${name}): ${made.node}, LD_LIBRARY_PATH=${libraries}`);
  const run = spawnSync(made.node, [vitest, 'run', ...vitestArgs], { stdio: 'inherit', env: { ...process.env, LD_LIBRARY_PATH: libraries } });
  process.exitCode = run.status ?? 1;
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
