import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hex, shortBytes } from '../../lib/format';
import { Allocation, HeapWalk, runPlan, walkHeap } from '../../lib/index';
import { walkRegions } from '../../lib/walk';
import { CELL_COLOR, stripRows } from '../../lib/views/charts/walk';
import { cellOf, placeText, stripCells, totalsLine } from '../../lib/views/walk-strip';
import { esc } from '../../lib/views/svg';
import { JSON_CHUNKS } from '../../lib/views/walk';
import { quietCli } from '../helpers/quiet-child';
import { checkWellFormed, svgTexts } from '../helpers/xml';
import { HERE, PAST_FULL_TCACHE } from '../helpers/glibc-here';

const cellRects = (svg: string) => [...svg.matchAll(/<rect class="cell" data-cell="([a-z-]+)"[^>]*fill="([^"]+)"/g)];

// More chunks than application/json carries, some of them heapscope's own.
let kept: Allocation[] = [];
let walk: HeapWalk;

beforeAll(() => {
  kept = [...runPlan(Array.from({ length: JSON_CHUNKS + 500 }, () => ({ op: 'malloc' as const, size: 40 })), { keep: true }).kept.values()];
  walk = walkHeap();
});

afterAll(() => {
  for (const a of kept) a.free();
});

describe('toSVG', () => {
  it('is one well-formed SVG document with a cell per strip cell, coloured by kind', () => {
    expect(walk.main.complete, walk.main.reason).toBe(true);
    const svg = walk.toSVG();
    checkWellFormed(svg);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    const { span } = stripCells(walk.main, 64 * 8);
    // More chunks than cells: one cell per span, the terminal's computation; every region's strip follows [heap]'s.
    expect(span).toBeDefined();
    const rects = cellRects(svg);
    expect(rects.map((m) => m[1])).toEqual(walkRegions(walk).flatMap((h) => stripCells(h, 64 * 8).cells));
    for (const [, cell, fill] of rects) expect(fill).toBe(CELL_COLOR[cell as keyof typeof CELL_COLOR]);
    expect(rects.some((m) => m[1] === 'ours'), 'heapscope allocations are drawn').toBe(true);
    // A cell shows the most telling kind found in its span, so the top
    // chunk has a cell of its own only when it fills a whole span.
    if (walk.main.totals.places.top.size >= 2 * span!) expect(rects.some((m) => m[1] === 'top')).toBe(true);
  });

  it('labels rows with their addresses and sizes, and shows the walk\'s totals and legend', () => {
    const svg = walk.toSVG();
    const texts = svgTexts(svg);
    const { rows, span } = stripRows(walk.main, 64, 8);
    for (const row of rows) {
      expect(texts).toContain(hex(row.address));
      expect(texts).toContain(shortBytes(row.bytes));
    }
    expect(rows[0].address).toBe(walk.main.chunks[0].address);
    // The rows cover the chunks exactly, from the first to the top chunk's end.
    expect(rows.reduce((sum, r) => sum + r.bytes, 0)).toBe(walk.main.totals.bytes);
    expect(texts).toContain(totalsLine(walk.main.totals));
    expect(texts.some((s) => s.startsWith(`one cell per ${shortBytes(span!)}`))).toBe(true);
    for (const label of ['in use', 'heapscope allocation', 'in a tcache', 'in a fastbin', 'in a bin (unsorted, small, large)', 'tcache_perthread_struct', 'top', 'fencepost', 'free, in no bin']) {
      expect(texts).toContain(label);
    }
  });

  it('draws one cell per chunk when they fit, each titled with its chunk', () => {
    const rowsNeeded = Math.ceil(Math.max(...walkRegions(walk).map((h) => h.chunks.length)) / 64);
    const svg = walk.toSVG({ columns: 64, rows: rowsNeeded });
    const rects = cellRects(svg);
    expect(rects.length).toBe(walk.totals.chunks);
    const titles = [...svg.matchAll(/<title>([^<]*)<\/title>/g)].slice(1).map((m) => m[1]);
    expect(titles.length).toBe(walk.totals.chunks);
    walk.main.chunks.forEach((chunk, i) => {
      expect(titles[i].startsWith(esc(`${hex(chunk.address)}: ${chunk.size} B, ${placeText(chunk)}`)), titles[i]).toBe(true);
    });
    const ours = walk.main.chunks.filter((c) => c.allocation !== undefined).length;
    // A kept block may be another arena's chunk that this thread's tcache held: only those in [heap] are in this strip.
    expect(ours).toBeGreaterThanOrEqual(kept.filter((a) => a.address >= walk.main.start && a.address < walk.main.end).length);
    expect(rects.filter((m) => m[1] === 'ours').length).toBe(walk.totals.ours.count);
    expect(walk.totals.ours.count).toBeGreaterThanOrEqual(ours);
    expect(svgTexts(svg)).toContain('one cell per chunk; left: a row\'s first address, right: the bytes its chunks cover');
  });
});

