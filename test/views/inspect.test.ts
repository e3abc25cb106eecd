import { inspect, stripVTControlCharacters } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { calloc, free, malloc, realloc } from '../../lib/allocation';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { hex, shortBytes } from '../../lib/format';
import { toJSON } from '../../lib/json';
import { hex as packageHex, mallocInfo, programBreak } from '../../lib/index';
import { maps, regionOf } from '../../lib/maps';
import { runPlan } from '../../lib/plan';

const ANSI = /\x1b\[[0-9;]*m/;
const HUGE = 64 << 20;

/** The letters a header's flags should show, read from its booleans. */
function letters(chunk: { prevInUse: boolean; isMmapped: boolean; nonMainArena: boolean }): string {
  return [chunk.prevInUse ? 'P' : '', chunk.isMmapped ? 'M' : '', chunk.nonMainArena ? 'A' : ''].filter(Boolean).join(' ');
}

describe('Allocation at the prompt', () => {
  it('is one line with the address, the call, the usable and chunk sizes, the flags and the region', () => {
    const a = malloc(10);
    try {
      // The P flag is the chunk before's: another thread of this process (libuv's pool) can free or take
      // it between two reads of the header, so the line must show the header as read just before or after it.
      const before = a.chunk;
      const text = inspect(a);
      const after = a.chunk;
      expect(text).not.toContain('\n');
      const region = a.region!;
      const where = region.path.startsWith('[') ? region.path : `${region.kind} mapping`;
      const line = (chunk: typeof before) => `Allocation <${hex(a.address)} malloc(10): ${a.usableSize} usable, chunk ${chunk.size} [${letters(chunk)}] in ${where}>`;
      expect([line(before), line(after)]).toContain(text);
      expect(text).toMatch(/: 24 usable, chunk 32 \[P? ?A?\] in /);
    } finally {
      a.free();
    }
  });

  it('an mmapped block shows [M], its sizes with MiB and its anonymous mapping', () => {
    // Above the dynamic threshold's 32 MiB ceiling: mmapped whatever this process freed before.
    const big = malloc(HUGE);
    try {
      const text = inspect(big);
      expect(big.chunk.isMmapped).toBe(true);
      expect(text).toBe(
        `Allocation <${hex(big.address)} malloc(${HUGE}): ${big.usableSize} (${shortBytes(big.usableSize)}) usable, ` +
          `chunk ${big.chunk.size} (${shortBytes(big.chunk.size)}) [M] in anonymous mapping>`,
      );
      expect(text).toContain('(64.0 MiB) usable');
    } finally {
      big.free();
    }
  });

  it('says how a dead handle died, without touching the allocator', () => {
    const a = calloc(4, 10);
    expect(inspect(a)).toMatch(/^Allocation <0x[0-9a-f]+ calloc\(40 bytes\): \d+ usable/);
    const b = realloc(a, 100);
    expect(inspect(a)).toBe(`Allocation <${hex(a.address)} reallocated>`);
    expect(inspect(b)).toMatch(/ realloc\(…, 100\): \d+ usable, chunk \d+ \[/);
    free(b);
    expect(inspect(b)).toBe(`Allocation <${hex(b.address)} freed>`);
  });

  it('follows the colors and depth options', () => {
    // A chunk of its own mapping (64 MiB is above any mmap threshold glibc
    // sets by itself): a heap chunk's P bit changes whenever Node frees the
    // chunk before it, which can happen between the two views.
    const a = malloc(64 << 20);
    try {
      expect(a.chunk.isMmapped).toBe(true);
      expect(inspect(a)).not.toMatch(ANSI);
      const coloured = inspect(a, { colors: true });
      expect(coloured).toMatch(ANSI);
      expect(stripVTControlCharacters(coloured)).toBe(inspect(a));
      expect(inspect({ nested: { a } }, { depth: 0 })).toBe('{ nested: [Object] }');
      expect(inspect({ nested: { a } }, { depth: 1 })).toBe(`{ nested: { a: [Allocation ${hex(a.address)}] } }`);
    } finally {
      a.free();
    }
  });
});

describe('ChunkHeader and MemoryRegion at the prompt', () => {
  it('a header shows its address, size, flags and size word; prev_size only when P is clear', () => {
    const a = malloc(100);
    try {
      const chunk = a.chunk;
      const text = inspect(chunk);
      expect(text).toMatch(new RegExp(`^ChunkHeader <${hex(a.address - 16n)} size ${chunk.size} \\[${letters(chunk)}\\] \\(size word ${hex(chunk.rawSize)}\\)`));
      expect(text.includes('prev_size')).toBe(!chunk.prevInUse);
    } finally {
      a.free();
    }
  });

  it('an mmapped header has P clear, so its prev_size (the slack before it) is shown', () => {
    const big = malloc(HUGE);
    try {
      const chunk = big.chunk;
      expect(inspect(chunk)).toBe(
        `ChunkHeader <${hex(chunk.address)} size ${chunk.size} (64.0 MiB) [M] (size word ${hex(chunk.rawSize)}), prev_size ${chunk.prevSize}>`,
      );
    } finally {
      big.free();
    }
  });

  it('headers from a plan inspect the same way', () => {
    const { steps } = runPlan([{ op: 'malloc', size: 24 }, { op: 'header', step: 0 }, { op: 'free', step: 0 }]);
    const header = steps[1].header!;
    expect(inspect(header)).toMatch(new RegExp(`^ChunkHeader <${hex(header.address)} size 32 \\[`));
  });

  it('stays plain data: keys, JSON, spreads, equality and structured clones ignore the inspect hook', () => {
    const a = malloc(10);
    try {
      const chunk = a.chunk;
      expect(Object.keys(chunk)).toEqual(['address', 'size', 'rawSize', 'prevSize', 'prevInUse', 'isMmapped', 'nonMainArena']);
      expect({ ...chunk }).toEqual(chunk);
      expect(structuredClone(chunk)).toEqual({ ...chunk });
      const region = regionOf(a.address)!;
      expect(JSON.parse(toJSON(region))).toEqual(JSON.parse(toJSON({ ...region })));
      expect(Object.getOwnPropertySymbols(region).every((s) => !Object.getOwnPropertyDescriptor(region, s)!.enumerable)).toBe(true);
    } finally {
      a.free();
    }
  });

  it('a region shows its range, permissions, size, kind and path; rss when read', () => {
    const heap = maps().find((r) => r.kind === 'heap')!;
    const text = inspect(heap);
    expect(text).toMatch(new RegExp(`^MemoryRegion <${hex(heap.start)}–${hex(heap.end)} rw-p [0-9.]+ (KiB|MiB) heap \\[heap\\]>$`));
    const withRss = maps({ rss: true }).find((r) => r.kind === 'heap')!;
    expect(inspect(withRss)).toMatch(/ heap \[heap\], rss [0-9.]+ (B|KiB|MiB)>$/);
    const anonymous = maps().find((r) => r.kind === 'anonymous' && r.path === '')!;
    expect(inspect(anonymous)).toMatch(/ anonymous>$/);
    expect(inspect(maps(), { depth: 0 })).toMatch(/^\[\n?\s*\[MemoryRegion 0x/);
  });
});

describe('ExperimentResult at the prompt', () => {
  let result: ExperimentResult;
  beforeAll(async () => {
    result = await run('kernel-calls');
  });

  it('is a short record: the question, the counts and where each is, and where it ran', () => {
    const text = inspect(result);
    const lines = text.split('\n');
    expect(lines).toEqual([
      `ExperimentResult kernel-calls: ${result.question}`,
      `  ${result.findings.length} finding${result.findings.length === 1 ? '' : 's'} (.findings), ${result.surprises.length} surprise${result.surprises.length === 1 ? '' : 's'} (.surprises), ` +
        `${result.rows.length} row${result.rows.length === 1 ? '' : 's'} (.rows); all of it as text: .toMarkdown()`,
      `  glibc ${result.environment.glibc}, node ${result.environment.node}, fresh child process`,
    ]);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(120);
    // What it names is there.
    expect(result.findings.length).toBeGreaterThan(0);
    expect(result.toMarkdown()).toContain(result.findings[0]);
  });

  it('is one line at depth 0 and a name when nested past the depth', () => {
    expect(inspect(result, { depth: 0 })).toBe(
      `ExperimentResult kernel-calls <${result.findings.length} finding${result.findings.length === 1 ? '' : 's'}, ` +
        `${result.surprises.length} surprise${result.surprises.length === 1 ? '' : 's'}, ${result.rows.length} row${result.rows.length === 1 ? '' : 's'}>`,
    );
    expect(inspect([result], { depth: 0 })).toBe('[ [ExperimentResult kernel-calls] ]');
  });

  it('colours only when asked', () => {
    expect(inspect(result)).not.toMatch(ANSI);
    const coloured = inspect(result, { colors: true });
    expect(coloured).toMatch(ANSI);
    expect(stripVTControlCharacters(coloured)).toBe(inspect(result));
  });
});

describe('mallocInfo() at the prompt', () => {
  it('is a short record of what the arenas hold, naming where the details are, not the XML', () => {
    const info = mallocInfo();
    const text = inspect(info);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^MallocInfo <${info.arenas.length} arenas?, \\S+ [KMG]?i?B from the system`));
    expect(lines.length).toBeLessThanOrEqual(3 + Math.min(info.arenas.length, 8) + 1);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(140);
    expect(text).not.toContain('<malloc');
    expect(text).not.toContain('[Array]');
    expect(lines.filter((l) => /^ {2}#\d+ (main_arena|thread arena)/.test(l))).toHaveLength(Math.min(info.arenas.length, 8));
    expect(text).toContain(`#0 main_arena: ${shortBytes(info.arenas[0].systemCurrent)} from the system`);
    for (const where of ['.arenas[n].sizes', '.totals', '.raw']) expect(text).toContain(where);
    expect(lines.at(-1)!.endsWith('>')).toBe(true);
    // The data is still all there, and plain.
    expect(info.raw.startsWith('<malloc')).toBe(true);
    expect(Object.keys(info)).toEqual(['version', 'arenas', 'totals', 'raw']);
    expect(JSON.parse(JSON.stringify(info)).arenas).toHaveLength(info.arenas.length);
  });

  it('shows an arena as one line, and the report as one when nested', () => {
    const info = mallocInfo();
    const main = inspect(info.arenas[0]);
    expect(main).not.toContain('\n');
    expect(main).toMatch(/^ArenaInfo <#0 main_arena: .* \d+ bins? with chunks \(\.sizes\)>$/);
    expect(inspect({ info }, { depth: 0 })).toBe(`{ info: [MallocInfo ${info.arenas.length} arena${info.arenas.length === 1 ? '' : 's'}] }`);
  });
});

describe('programBreak() and hex()', () => {
  it('keeps the break a bigint and writes it in hex with the package\'s hex()', () => {
    const brk = programBreak();
    expect(typeof brk).toBe('bigint');
    const text = packageHex(brk);
    expect(text).toMatch(/^0x[0-9a-f]+$/);
    expect(BigInt(text)).toBe(brk);
    expect(packageHex(4096)).toBe('0x1000');
  });
});
