// The GNU build ID decoded from the bytes an ELF object's first mapping
// holds, against readelf on the same files: this machine's libc and each
// release fetched into test/.glibcs; and cut or altered copies, which give
// no build ID or the right one, never another.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gnuBuildId } from '../../lib/allocator/build-id';
import { libcFileOf } from '../../lib/allocator/libc-file';
import { maps } from '../../lib/index';
import { libcOf, OTHER_GLIBCS } from '../helpers/glibcs';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { SYNC_CHILD } from '../helpers/sync-child';

// Bytes of files only: no live heap of this process is read.
heapRoomNotNeeded();

const OURS = libcFileOf(maps())!.path;

/** readelf's build ID of `file`, or why there is none to compare with. */
function readelf(file: string): string | { skip: string } {
  const run = spawnSync('readelf', ['-n', file], { ...SYNC_CHILD, encoding: 'utf8' });
  if (run.error !== undefined) return { skip: 'no readelf (binutils) to read build IDs with' };
  return /Build ID: ([0-9a-f]+)/.exec(run.stdout)![1];
}

const head = (file: string) => fs.readFileSync(file).subarray(0, 8192);

describe('gnuBuildId', () => {
  it("reads what readelf reads, in this machine's libc and in every fetched release's", ({ skip }) => {
    const files = [OURS, ...OTHER_GLIBCS.filter((g) => g.root !== undefined).map(libcOf)];
    for (const file of files) {
      const expected = readelf(file);
      if (typeof expected !== 'string') skip(expected.skip);
      expect({ file, id: gnuBuildId(head(file)) }).toEqual({ file, id: expected });
    }
    // And in this process's memory, where libcFileOf reads it.
    expect(libcFileOf(maps())!.buildId).toBe(gnuBuildId(head(OURS)));
  });

  it('gives none, never another, for a copy cut anywhere, a note of another name or type, or no ELF header', () => {
    const bytes = head(OURS);
    const id = gnuBuildId(bytes)!;
    for (let length = 0; length <= 2048; length += 4) expect([undefined, id]).toContain(gnuBuildId(bytes.subarray(0, length)));
    const magic = Buffer.from(bytes);
    magic[1] = 0x45 ^ 1;
    expect(gnuBuildId(magic)).toBeUndefined();
    // The note's name ("GNU") and type (3) are what make it the build ID.
    const at = bytes.indexOf(Buffer.from(id, 'hex'));
    for (const [offset, value] of [[-4, 0x48], [-8, 4]] as const) {
      const altered = Buffer.from(bytes);
      altered[at + offset] = value;
      expect(gnuBuildId(altered)).toBeUndefined();
    }
  });
});