describe('the strip cells', () => {
  it('tell a fastbin chunk (from 2.43, which has none, a small bin\'s) from one in use, in a bin or a tcache, each kind with a colour of its own', () => {
    // Forty 40-byte blocks freed: seven (16 from 2.43) fill their tcache bin, the rest go to a fastbin (guards keep them apart), or from 2.43 to their small bin.
    const before = Array.from({ length: 40 }, () => [{ op: 'malloc' as const, size: 40 }, { op: 'malloc' as const, size: 24 }]).flat();
    const frees = before.map((_, i) => i).filter((i) => i % 2 === 0).map((step) => ({ op: 'free' as const, step }));
    const w = walkHeap({ before: [...before, ...frees] });
    const chunks = [w.main, ...w.threadHeaps].flatMap((h) => h.chunks);
    const past = chunks.find((c) => c.place === PAST_FULL_TCACHE);
    expect(past, `a chunk in a ${PAST_FULL_TCACHE}`).toBeDefined();
    expect(cellOf(past!)).toBe(HERE.fastbins ? 'fastbin' : 'bin');
    expect(cellOf(chunks.find((c) => c.place === 'tcache')!)).toBe('tcache');
    expect(new Set(Object.values(CELL_COLOR)).size).toBe(Object.keys(CELL_COLOR).length);
  });
});

