// readelf (binutils) as an oracle for what heapscope reads in ELF files.
import { spawnSync } from 'node:child_process';
import { foreignEnv } from './foreign-env';
import { SYNC_CHILD } from './sync-child';

/** `readelf -n file`'s "Build ID", or why there is none to compare with (no readelf here). */
export function readelfBuildId(file: string): string | { skip: string } {
  const run = spawnSync('readelf', ['-n', file], { ...SYNC_CHILD, encoding: 'utf8', env: foreignEnv() });
  if (run.error !== undefined) return { skip: 'no readelf (binutils) to read build IDs with' };
  const id = /Build ID: ([0-9a-f]+)/.exec(run.stdout);
  if (id === null) throw new Error(`readelf -n ${file} names no build ID:\n${run.stdout}${run.stderr}`);
  return id[1];
}
