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

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
// npm and node-gyp read npm_config_* case-insensitively.
const named = Object.keys(env).some((key) => key.toLowerCase() === 'npm_config_nodedir' && env[key] !== '');
if (!named) {
  const nodedir = [path.resolve(path.dirname(process.execPath), '..'), '/usr']
    .find((dir) => fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h')));
  if (nodedir !== undefined) env.npm_config_nodedir = nodedir;
}

const prebuildify = createRequire(import.meta.url).resolve('prebuildify/bin.js');
execFileSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc'], { cwd: root, env, stdio: 'inherit' });
