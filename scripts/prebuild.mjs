// `npm run prebuilds`, which `npm pack` and `npm publish` run through
// prepack: the addon compiled by prebuildify into prebuilds/, which the
// tarball ships so that installing it needs no compiler and no Python.
//
// node-gyp downloads Node's headers unless npm_config_nodedir names a Node
// installation that has them. Where nothing names one, this uses the
// running node's own installation, or else /usr (a distribution's node
// package), if it has node_api.h: offline machines then build too. The
// addon uses Node-API only (NAPI_VERSION 8 in binding.gyp), whose headers
// and ABI do not depend on the Node version they came with.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetched, GLIBCS_DIR, RELEASES, sysrootFlags } from './fetch-glibcs.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
// npm and node-gyp read npm_config_* case-insensitively.
const named = Object.keys(env).some((key) => key.toLowerCase() === 'npm_config_nodedir' && env[key] !== '');
if (!named) {
  const nodedir = [path.resolve(path.dirname(process.execPath), '..'), '/usr']
    .find((dir) => fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')));
  if (nodedir !== undefined) env.npm_config_nodedir = nodedir;
}

// Linked against the oldest glibc scripts/fetch-glibcs.mjs unpacked (Ubuntu
// 18.04's 2.27), the binary asks for no symbol version newer than that and
// loads on every glibc heapscope supports (2.28 on); linked against this
// machine's, it would ask for this one's (2.34's dlopen and dlsym, 2.33's
// stat64) and fail to load on Debian 11, Ubuntu 20.04 or RHEL 8. Without a
// release of 2.28 or older fetched, the build is refused, unless
// HEAPSCOPE_PREBUILD_FOR_THIS_GLIBC=1 asks for a binary for this machine's
// glibc alone (the packaging test, where none was fetched).
const SUPPORTED_FROM = 28;
const minor = (version) => Number(version.split('.')[1]);
const oldest = RELEASES.filter(fetched).sort((a, b) => minor(a.glibc) - minor(b.glibc))[0];
/** The release the binary is linked against, or undefined: this machine's glibc. */
const linkedAgainst = oldest !== undefined && minor(oldest.glibc) <= SUPPORTED_FROM ? oldest : undefined;
const forThisGlibc = process.env.HEAPSCOPE_PREBUILD_FOR_THIS_GLIBC === '1';
if (linkedAgainst === undefined) {
  const why = oldest === undefined ? 'no glibc release was fetched' : `the oldest glibc fetched is ${oldest.glibc} (${oldest.name})`;
  if (!forThisGlibc) {
    console.error(`prebuilds: ${why}, and a binary linked against a glibc after 2.${SUPPORTED_FROM} may not load where heapscope is supported: ` +
      'run node scripts/fetch-glibcs.mjs (or set HEAPSCOPE_PREBUILD_FOR_THIS_GLIBC=1 for a binary for this machine\'s glibc alone)');
    process.exit(1);
  }
  console.warn(`prebuilds: ${why}; HEAPSCOPE_PREBUILD_FOR_THIS_GLIBC=1: the binary is linked against this machine's glibc`);
} else {
  const flags = sysrootFlags(path.join(GLIBCS_DIR, linkedAgainst.name, 'root')).join(' ');
  const added = { CFLAGS: flags, CXXFLAGS: `${flags} -include ${path.join(root, 'scripts', 'old-glibc.h')}`, LDFLAGS: flags };
  for (const [name, value] of Object.entries(added)) env[name] = [env[name], value].filter(Boolean).join(' ');
  console.log(`prebuilds: linked against glibc ${linkedAgainst.glibc} (${linkedAgainst.name})`);
}

const prebuildify = createRequire(import.meta.url).resolve('prebuildify/bin.js');
execFileSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc'], { cwd: root, env, stdio: 'inherit' });

// What the binary asks of glibc: no symbol version newer than the release it was linked against, and none of the
// functions scripts/old-glibc.h declares (a shared object may leave them undefined; it would then fail to load).
if (linkedAgainst !== undefined) {
  const binary = path.join(root, 'prebuilds', 'linux-x64', 'heapscope.glibc.node');
  const symbols = execFileSync('objdump', ['-T', binary], { encoding: 'utf8' });
  const newer = [...new Set([...symbols.matchAll(/\(GLIBC_(2\.\d+)\)\s+(\S+)/g)].filter((m) => minor(m[1]) > minor(linkedAgainst.glibc)).map((m) => `${m[2]}@GLIBC_${m[1]}`))];
  const clocked = [...symbols.matchAll(/\bpthread_\w*clock\w*/g)].map((m) => m[0]);
  if (newer.length > 0 || clocked.length > 0) {
    throw new Error(`prebuilds: ${binary} asks for ${[...newer, ...clocked].join(', ')}, which glibc ${linkedAgainst.glibc} lacks`);
  }
}
