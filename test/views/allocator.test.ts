// The views of arenas(), mallocParams() and bins(), each read against the
// decode it was made from: the state of test/fixtures/allocator-state.c (a
// stopped process with chunks in every kind of list and three thread
// arenas), attached to and copied once; and that copy with one list broken
// on purpose. Terminal, Markdown, HTML, the REPL line and the notebook bundle.
import { inspect, stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sizeRule } from '../../lib/allocator/bin-walk';
import { copiedMemory } from '../../lib/allocator/memory-source';
import { binsResult } from '../../lib/allocator/results';
import { protectPointer } from '../../lib/allocator/safe-linking';
import { decodeAllocator } from '../../lib/allocator/state';
import {
  allocatorSnapshot, arenas, AttachedProcess, attach, ArenasResult, Bin, bins, BinsResult, hex, mallocParams, MallocParamsResult, RemoteSnapshot,
} from '../../lib/index';
import { allocatorSection } from '../../lib/report';
import { toJSONValue } from '../../lib/json';
import { renderArenas, renderBins, renderParams } from '../../lib/views/allocator';
import { AllocatorFixture, startAllocatorFixture } from '../helpers/allocator-fixture';
import { HERE } from '../helpers/glibc-here';

const ANSI = /\x1b\[[0-9;]*m/;
const WIDTHS = [40, 60, 80, 120, 200];
/** Wide enough that no row wraps: each row of a table is one line. */
const WIDE = 2000;

let fixture: AllocatorFixture | undefined;
let skip: string | undefined;
let target: AttachedProcess;
let s: RemoteSnapshot;
let a: ArenasResult;
let p: MallocParamsResult;
let b: BinsResult;

beforeAll(async () => {
  const started = await startAllocatorFixture();
  if (typeof started === 'string') {
    skip = started;
    return;
  }
  fixture = started;
  target = attach(fixture.child.pid!);
  s = target.snapshot();
  a = target.arenas(s);
  p = target.mallocParams(s);
  b = target.bins(s);
}, 60_000);

afterAll(() => fixture?.stop());

type Kind = 'fast' | 'unsorted' | 'small' | 'large';
const lists = (arena: BinsResult['arenas'][number]): { kind: Kind; bin: Bin }[] => [
  ...arena.fastbins.map((bin) => ({ kind: 'fast' as const, bin })),
  ...arena.unsorted.map((bin) => ({ kind: 'unsorted' as const, bin })),
  ...arena.smallbins.map((bin) => ({ kind: 'small' as const, bin })),
  ...arena.largebins.map((bin) => ({ kind: 'large' as const, bin })),
];
const label = (kind: Kind, index: number) => (kind === 'unsorted' ? 'unsorted' : `${kind} ${index}`);
const sizes = (kind: Kind, index: number) => {
  if (kind === 'unsorted') return 'any';
  const { min, max } = sizeRule(kind === 'fast' ? 'fastbin' : 'regular', index);
  return max === undefined ? `${min}+` : max === min ? String(min) : `${min}–${max}`;
};

/** The rows of each arena's table in renderBins' text: label, sizes, count, bytes, the chunks column. */
function binRows(text: string): Map<string, string[][]> {
  const sections = new Map<string, string[][]>();
  let current: string[][] | undefined;
  for (const line of text.split('\n')) {
    const heading = /^(main_arena 0x[0-9a-f]+|thread arena 0x[0-9a-f]+): /.exec(line);
    if (heading !== null) sections.set(heading[1], (current = []));
    const row = /^(fast \d+|unsorted|small \d+|large \d+) +(\S+) +(\d+) +(\d+) +(.*)$/.exec(line);
    if (row !== null) current!.push(row.slice(1));
  }
  return sections;
}

function needsFixture(context: { skip: (reason: string) => void }): void {
  if (skip !== undefined) context.skip(skip);
}

describe('bins views, read against the decode', () => {
  it('the copy is consistent and has chunks in every kind of list (so the checks below are not vacuous)', (context) => {
    needsFixture(context);
    expect(s.consistent).toBe(true);
    expect(b.arenas).toHaveLength(4);
    const main = b.arenas[0];
    for (const kind of ['fastbins', 'unsorted', 'smallbins', 'largebins'] as const) {
      // From 2.43, which has no fastbins, none is listed.
      if (kind === 'fastbins' && !HERE.fastbins) expect(main[kind]).toEqual([]);
      else expect(main[kind].some((bin) => bin.count > 0), kind).toBe(true);
    }
  });

  it('the terminal lists every list that holds chunks, and no other: its size class, count, bytes and chunks in list order', (context) => {
    needsFixture(context);
    const text = renderBins(b, { width: WIDE });
    const sections = binRows(text);
    expect([...sections.keys()]).toEqual(b.arenas.map((x) => (x.kind === 'main' ? `main_arena ${hex(x.arena)}` : `thread arena ${hex(x.arena)}`)));
    for (const arena of b.arenas) {
      const rows = sections.get(arena.kind === 'main' ? `main_arena ${hex(arena.arena)}` : `thread arena ${hex(arena.arena)}`)!;
      const used = lists(arena).filter(({ bin }) => bin.count > 0);
      expect(rows.map((r) => r[0])).toEqual(used.map(({ kind, bin }) => label(kind, bin.index)));
      used.forEach(({ kind, bin }, k) => {
        const [, sizeText, count, bytes, chunks] = rows[k];
        expect(sizeText).toBe(sizes(kind, bin.index));
        expect(Number(count)).toBe(bin.chunks.length);
        expect(Number(bytes)).toBe(bin.chunks.reduce((n, c) => n + c.size, 0));
        const addresses = chunks.match(/0x[0-9a-f]+/g)!;
        expect(addresses).toEqual(bin.chunks.slice(0, 8).map((c) => hex(c.address)));
        if (bin.chunks.length > 8) expect(chunks).toContain(`… ${bin.chunks.length - 8} more`);
        // Sizes beside the addresses only where the list holds more than one size.
        const mixed = new Set(bin.chunks.map((c) => c.size)).size > 1;
        if (mixed) expect(chunks).toContain(`${hex(bin.chunks[0].address)}(${bin.chunks[0].size})`);
        else expect(chunks).not.toContain('(');
      });
      const total = lists(arena).length;
      expect(text).toContain(used.length === 0 ? `All ${total} lists are empty.` : `The other ${total - used.length} of the ${total} lists are empty.`);
    }
    const chunks = b.arenas.flatMap((x) => lists(x)).reduce((n, { bin }) => n + bin.count, 0);
    expect(text.split('\n')[0]).toMatch(new RegExp(`^Bins of 4 arenas: ${chunks} chunks \\(\\d+ bytes\\) in \\d+ lists$`));
    expect(text).toContain('Every list was followed to its end and checked');
  });

  it.for(WIDTHS)('keeps every line within %i columns; colour only when asked, and it adds nothing but escape codes', (width, context) => {
    needsFixture(context);
    for (const text of [renderBins(b, { width }), renderArenas(a, { width }), renderParams(p, { width })]) {
      expect(text).not.toMatch(ANSI);
      expect(Math.max(...text.split('\n').map((l) => [...l].length))).toBeLessThanOrEqual(width);
    }
    for (const [coloured, plain] of [
      [renderBins(b, { width, color: true }), renderBins(b, { width })],
      [renderArenas(a, { width, color: true }), renderArenas(a, { width })],
      [renderParams(p, { width, color: true }), renderParams(p, { width })],
    ]) {
      expect(coloured).toMatch(ANSI);
      expect(stripVTControlCharacters(coloured)).toBe(plain);
    }
  });

  it('a broken list: its row keeps the chunks read before the break, and the reason is printed, marked', (context) => {
    needsFixture(context);
    // main_arena's first fastbin of two chunks or more (from 2.43, which has none, its first such small bin):
    // its second chunk's link made to point back at the first, a cycle.
    const { kind, bin: list } = lists(b.arenas[0]).find((l) => (l.kind === 'fast' || l.kind === 'small') && l.bin.count >= 2)!;
    const [first, second] = list.chunks;
    const ranges = s.image.memory.ranges.map((r) => ({ ...r, bytes: Buffer.from(r.bytes) }));
    const link = second.address + 16n;
    const range = ranges.find((r) => link >= r.base && link + 8n <= r.base + BigInt(r.bytes.length))!;
    // Safe-Linking protects a fastbin's links, not a small bin's.
    const protect = kind === 'fast' && s.image.layout.safeLinking;
    range.bytes.writeBigUInt64LE(protect ? protectPointer(link, first.address) : first.address, Number(link - range.base));
    const state = decodeAllocator({ ...s.image, memory: copiedMemory(ranges) });
    const broken = binsResult({ state, info: { attempts: 1, consistent: true } });
    const bin = lists(broken.arenas[0]).find((l) => l.kind === kind && l.bin.index === list.index)!.bin;
    expect(bin.reason).toBe(`the list comes back to ${hex(first.address)}${kind === 'fast' ? '' : " without returning to the bin's header"}: a cycle`);
    const text = renderBins(broken, { width: WIDE });
    const name = label(kind, list.index);
    const row = binRows(text).get(`main_arena ${hex(broken.arenas[0].arena)}`)!.find((r) => r[0] === name)!;
    expect(row.slice(2, 4)).toEqual(['2', String(2 * first.size)]);
    expect(text).toContain(`  ! ${name} stops after 2 chunks: ${bin.reason}`);
    expect(text.split('\n')[1]).toBe('! 1 list broken: each stops at its first inconsistency, with the chunks read before it; the reasons are below.');
    expect(renderBins(broken, { width: WIDE, color: true })).toMatch(new RegExp(`\\x1b\\[31m${name}\\x1b`));
    expect(broken.toMarkdown()).toContain(`> **!** ${name} stops after 2 chunks: ${bin.reason}`);
    expect(inspect(broken)).toMatch(/^BinsResult <4 arenas: \d+ chunks \(.+\) in \d+ lists; 1 list broken\n/);
  });
});

describe('arenas and mp_ views, read against the decode', () => {
  it('the arenas table has a row per arena in list order, with its kind, system_mem, top size and threads; the heaps table every heap', (context) => {
    needsFixture(context);
    const text = renderArenas(a, { width: WIDE });
    const rows = text.split('\n').filter((l) => /^0x[0-9a-f]+ +(main|thread) /.test(l)).map((l) => l.split(/ {2,}/));
    expect(rows.map((r) => [r[0], r[1]])).toEqual(a.arenas.map((x) => [hex(x.address), x.kind]));
    a.arenas.forEach((x, k) => {
      expect(rows[k]).toEqual([
        hex(x.address), x.kind, x.kind === 'main' ? `[heap] ${hex(x.memory[0].start)}–${hex(x.memory[0].end)}` : `${x.heaps.length} heap${x.heaps.length === 1 ? '' : 's'}`,
        String(x.systemMem), String(x.maxSystemMem), hex(x.top.address), String(x.top.size), hex(x.lastRemainder),
        // have_fastchunks: gone with the fastbins from 2.43, and its column with it.
        ...(HERE.fastbins ? [x.haveFastchunks ? 'yes' : 'no'] : []), String(x.attachedThreads), `${hex(x.flags)} ${x.noncontiguous ? 'noncontiguous' : 'contiguous'}`,
      ]);
    });
    // The first thread arena grew a second heap.
    const heaps = a.arenas.flatMap((x) => x.heaps.map((h) => [hex(x.address), hex(h.address), String(h.size), String(h.mprotectSize), hex(h.prev)]));
    expect(heaps.length).toBeGreaterThan(3);
    for (const h of heaps) expect(text).toMatch(new RegExp(`^${h.join(' +')}( |$)`, 'm'));
    expect(text).toContain("main_arena's next list leads back to it after 4 arenas: every arena is here.");
    // At 80 columns the table keeps the arena, its kind and its sizes, dropping the rest from the right
    // (from 2.43, without the fastchunks column, the top's address fits too).
    expect(renderArenas(a, { width: 80 }).split('\n').find((l) => l.startsWith('arena')))
      .toMatch(HERE.fastbins ? /^arena +kind +system_mem +top size +fastchunks +threads$/ : /^arena +kind +system_mem +top +top size +threads$/);
  });

  it('the mp_ table has every field of this version in order with its value and meaning, then global_max_fast', (context) => {
    needsFixture(context);
    const text = renderParams(p, { width: WIDE });
    // From 2.43 there is no global_max_fast: no row, and the reason in its place.
    const none = HERE.globalMaxFast === 'none';
    const names = [...p.fields.map((f) => f.name), ...(none ? [] : ['global_max_fast'])];
    const rows = text.split('\n').map((l) => l.split(/ {2,}/)).filter((r) => [...names, 'global_max_fast'].includes(r[0]));
    expect(rows.map((r) => r[0])).toEqual(names);
    p.fields.forEach((f, k) => {
      expect(rows[k][1]).toBe(f.name === 'sbrk_base' ? hex(f.value as bigint) : String(f.value));
      expect(rows[k][2]).toBe(f.meaning);
    });
    expect(p.globalMaxFast.found).toBe(!none);
    if (p.globalMaxFast.found) expect(rows[rows.length - 1][1]).toBe(String(p.globalMaxFast.value));
    else expect(text).toContain(p.globalMaxFast.reason.slice(0, 40));
    expect(text.split('\n')[0]).toBe(`mp_ (struct malloc_par) at ${hex(p.address)}: ${p.fields.length} fields${none ? '' : ', and global_max_fast'}`);
  });
});

describe('documents, the REPL and notebooks', () => {
  it('Markdown: a heading, and a table row per listed bin, arena and field, addresses as code', (context) => {
    needsFixture(context);
    const md = b.toMarkdown();
    expect(md.startsWith('## Bins of 4 arenas: ')).toBe(true);
    for (const arena of b.arenas) {
      for (const { kind, bin } of lists(arena).filter((l) => l.bin.count > 0)) {
        const sum = bin.chunks.reduce((n, c) => n + c.size, 0);
        expect(md).toContain(`| ${label(kind, bin.index)} | ${sizes(kind, bin.index)} | ${bin.count} | ${sum} | \`${hex(bin.chunks[0].address)}`);
      }
    }
    for (const x of a.arenas) expect(a.toMarkdown()).toContain(`| \`${hex(x.address)}\` | ${x.kind} |`);
    for (const f of p.fields) expect(p.toMarkdown()).toContain(`| \`${f.name}\` |`);
  });

  it('HTML: self-contained fragments with the same rows, nothing fetched, no scripts', (context) => {
    needsFixture(context);
    for (const html of [a.toHTML(), p.toHTML(), b.toHTML()]) {
      expect(html).toMatch(/^<section class="heapscope-result heapscope-allocator" id="allocator-(arenas|params|bins)"><style>/);
      expect(html).not.toMatch(/<script|src=|href=/);
    }
    const html = b.toHTML();
    const rows = html.match(/<tr><td[^>]*>(fast \d+|unsorted|small \d+|large \d+)<\/td>/g)!;
    expect(rows).toHaveLength(b.arenas.flatMap((x) => lists(x)).filter((l) => l.bin.count > 0).length);
    for (const x of b.arenas) for (const { bin } of lists(x)) for (const c of bin.chunks.slice(0, 64)) expect(html).toContain(hex(c.address));
  });

  it('the REPL shows each in a line, with one line an arena at the top level', (context) => {
    needsFixture(context);
    const chunks = b.arenas.flatMap((x) => lists(x)).reduce((n, l) => n + l.bin.count, 0);
    const bins = inspect(b, { colors: false }).split('\n');
    expect(bins[0]).toMatch(new RegExp(`^BinsResult <4 arenas: ${chunks} chunks \\(.+\\) in \\d+ lists; every list complete$`));
    expect(bins[1]).toMatch(new RegExp(`^ {2}main_arena ${hex(b.arenas[0].arena)}: ${HERE.fastbins ? 'fast \\d+ in \\d+ bins?, ' : ''}unsorted \\d+, small \\d+ in \\d+ bins?, large \\d+ in \\d+ bins?$`));
    expect(bins).toHaveLength(b.arenas.length + 2);
    expect(inspect({ b }, { depth: 0 })).toBe('{ b: [BinsResult 4 arenas] }');
    expect(inspect([b], { depth: 1 })).toMatch(/^\[\s*BinsResult <4 arenas: .*every list complete>\s*\]$/s);

    const arenas = inspect(a, { colors: false }).split('\n');
    expect(arenas[0]).toMatch(/^ArenasResult <4 arenas, .+ from the system; the list is complete$/);
    a.arenas.forEach((x, k) => expect(arenas[k + 1]).toContain(x.kind === 'main' ? `main_arena ${hex(x.address)}: ` : `thread arena ${hex(x.address)}: `));

    const params = inspect(p, { colors: false });
    const value = (name: string) => String(p.fields.find((f) => f.name === name)!.value);
    expect(params.split('\n')[0]).toBe(`MallocParamsResult <mp_ ${hex(p.address)}: trim_threshold ${value('trim_threshold')}, top_pad ${value('top_pad')}, ` +
      `mmap_threshold ${value('mmap_threshold')}, arena_max ${value('arena_max')}, n_mmaps ${value('n_mmaps')}, tcache_count ${value('tcache_count')}, ` +
      `tcache_max_bytes ${value('tcache_max_bytes')}` +
      // From 2.43, which has no global_max_fast, nothing; where it was not found, a question mark.
      (p.globalMaxFast.found ? `, global_max_fast ${p.globalMaxFast.value}` : 'absent' in p.globalMaxFast ? '' : ', global_max_fast ?'));
    // Coloured only when inspect is asked to colour.
    expect(inspect(b, { colors: true })).toMatch(ANSI);
  });

  it('a notebook gets the REPL text, the HTML and the data as JSON; JSON, spreads and keys see only the data', (context) => {
    needsFixture(context);
    for (const result of [a, p, b]) {
      const bundle = (result as unknown as Record<symbol, () => Record<string, unknown>>)[Symbol.for('Jupyter.display')]();
      expect(Object.keys(bundle)).toEqual(['text/plain', 'text/html', 'application/json']);
      expect(bundle['text/plain']).toBe(inspect(result, { colors: false }));
      expect(bundle['text/html']).toBe(result.toHTML());
      expect(bundle['application/json']).toEqual(toJSONValue({ ...result }));
      expect((result as unknown as { _toMime(): unknown })._toMime()).toEqual(bundle);
    }
    expect(Object.keys(b)).toEqual(['arenas', 'snapshot']);
    expect(JSON.parse(JSON.stringify(toJSONValue(b)))).toEqual(toJSONValue({ ...b }));
    expect(structuredClone(a)).toEqual({ ...a });
  });
});

describe('the report\'s section on its own process', () => {
  it('holds the arenas, mp_ and bins of one snapshot of this process, as their own HTML views draw them', () => {
    const snapshot = allocatorSnapshot();
    const html = allocatorSection(snapshot);
    expect(html).toMatch(new RegExp(`^<section class="heapscope-result" id="allocator"><h2>The allocator of the process that wrote this page</h2><p class="env">Process ${process.pid}, glibc `));
    const unstyled = (fragment: string) => fragment.replace(/<style>[^<]*<\/style>/, '');
    const parts = [arenas(snapshot).toHTML(), mallocParams(snapshot).toHTML(), bins(snapshot).toHTML()].map(unstyled);
    expect(html.endsWith(parts.join(''))).toBe(true);
    expect(html).not.toContain('<style>');
    for (const a of arenas(snapshot).arenas) expect(html).toContain(`<code>${hex(a.address)}</code>`);
  });
});
