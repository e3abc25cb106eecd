#!/usr/bin/env node
// Other glibc releases, for the tests that run a target on each and compare
// heapscope's reading of it with gdb's (test/allocator/gdb-state.test.ts)
// or check that it is refused (a release whose layout is not known). Each
// release's libc6, libc6-dev, linux-libc-dev and (for gdb) libc6-dbg are
// downloaded from its distribution's archive, checked against the SHA256
// its package index gives, and unpacked into test/.glibcs/NAME/root, where
// a test program is built against it (gcc --sysroot) and run on its own
// ld.so. Absolute links in the packages are made to point inside the root.
// NAME/release.json, written last, says what is there.
//
//   node scripts/fetch-glibcs.mjs            fetch what is missing
//   node scripts/fetch-glibcs.mjs --refresh  fetch every release again
//
// Needs network access to deb.debian.org and archive.ubuntu.com, xz and
// dpkg-deb. Exits 1 when a release could not be fetched, naming why.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DEBIAN = 'http://deb.debian.org/debian';
const UBUNTU = 'http://archive.ubuntu.com/ubuntu';

/**
 * The releases, by the glibc they ship. `suites`: searched in turn for
 * each package (updates first). `gdb`: whether its debug symbols are
 * fetched (a release heapscope refuses needs none).
 */
export const RELEASES = [
  { name: 'ubuntu-bionic', glibc: '2.27', archive: UBUNTU, suites: ['bionic-updates', 'bionic'], gdb: false },
  { name: 'debian-bullseye', glibc: '2.31', archive: DEBIAN, suites: ['bullseye'], gdb: true },
  { name: 'ubuntu-jammy', glibc: '2.35', archive: UBUNTU, suites: ['jammy-updates', 'jammy'], gdb: true },
  { name: 'ubuntu-noble', glibc: '2.39', archive: UBUNTU, suites: ['noble-updates', 'noble'], gdb: true },
  { name: 'debian-trixie', glibc: '2.41', archive: DEBIAN, suites: ['trixie'], gdb: true },
  { name: 'ubuntu-questing', glibc: '2.42', archive: UBUNTU, suites: ['questing-updates', 'questing'], gdb: true },
  { name: 'debian-forky', glibc: '2.43', archive: DEBIAN, suites: ['forky'], gdb: false },
];

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', '.glibcs');

async function download(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

/** The stanzas of a suite's main/binary-amd64 index, for the packages named. */
async function packagesOf(archive, suite, names) {
  const xz = await download(`${archive}/dists/${suite}/main/binary-amd64/Packages.xz`);
  const text = execFileSync('xz', ['-dc'], { input: xz, maxBuffer: 1 << 30 }).toString('utf8');
  const found = new Map();
  for (const stanza of text.split('\n\n')) {
    const field = (name) => new RegExp(`^${name}: (.*)$`, 'm').exec(stanza)?.[1];
    const name = field('Package');
    if (!names.includes(name) || found.has(name)) continue;
    found.set(name, { name, version: field('Version'), filename: field('Filename'), sha256: field('SHA256') });
  }
  return found;
}

/** Every absolute link under `root` pointed at the same path inside it. */
function rootLinks(root, dir = root) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const at = path.join(dir, entry.name);
    if (entry.isDirectory()) rootLinks(root, at);
    else if (entry.isSymbolicLink()) {
      const target = fs.readlinkSync(at);
      if (path.isAbsolute(target)) {
        fs.rmSync(at);
        fs.symlinkSync(path.join(root, target), at);
      }
    }
  }
}

async function fetchRelease(release) {
  const names = ['libc6', 'libc6-dev', 'linux-libc-dev', ...(release.gdb ? ['libc6-dbg'] : [])];
  const chosen = new Map();
  for (const suite of release.suites) {
    for (const [name, p] of await packagesOf(release.archive, suite, names)) if (!chosen.has(name)) chosen.set(name, p);
  }
  const missing = names.filter((n) => !chosen.has(n));
  if (missing.length > 0) throw new Error(`${release.name}: no ${missing.join(', ')} in ${release.suites.join(', ')}`);
  const libc6 = chosen.get('libc6');
  if (!libc6.version.startsWith(`${release.glibc}-`)) throw new Error(`${release.name}: libc6 is ${libc6.version}, not glibc ${release.glibc}`);
  const dir = path.join(ROOT, release.name);
  fs.rmSync(dir, { recursive: true, force: true });
  const root = path.join(dir, 'root');
  fs.mkdirSync(root, { recursive: true });
  for (const p of chosen.values()) {
    const deb = await download(`${release.archive}/${p.filename}`);
    const sha256 = createHash('sha256').update(deb).digest('hex');
    if (sha256 !== p.sha256) throw new Error(`${p.filename}: SHA256 ${sha256}, the index says ${p.sha256}`);
    const file = path.join(dir, path.basename(p.filename));
    fs.writeFileSync(file, deb);
    execFileSync('dpkg-deb', ['-x', file, root]);
    fs.rmSync(file);
  }
  rootLinks(root);
  // A merged-/usr release ships its files under usr/ and leaves /lib and /lib64 to base-files: libc.so's script names both.
  for (const top of ['lib', 'lib64']) {
    if (!fs.existsSync(path.join(root, top)) && fs.existsSync(path.join(root, 'usr', top))) fs.symlinkSync(path.join('usr', top), path.join(root, top));
  }
  const packages = [...chosen.values()].map(({ name, version }) => ({ name, version }));
  fs.writeFileSync(path.join(dir, 'release.json'), `${JSON.stringify({ name: release.name, glibc: release.glibc, gdb: release.gdb, packages }, null, 2)}\n`);
  return packages;
}

async function main() {
  const refresh = process.argv.includes('--refresh');
  let failed = 0;
  for (const release of RELEASES) {
    if (!refresh && fs.existsSync(path.join(ROOT, release.name, 'release.json'))) {
      console.log(`${release.name}: already here`);
      continue;
    }
    try {
      const packages = await fetchRelease(release);
      console.log(`${release.name}: glibc ${release.glibc}, ${packages.map((p) => `${p.name} ${p.version}`).join(', ')}`);
    } catch (error) {
      failed++;
      console.error(`${release.name}: ${error.message}`);
    }
  }
  process.exitCode = failed === 0 ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