describe('toHTML', () => {
  it('holds the SVG, each total and every mallinfo2 check', () => {
    const html = walk.toHTML();
    const svg = /<svg[\s\S]*<\/svg>/.exec(html)![0];
    checkWellFormed(svg);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    const t = walk.main.totals;
    for (const [what, { count, size }] of Object.entries(t.places)) {
      if (count > 0) expect(html).toContain(`<tr><td>${what}</td><td class="n">${count}</td><td class="n">${size}</td>`);
    }
    expect(html).toContain(`<tr><td>chunks</td><td class="n">${t.chunks}</td><td class="n">${t.bytes}</td>`);
    expect(walk.checks.map((c) => c.field)).toEqual(['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'uordblks', 'fsmblks', 'fordblks', 'keepcost']);
    for (const c of walk.checks) expect(html).toContain(`<td><code>${c.field}</code></td><td class="n">${c.mallinfo}</td><td>${c.equal ? '=' : '≠'}</td><td class="n">${c.walk}</td>`);
  });
});

describe('notebook and REPL', () => {
  it('gives the same MIME bundle to both kernels, with a bounded JSON', () => {
    const bundle = walk[Symbol.for('Jupyter.display')]();
    expect(Object.keys(bundle).sort()).toEqual(['application/json', 'image/svg+xml', 'text/html', 'text/plain']);
    expect(walk._toMime()).toEqual(bundle);
    const json = bundle['application/json'] as {
      main: { chunks: { address: string; place: string; allocation?: { address: string } }[]; totals: unknown };
      truncated?: string; checks: unknown[];
    };
    expect(json.main.chunks.length).toBe(JSON_CHUNKS);
    expect(json.main.chunks[0].address).toBe(hex(walk.main.chunks[0].address));
    expect(json.main.totals).toEqual(walk.main.totals);
    expect(json.checks.length).toBe(walk.checks.length);
    const total = walk.totals.chunks;
    expect(total).toBe(walk.main.chunks.length + (walk.mainTop?.chunks.length ?? 0) + walk.threadHeaps.reduce((n, h) => n + h.chunks.length, 0));
    expect(json.truncated).toBe(`${JSON_CHUNKS} of ${total} chunks shown, in address order from main_arena's first; every total counts all ${total}`);
    expect(JSON.stringify(json).length).toBeLessThan(1_000_000);
  });

  it('inspects as one line with the regions, the totals of every place and the verdict', () => {
    const line = inspect(walk);
    expect(line).not.toContain('\n');
    const regions = 1 + (walk.mainTop === undefined ? 0 : 1) + walk.threadHeaps.length;
    const incomplete = [walk.main, ...(walk.mainTop === undefined ? [] : [walk.mainTop]), ...walk.threadHeaps].filter((r) => !r.complete).length;
    const failed = walk.checks.filter((c) => !c.equal).map((c) => c.field);
    const verdict = [...(walk.consistent ? [] : ['snapshot torn']), ...(incomplete === 0 ? [] : [`${incomplete} walk${incomplete === 1 ? '' : 's'} incomplete`]),
      failed.length === 0 ? 'mallinfo2 agrees' : `mallinfo2 differs: ${failed.join(', ')}`].join('; ');
    expect(line).toBe(`HeapWalk <${regions} region${regions === 1 ? '' : 's'}: ${totalsLine(walk.totals)}; ${verdict}>`);
    expect(walk._toMime()['text/plain']).toBe(line);
  });
});

describe('heapscope walk --svg / --html', () => {
  // With one arena every thread of the child mallocs in main_arena. In a
  // plain node, V8's helper threads did so while the walk copied it: about
  // one run in eight, all five copies were torn and the walk (saying so)
  // differed from mallinfo2(). A quiet node has none, and a break that can grow.
  const cli = (args: string[]) => quietCli(['walk', ...args], { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' });

  it('--svg prints one well-formed SVG document whose totals line is the walk\'s', () => {
    const { status, stdout, stderr } = cli(['--svg']);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const svg = stdout.trim();
    checkWellFormed(svg);
    const line = svgTexts(svg).find((t) => /^\d+ chunks: in use \d+ /.test(t));
    expect(line).toBeDefined();
    // The same run's SVG title names the same count.
    const count = Number(/^(\d+) chunks/.exec(line!)![1]);
    expect(svg).toContain(`, ${count} chunks</title>`);
    expect(cellRects(svg).length).toBeGreaterThan(0);
  });

  it('--html prints the fragment with its mallinfo2 checks, all equal with one arena; --svg with --json is a usage error', () => {
    const { status, stdout } = cli(['--html']);
    expect(status).toBe(0);
    expect(stdout).toMatch(/^<section class="heapscope-result heapscope-walk">/);
    // A torn copy says so above its checks; each check is only meant to agree in a whole one.
    expect(/<h3>mallinfo2\(\)<\/h3><p class="note">([^<]*)/.exec(stdout)?.[1]).toMatch(/^one snapshot, in one native call while nothing changed it /);
    const checks = [...stdout.matchAll(/<td class="n">(\d+)<\/td><td>(=|≠)<\/td><td class="n">(\d+)<\/td>/g)];
    expect(checks.length).toBe(9);
    for (const [, left, mark, right] of checks) {
      expect(mark).toBe('=');
      expect(left).toBe(right);
    }
    const bad = cli(['--svg', '--json']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('exclude each other');
  });
});
