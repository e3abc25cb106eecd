// vis(): chunks as raw 16-byte lines with header, links and place, checked
// in a quiet child (nothing but the body allocates) against what the same
// native call read of the blocks through plan `read` steps, against the
// lists tcaches() and bins() decode and the places chunkPlaces() gives; its
// refusals; and its views, here in this process.
import path from 'node:path';
import { inspect, stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { allocatorSnapshot, chunkPlaces, hex, tcaches, vis } from '../../lib/index';
import { renderVis } from '../../lib/views/vis';
import { inQuietChild } from '../helpers/quiet-child';
import { HERE } from '../helpers/glibc-here';

const root = path.join(__dirname, '..', '..');
const ANSI = /\x1b\[[0-9;]*m/;

interface Seen {
  consistent: boolean;
  safeLinking: boolean;
  /** Per kept block: what vis showed of its chunk, and what a plan read step copied of it in the snapshot's native call. */
  kept: {
    user: string; chunk: string; chunkSize: number; read: string;
    shown: { address: string; size: number; rawSize: string; prevInUse: boolean; isMmapped: boolean; nonMainArena: boolean; omitted: number; lines: { address: string; words: [string, string]; ascii: string }[] };
  }[];
  /** Every chunk vis showed of the freed blocks and their places. */
  freed: {
    address: string; size: number; place: string; bin?: number; owner?: string; tcache?: string; fd?: string; fdStored?: string; bk?: string;
    firstUserWord: string; secondUserWord: string;
    expected: { place?: string; bin?: number; owner?: string; tcache?: string };
    /** The chunk after it in its list, per tcaches() or bins(), and the one before (regular bins). */
    next?: string | null; prev?: string | null;
  }[];
  sequence: { shown: string[]; walked: string[] };
  errors: Record<string, { code?: string; message: string }>;
  top: { count: number; place: string; total: number; first: number };
  defaults: { count: number; first: string; heapFirst: string };
}

describe('vis in a quiet process', () => {
  it('shows the bytes a plan read of the blocks, their headers, the links of tcache, fastbin and unsorted chunks, and their places', () => {
    const seen = inQuietChild<Seen>(`
      const { protectPointer } = require(${JSON.stringify(path.join(root, 'dist', 'allocator', 'safe-linking'))});
      const { binAddress } = require(${JSON.stringify(path.join(root, 'dist', 'allocator', 'decode'))});
      const kept = [...h.runPlan([{ op: 'malloc', size: 40 }, { op: 'malloc', size: 100 }, { op: 'malloc', size: 4000 }], { keep: true }).kept.values()];
      kept.forEach((a, i) => a.write(0, 'heapscope vis ' + i));
      const before = [];
      const keep = (size) => before.push({ op: 'malloc', size }) - 1;
      const tcached = [], small = [], big = [];
      for (let i = 0; i < 3; i++) { tcached.push(keep(0x208)); keep(24); }
      for (let i = 0; i < 16; i++) { small.push(keep(0x58)); keep(24); }
      // Six big ones, every other one freed: the 24-byte guards may come from
      // free chunks anywhere, but a big block freed is followed by the next
      // one still in use, so it stays a free chunk of its own, not top's.
      for (let i = 0; i < 6; i++) { const b = keep(0x4f0); if (i % 2 === 0) big.push(b); keep(24); }
      // The big ones first: a big free that merges into 64 KiB or more consolidates the fastbins.
      for (const step of [...big, ...tcached, ...small]) before.push({ op: 'free', step });
      // The kept blocks as they are in this native call, just before the copy (no probe runs in between).
      const reads = kept.map((a) => before.push({ op: 'read', address: a.address - 16n, length: BigInt(a.chunk.size) }) - 1);
      const s = h.allocatorSnapshot({ before, probe: false });
      const places = new Map(h.chunkPlaces(s).regions.flatMap((r) => r.chunks.map((c) => [c.address, c])));
      const caches = h.tcaches(s).tcaches;
      const arenaBins = h.bins(s).arenas;
      const hexs = (v) => '0x' + v.toString(16);
      const keptSeen = kept.map((a, i) => {
        const v = h.vis({ address: a.address, count: 1 }, s);
        const c = v.chunks[0];
        return {
          user: hexs(a.address), chunk: hexs(a.address - 16n), chunkSize: a.chunk.size, read: s.steps[reads[i]].bytes.toString('hex'),
          shown: { address: hexs(c.address), size: c.size, rawSize: hexs(c.rawSize), prevInUse: c.prevInUse, isMmapped: c.isMmapped,
            nonMainArena: c.nonMainArena, omitted: c.omitted, lines: c.lines.map((l) => ({ address: hexs(l.address), words: l.words.map(hexs), ascii: l.ascii })) },
        };
      });
      const listed = (address) => {
        for (const t of caches) for (const b of t.bins) {
          const i = b.chunks.findIndex((c) => c.address === address);
          if (i >= 0) return { next: b.chunks[i + 1]?.address ?? null };
        }
        for (const a of arenaBins) for (const b of a.fastbins) {
          const i = b.chunks.findIndex((c) => c.address === address);
          if (i >= 0) return { next: b.chunks[i + 1]?.address ?? null };
        }
        // A doubly linked list closes on its bin's header (bin_at).
        for (const a of arenaBins) for (const b of [...a.unsorted, ...a.smallbins, ...a.largebins]) {
          const i = b.chunks.findIndex((c) => c.address === address);
          const header = binAddress(s.image.layout, a.arena, b.index);
          if (i >= 0) return { next: b.chunks[i + 1]?.address ?? header, prev: b.chunks[i - 1]?.address ?? header };
        }
        return {};
      };
      const freed = [...tcached, ...small, ...big].map((step) => {
        const address = s.steps[step].address - 16n;
        const c = h.vis({ address, count: 1 }, s).chunks[0];
        // A freed block may have merged with a free neighbour before it: its chunk is the one holding it.
        const p = places.get(c.address);
        const l = listed(c.address);
        return {
          address: hexs(c.address), size: c.size, place: c.place, bin: c.bin, owner: c.owner, tcache: c.tcache && hexs(c.tcache),
          fd: c.fd === undefined ? undefined : hexs(c.fd), fdStored: c.fdStored === undefined ? undefined : hexs(c.fdStored),
          bk: c.bk === undefined ? undefined : hexs(c.bk),
          firstUserWord: hexs(c.lines[1].words[0]), secondUserWord: hexs(c.lines[1].words[1]),
          expected: { place: p?.place, bin: p?.bin, owner: p?.owner, tcache: p?.tcache && hexs(p.tcache) },
          ...(l.next === undefined ? {} : { next: l.next === null ? null : hexs(l.next) }),
          ...(l.prev === undefined ? {} : { prev: l.prev === null ? null : hexs(l.prev) }),
          protectedFd: c.fd === undefined ? undefined : hexs(protectPointer(c.address + 16n, c.fd)),
        };
      });
      // From the first kept block, or from the fifth chunk before the region's
      // end when the block lies nearer to it than that (it was the fourth in
      // one CI run: where the plans' blocks land depends on the heap before).
      const region = h.chunkPlaces(s).regions.find((r) => r.start <= kept[0].address && kept[0].address < r.end);
      const at = Math.min(region.chunks.findIndex((c) => c.address === kept[0].address - 16n), region.chunks.length - 5);
      const run = h.vis({ address: region.chunks[at].address + 16n, count: 5 }, s);
      const error = (f) => { try { f(); return { message: 'no error' }; } catch (e) { return { code: e.code, message: e.message }; } };
      const main = h.arenas(s).arenas[0];
      const top = h.vis({ address: main.top.address + 100n, count: 5 }, s);
      const whole = h.vis(undefined, s);
      return {
        consistent: s.consistent, safeLinking: whole.safeLinking, kept: keptSeen, freed,
        sequence: { shown: run.chunks.map((c) => hexs(c.address)), walked: region.chunks.slice(at, at + 5).map((c) => hexs(c.address)) },
        errors: {
          low: error(() => h.vis({ address: 0x1000n }, s)),
          libc: error(() => h.vis({ address: s.image.libcData[0].start }, s)),
          pastBreak: error(() => h.vis({ address: s.image.heap.end }, s)),
          zero: error(() => h.vis({ count: 0 }, s)),
          many: error(() => h.vis({ count: 1001 }, s)),
          number: error(() => h.vis({ address: 4096 }, s)),
        },
        top: { count: top.chunks.length, place: top.chunks[0].place, total: top.total, first: top.first },
        defaults: { count: whole.chunks.length, first: hexs(whole.chunks[0].address), heapFirst: hexs(h.chunkPlaces(s).regions.find((r) => r.kind === 'heap').chunks[0].address) },
      };`);
    expect(seen.consistent).toBe(true);
    const word = (hexBytes: string, offset: number) => `0x${BigInt(`0x${Buffer.from(hexBytes, 'hex').subarray(offset, offset + 8).reverse().toString('hex')}`).toString(16)}`;

    for (const k of seen.kept) {
      const c = k.shown;
      expect(c.address).toBe(k.chunk);
      expect(c.size).toBe(k.chunkSize);
      // The header as the plan read it: the size word with its flags.
      expect(c.rawSize).toBe(word(k.read, 8));
      const raw = BigInt(c.rawSize);
      expect([c.prevInUse, c.isMmapped, c.nonMainArena]).toEqual([(raw & 1n) !== 0n, (raw & 2n) !== 0n, (raw & 4n) !== 0n]);
      expect(Number(raw & ~7n)).toBe(c.size);
      const lines = c.size / 16;
      expect(c.omitted).toBe(lines <= 8 ? 0 : lines - 6);
      expect(c.lines).toHaveLength(lines <= 8 ? lines : 6);
      for (const l of c.lines) {
        const offset = Number(BigInt(l.address) - BigInt(k.chunk));
        expect(offset % 16).toBe(0);
        expect(l.words).toEqual([word(k.read, offset), word(k.read, offset + 8)]);
        const bytes = Buffer.from(k.read, 'hex').subarray(offset, offset + 16);
        expect(l.ascii).toBe([...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join(''));
      }
      // Lines 0–3 and, for the 4000-byte block, the chunk's last two.
      if (lines > 8) expect(c.lines.slice(4).map((l) => BigInt(l.address) - BigInt(k.chunk))).toEqual([BigInt(c.size - 32), BigInt(c.size - 16)]);
      expect(c.lines[1].ascii.startsWith('heapscope vis ')).toBe(true);
    }
    expect(seen.kept.map((k) => k.shown.omitted > 0)).toEqual([false, false, true]);

    for (const f of seen.freed) {
      expect({ address: f.address, place: f.place, bin: f.bin, owner: f.owner, tcache: f.tcache }).toEqual({ address: f.address, ...f.expected });
      if (f.place === 'tcache' || f.place === 'fastbin') {
        // fd revealed from the word the line shows; a tcache link points at the next entry's user memory.
        expect(f.fdStored ?? f.fd).toBe(f.firstUserWord);
        if (seen.safeLinking) expect((f as { protectedFd?: string }).protectedFd).toBe(f.fdStored);
        const target = f.next === null || f.next === undefined ? 0n : BigInt(f.next) + (f.place === 'tcache' ? 16n : 0n);
        expect(f.next).not.toBeUndefined();
        expect(f.fd).toBe(hex(target));
        expect(f.bk).toBeUndefined();
      } else if (f.place === 'top') {
        // A block that merged into top (its neighbours free): top has no links.
        expect([f.fd, f.bk, f.fdStored]).toEqual([undefined, undefined, undefined]);
      } else {
        expect(['unsorted', 'smallbin', 'largebin']).toContain(f.place);
        expect([f.fd, f.bk]).toEqual([f.firstUserWord, f.secondUserWord]);
        expect([f.fd, f.bk]).toEqual([f.next, f.prev]);
        expect(f.fdStored).toBeUndefined();
      }
    }
    // Not vacuous: the freed blocks reached a tcache bin, a fastbin (none from 2.43) and the unsorted (or a small) bin, and some links lead on.
    const places = new Set(seen.freed.map((f) => f.place));
    expect(places.has('tcache') && places.has('fastbin') === HERE.fastbins).toBe(true);
    expect(places.has('unsorted') || places.has('smallbin')).toBe(true);
    expect(seen.freed.filter((f) => f.place === 'tcache' && f.fd !== '0x0').length).toBeGreaterThanOrEqual(1);

    expect(seen.sequence.shown).toEqual(seen.sequence.walked);
    expect(seen.sequence.shown).toHaveLength(5);
    expect(seen.errors.low).toMatchObject({ code: 'ERR_NOT_IN_HEAP', message: expect.stringMatching(/^0x1000 is in no arena's heap \(the heaps are main_arena's \[heap\] 0x/) });
    expect(seen.errors.libc.code).toBe('ERR_NOT_IN_HEAP');
    expect(seen.errors.pastBreak.code).toBe('ERR_NOT_IN_HEAP');
    expect(seen.errors.zero).toEqual({ code: 'ERR_OUT_OF_RANGE', message: 'options.count must be at least 1' });
    expect(seen.errors.many.code).toBe('ERR_OUT_OF_RANGE');
    expect(seen.errors.number.code).toBe('ERR_INVALID_ARG_TYPE');
    // From inside top: top alone, the heap's last chunk.
    expect(seen.top).toMatchObject({ count: 1, place: 'top' });
    expect(seen.top.first).toBe(seen.top.total - 1);
    expect(seen.defaults).toEqual({ count: 10, first: seen.defaults.heapFirst, heapFirst: seen.defaults.heapFirst });
  });
});

describe('the views of vis()', () => {
  const s = allocatorSnapshot();
  const v = vis({ count: 6 }, s);
  const places = new Map(chunkPlaces(s).regions.flatMap((r) => r.chunks.map((c) => [c.address, c])));

  it('terminal: a summary line per chunk (size, flags, place) over its lines; colour only when asked, and per chunk', () => {
    const plain = renderVis(v, { width: 80 });
    expect(plain).not.toMatch(ANSI);
    const lines = plain.split('\n');
    expect(lines[0]).toBe(`Chunks 1–6 of ${v.total} in main_arena's [heap] ${hex(v.region.start)}–${hex(v.region.end)}`);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    for (const c of v.chunks) {
      const head = lines.findIndex((l) => l.startsWith(`${hex(c.address)}  ${hex(c.size)} [`));
      expect(head).toBeGreaterThan(0);
      const flags = [c.prevInUse && 'P', c.isMmapped && 'M', c.nonMainArena && 'A'].filter(Boolean).join(' ');
      expect(lines[head]).toContain(`${hex(c.size)} [${flags}]`);
      expect(places.get(c.address)?.place).toBe(c.place);
      const first = lines[head + 1].trim().split(/ +/);
      expect(first.slice(0, 3)).toEqual([hex(c.address), `0x${c.lines[0].words[0].toString(16).padStart(16, '0')}`, `0x${c.lines[0].words[1].toString(16).padStart(16, '0')}`]);
    }
    const coloured = renderVis(v, { width: 80, color: true });
    expect(coloured).toMatch(ANSI);
    expect(stripVTControlCharacters(coloured)).toBe(plain);
    // Neighbouring chunks in different colours.
    const colourOf = (address: bigint) => /^\x1b\[(\d+)m/.exec(coloured.split('\n').find((l) => stripVTControlCharacters(l).startsWith(`${hex(address)}  `))!)?.[1];
    expect(colourOf(v.chunks[0].address)).not.toBe(colourOf(v.chunks[1].address));
  });

  it('HTML and SVG are self-contained and carry every line; the notebook bundle and the REPL line', () => {
    const html = v.toHTML();
    const svg = v.toSVG();
    for (const doc of [html, svg]) {
      expect(doc).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
      for (const c of v.chunks) for (const l of c.lines) expect(doc).toContain(hex(l.address));
    }
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const bundle = (v as unknown as Record<symbol, () => Record<string, unknown>>)[Symbol.for('Jupyter.display')]();
    expect(Object.keys(bundle)).toEqual(['text/plain', 'text/html', 'image/svg+xml', 'application/json']);
    expect((bundle['application/json'] as { chunks: { address: string }[] }).chunks[0].address).toBe(hex(v.chunks[0].address));
    expect(Object.keys(v)).not.toContain('toSVG');
    const line = inspect(v);
    expect(line.split('\n')[0]).toBe(`VisResult <chunks 1–6 of ${v.total} in main_arena's [heap] ${hex(v.region.start)}–${hex(v.region.end)}`);
    expect(v.toMarkdown()).toContain('```');
    // The calling thread's tcache struct is the first chunk of [heap] here.
    const own = tcaches(s).tcaches.find((t) => t.owner === 'calling-thread');
    if (own !== undefined && own.address === v.chunks[0].address) expect(line).toContain('tcache_perthread_struct of the calling thread');
  });
});
