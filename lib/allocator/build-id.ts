// The GNU build ID of an ELF object (`readelf -n`'s "Build ID"), from the
// bytes of its mapping at file offset 0, where the linker puts the ELF
// header, the program headers and the notes. Two libc files with one build
// ID are one build: the same offsets of everything in them, wherever each
// file is (a copy, a container's, one deleted since it was mapped).
import { programHeaders } from '../maps/classify';

const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;

/** The build ID in hex, or undefined when `head` holds no ELF header, or no such note within it. */
export function gnuBuildId(head: Uint8Array): string | undefined {
  const table = programHeaders(head);
  if (table === undefined) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const { count = 0, size = 0 } = table;
  for (let k = 0; k < count; k++) {
    const at = Number(table.at) + k * size;
    if (size < 0x38 || at + 0x38 > head.length) return undefined;
    if (view.getUint32(at, true) !== PT_NOTE) continue;
    // p_offset, p_filesz, p_align: a note's name and descriptor are padded to the segment's alignment (4, or 8 for .note.gnu.property).
    const offset = Number(view.getBigUint64(at + 0x08, true));
    const end = Math.min(offset + Number(view.getBigUint64(at + 0x20, true)), head.length);
    const align = view.getBigUint64(at + 0x30, true) === 8n ? 8 : 4;
    // Offsets from the segment's start: the name follows the 12-byte header, the descriptor and the next note each start aligned.
    const aligned = (at: number) => offset + Math.ceil((at - offset) / align) * align;
    for (let n = offset; n + 12 <= end;) {
      const nameSize = view.getUint32(n, true);
      const descSize = view.getUint32(n + 4, true);
      const name = n + 12;
      const desc = aligned(name + nameSize);
      const next = aligned(desc + descSize);
      if (desc + descSize > end) break;
      const gnu = nameSize === 4 && head[name] === 0x47 && head[name + 1] === 0x4e && head[name + 2] === 0x55 && head[name + 3] === 0;
      if (gnu && view.getUint32(n + 8, true) === NT_GNU_BUILD_ID) return descSize === 0 ? undefined : Buffer.from(head.buffer, head.byteOffset + desc, descSize).toString('hex');
      n = next;
    }
  }
  return undefined;
}
