// The GNU build ID decoded from the bytes an ELF object's first mapping
// holds, against readelf on the same files: this machine's libc and each
// release fetched into test/.glibcs; and cut or altered copies, which give
// no build ID or the right one, never another.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gnuBuildId } from '../../lib/allocator/build-id';
import { libcFileOf } from '../../lib/allocator/libc-file';
import { maps } from '../../lib/index';
import { libcOf, OTHER_GLIBCS } from '../helpers/glibcs';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { readelfBuildId } from '../helpers/readelf';

// Bytes of files only: no live heap of this process is read.
heapRoomNotNeeded();

const OURS = libcFileOf(maps())!.path;

const head = (file: string) => fs.readFileSync(file).subarray(0, 8192);

describe('gnuBuildId', () => {
  it("reads what readelf reads, in this machine's libc and in every fetched release's", ({ skip }) => {
    const files = [OURS, ...OTHER_GLIBCS.filter((g) => g.root !== undefined).map(libcOf)];
    for (const file of files) {
      const expected = readelfBuildId(file);
      if (typeof expected !== 'string') skip(expected.skip);
      expect({ file, id: gnuBuildId(head(file)) }).toEqual({ file, id: expected });
    }
    // And in this process's memory, where libcFileOf reads it.
    expect(libcFileOf(maps())!.buildId).toBe(gnuBuildId(head(OURS)));
  });

  /** An ELF header with one PT_NOTE (aligned to `align`) holding a GNU note of `type` with descriptor `desc`, after a note named "ab". */
  const elfWithNote = (align: number, desc: Buffer, type = 3): Buffer => {
    const pad = (n: number) => Math.ceil(n / align) * align;
    const note = (name: Buffer, t: number, d: Buffer) => {
      const b = Buffer.alloc(pad(12 + name.length) + pad(d.length));
      b.writeUInt32LE(name.length, 0);
      b.writeUInt32LE(d.length, 4);
      b.writeUInt32LE(t, 8);
      name.copy(b, 12);
      d.copy(b, pad(12 + name.length));
      return b;
    };
    const notes = Buffer.concat([note(Buffer.from('ab\0'), 1, Buffer.alloc(4, 0xee)), note(Buffer.from('GNU\0'), type, desc)]);
    const bytes = Buffer.alloc(0x100 + notes.length);
    bytes.writeUInt32BE(0x7f454c46, 0);
    bytes[4] = 2;
    bytes.writeBigUInt64LE(64n, 0x20);
    bytes.writeUInt16LE(56, 0x36);
    bytes.writeUInt16LE(1, 0x38);
    bytes.writeUInt32LE(4, 64);
    bytes.writeBigUInt64LE(0x100n, 64 + 0x08);
    bytes.writeBigUInt64LE(BigInt(notes.length), 64 + 0x20);
    bytes.writeBigUInt64LE(BigInt(align), 64 + 0x30);
    notes.copy(bytes, 0x100);
    return bytes;
  };

  it('reads a build ID in a segment of 4- or 8-byte aligned notes, after a note of another name; none for an empty one', () => {
    const id = Buffer.from('0102030405060708090a0b0c0d0e0f1011121314', 'hex');
    for (const align of [4, 8]) {
      expect({ align, id: gnuBuildId(elfWithNote(align, id)) }).toEqual({ align, id: id.toString('hex') });
      expect({ align, id: gnuBuildId(elfWithNote(align, id, 4)) }).toEqual({ align, id: undefined });
      expect({ align, id: gnuBuildId(elfWithNote(align, Buffer.alloc(0))) }).toEqual({ align, id: undefined });
    }
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
