// The doctor finds glibc's mmapped chunks at the starts of map lines, and the
// kernel merges neighbouring anonymous mappings made with equal flags into
// one line. heapscope maps its own memory (copies, plan scratch, the copies'
// registry) with glibc's flags, so one mapped right below a chunk hid that
// chunk and every chunk above it in the line: doctor/reservation.test.ts
// found 0 of 4 about one run in ten. heapscope now marks its memory with a
// flag glibc never sets (VM_DONTDUMP, "dd" in smaps), which the kernel does
// not merge across. And what heapscope reads before a snapshot of this
// process must not be chunks of the heap that snapshot copies.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inQuietChild } from '../helpers/quiet-child';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// The chunk and the copy are a quiet child's.
heapRoomNotNeeded();

type Line = { start: string; end: string; dd: boolean };

describe("heapscope's own memory never shares a map line with glibc's", () => {
  it('a 40 MiB copy of a 40 MiB mmapped chunk lies in a line marked dd; the chunk still starts a line, unmarked, and the doctor finds it', () => {
    // The copy is 12 KiB short of the chunk: a length of whole 2 MiB pages
    // the kernel would place 2 MiB-aligned, seldom right below the chunk.
    const out = inQuietChild<{ chunk: string; copied: number; lines: Line[]; found: string[] }>(`
      const fs = require('node:fs');
      const { kept, steps } = h.runPlan([{ op: 'malloc', size: 40 << 20 }], { keep: true });
      const copy = h.runPlan([{ op: 'read', address: steps[0].address, length: (40 << 20) - 12288 }]).steps[0].bytes;
      const lines = [];
      let line;
      for (const text of fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
        const range = /^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0\\s*$/.exec(text);
        if (range) lines.push(line = { start: BigInt('0x' + range[1]), end: BigInt('0x' + range[2]), dd: false });
        else if (/^[0-9a-f]+-/.test(text)) line = undefined;
        else if (line && text.startsWith('VmFlags:')) line.dd = text.split(/\\s+/).includes('dd');
      }
      const found = h.doctor().mmapped.chunks.map((c) => c.address);
      const result = { chunk: steps[0].address - 16n, copied: copy.length, lines, found };
      for (const a of kept.values()) a.free();
      return result;
    `);
    const chunk = BigInt(out.chunk);
    const lines = out.lines.map((l) => ({ start: BigInt(l.start), end: BigInt(l.end), dd: l.dd }));
    const holding = lines.find((l) => l.start <= chunk && chunk < l.end);
    expect(holding).toMatchObject({ start: chunk, dd: false });
    expect(out.copied).toBe((40 << 20) - 12288);
    expect(lines.some((l) => l.dd && l.end - l.start >= BigInt(out.copied))).toBe(true);
    expect(out.found).toContain(out.chunk);
  });
});

describe("the doctor's reads before its snapshot take nothing from malloc", () => {
  it("the mmapped chunks' headers are read into memory the addon mapped: malloc's in-use bytes stay the same across the reads", () => {
    // A Buffer for each 16-byte header took ~400 bytes of malloc's (the
    // block and the Buffer's own records), in use in the heap the snapshot
    // then copied: ~20 KB for 48 regions.
    const dist = path.join(__dirname, '..', '..', 'dist', 'doctor');
    const out = inQuietChild<{ grew: number[]; regions: number }>(`
      const { readBeforeSnapshot } = require(${JSON.stringify(path.join(dist, 'diagnose'))});
      const { openPagemap } = require(${JSON.stringify(path.join(dist, 'residency'))});
      const regions = h.maps();
      const grew = [];
      for (let round = 0; round < 8; round++) {
        const pagemap = openPagemap('self', h.pageSize(), (e) => e);
        const before = h.mallinfo2().uordblks;
        readBeforeSnapshot(process.pid, regions, h.pageSize(), pagemap);
        grew.push(h.mallinfo2().uordblks - before);
        pagemap.close();
      }
      return { grew: grew.slice(3), regions: regions.filter((r) => r.kind === 'anonymous' && r.perms === 'rw-p').length };
    `);
    expect(out.regions).toBeGreaterThan(20);
    // V8's own mallocs (its compilers, a collection's frees) move the figure by hundreds of bytes either way.
    const sorted = [...out.grew].sort((a, b) => a - b);
    expect(sorted[2]).toBeLessThan(4096);
  });
});
