import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChunkSizeRow } from '../../lib/experiments/chunk-sizes';
import { stairs } from '../../lib/experiments/chunk-sizes/measure';
import { FreeRow } from '../../lib/experiments/free';
import { HeapGrowthRow } from '../../lib/experiments/heap-growth';
import { LayoutRow } from '../../lib/experiments/layout';
import { MmapThresholdRow } from '../../lib/experiments/mmap-threshold';
import { bracketOf } from '../../lib/experiments/mmap-threshold/prober';
import { ExperimentResultView } from '../../lib/experiments/result';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { hex, shortBytes } from '../../lib/format';
import { reportHTML } from '../../lib/report';
import { staircaseRows } from '../../lib/experiments/chunk-sizes/table';
import { breakOf } from '../../lib/experiments/free/table';
import { gapLabel, layoutBlocks, probeLabel } from '../../lib/experiments/layout/chart';
import { probeRows } from '../../lib/experiments/mmap-threshold/table';
import { MARKDOWN_ROWS } from '../../lib/views/markdown';
import { overlaps } from '../../lib/views/labels';
import { esc } from '../../lib/views/svg';
import { markBoxes, Placed, svgSize, textBoxes } from '../helpers/svg-geometry';
import { checkWellFormed, svgTexts } from '../helpers/xml';
import { SYNC_CHILD } from '../helpers/sync-child';

const CHARTED = ['layout', 'chunk-sizes', 'heap-growth', 'mmap-threshold', 'free'] as const;
/** One experiment without a chart. */
const PLAIN = 'kernel-calls';

const results = new Map<string, ExperimentResult>();
const get = <Row extends object>(name: string) => results.get(name)! as ExperimentResult<Row>;

beforeAll(async () => {
  for (const name of [...CHARTED, PLAIN]) results.set(name, await run(name));
}, 120_000);

describe('the well-formedness checker', () => {
  it('refuses what is not XML', () => {
    expect(() => checkWellFormed('<svg><g></svg>')).toThrow(/closes/);
    expect(() => checkWellFormed('<svg><text>a & b</text></svg>')).toThrow(/bare &/);
    expect(() => checkWellFormed('<svg><text>a < b</text></svg>')).toThrow(/starts no tag/);
    expect(() => checkWellFormed('<svg x=1/>')).toThrow(/malformed/);
    expect(() => checkWellFormed('<svg/><svg/>')).toThrow(/more than one root/);
    expect(() => checkWellFormed('<svg><text a="1">x &amp; &lt;y&gt;</text><g/></svg>')).not.toThrow();
  });
});

describe('toSVG', () => {
  it('is one well-formed SVG document for every charted experiment, with drawn elements', () => {
    for (const name of CHARTED) {
      const svg = results.get(name)!.toSVG();
      expect(svg, name).toBeDefined();
      checkWellFormed(svg!);
      expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(svg!.match(/<(path|rect|circle|line)\b/g)!.length, name).toBeGreaterThan(10);
      expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    }
  });

  it('is undefined where there is no chart', () => {
    expect(results.get(PLAIN)!.toSVG()).toBeUndefined();
  });

  it('escapes text: a question with markup stays text', () => {
    const real = results.get('chunk-sizes')!;
    const odd = new ExperimentResultView({ ...real, question: 'malloc(n) < "n" & <b>more</b>?' });
    const svg = odd.toSVG()!;
    checkWellFormed(svg);
    expect(svgTitle(svg)).toBe('malloc(n) < "n" & <b>more</b>? Chunk size and usable size for every request from 0 to 1024 bytes');
    expect(odd.toHTML()).toContain(`<h2>${esc(odd.question)}</h2>`);
    expect(odd.toHTML()).not.toContain('<b>more</b>');
  });
});

function svgTitle(svg: string): string {
  return svgTexts(svg.replace(/<title>([^<]*)<\/title>/, '<text>$1</text>'))[0];
}

describe('chart labels match the rows', () => {
  it('layout: every address drawn is a row\'s address or a region\'s edge, every gap its real size', () => {
    const result = get<LayoutRow>('layout');
    const svg = result.toSVG()!;
    const texts = svgTexts(svg).join('\n');
    const known = new Set<string>();
    for (const r of result.rows) {
      known.add(hex(r.address));
      if (r.region !== undefined) known.add(hex(r.region.start)).add(hex(r.region.end));
    }
    const drawn = texts.match(/0x[0-9a-f]+/g)!;
    expect(drawn.length).toBeGreaterThan(10);
    for (const a of drawn) expect(known, a).toContain(a);
    const blocks = layoutBlocks(result.rows);
    for (let i = 1; i < blocks.length; i++) {
      if (blocks[i].start > blocks[i - 1].end) expect(texts).toContain(gapLabel(blocks[i].start - blocks[i - 1].end));
    }
    for (const r of result.rows.filter((row) => row.type === 'probe')) expect(texts).toContain(probeLabel(r));
    // The picture's order: kernel at the top, then stack, the mmap region, heap, node's bss, data, text.
    const tiers = [...svg.matchAll(/class="tier"[^>]*>([^<]*)</g)].map((m) => m[1]);
    expect(tiers.slice(0, 4)).toEqual(['kernel', 'stack', 'mmap region', 'heap']);
    expect(tiers.slice(-3)).toEqual(['bss (node)', 'data (node)', 'text (node)']);
  });

  it('chunk-sizes: each labelled stair is the run of requests that got that chunk', () => {
    const result = get<ChunkSizeRow>('chunk-sizes');
    const rows = staircaseRows(result.rows);
    const labels = svgTexts(result.toSVG()!).map((t) => /^(\d+)(?:–(\d+))? B → (\d+)-byte chunk, (\d+) usable$/.exec(t)).filter((m) => m !== null);
    expect(labels.length).toBe(4);
    const all = stairs(rows);
    for (const m of labels) {
      const [from, to, chunk, usable] = [m![1], m![2] ?? m![1], m![3], m![4]].map(Number);
      expect(all).toContainEqual({ from, to, chunkSize: chunk });
      for (let n = from; n <= to; n++) expect(rows[n].chunkSize).toBe(chunk);
      expect(rows[from].usableSize).toBe(usable);
    }
    expect(labels[0]![1]).toBe('0');
    expect(Number(labels[3]![2])).toBe(rows[rows.length - 1].request);
  });

  it('heap-growth: the breaks named are the measured ones, the first step its real size', () => {
    const result = get<HeapGrowthRow>('heap-growth');
    const texts = svgTexts(result.toSVG()!);
    const after = (name: string) => texts[texts.indexOf(`${name}:`) + 1];
    const mallocs = result.rows.filter((r) => r.op === 'malloc');
    const frees = result.rows.filter((r) => r.op === 'free');
    expect(after('start')).toBe(hex(mallocs[0].breakBefore));
    expect(after('peak')).toBe(hex(mallocs[mallocs.length - 1].breakAfter));
    expect(after('after the frees')).toBe(hex(frees[frees.length - 1].breakAfter));
    const first = texts.map((t) => /^first step: \+(.+) at malloc (\d+)$/.exec(t)).find((m) => m !== null)!;
    const row = mallocs[Number(first[2]) - 1];
    expect(row.breakAfter).toBeGreaterThan(row.breakBefore);
    expect(mallocs.slice(0, Number(first[2]) - 1).every((r) => r.breakAfter === r.breakBefore)).toBe(true);
    expect(first[1]).toBe(shortBytes(Number(row.breakAfter - row.breakBefore)));
    expect(texts).toContain(`bytes requested and still live (${mallocs.length} × malloc(${mallocs[0].size}), then freed oldest first)`);
  });

  it('mmap-threshold: one mark per probe, and each threshold drawn is a bracket a phase located', () => {
    const result = get<MmapThresholdRow>('mmap-threshold');
    const svg = result.toSVG()!;
    const probes = probeRows(result.rows);
    expect(svg.match(/class="probe /g)!.length).toBe(probes.length);
    const phases = [...new Set(probes.map((r) => r.phase))];
    const his = new Set(phases.map((p) => bracketOf(result.rows, p).hi).filter((v) => v !== undefined));
    const drawn = svgTexts(svg).map((t) => /^≤ (\d+)$/.exec(t)).filter((m) => m !== null).map((m) => Number(m![1]));
    expect(drawn.length).toBeGreaterThan(0);
    for (const hi of drawn) expect(his).toContain(hi);
    expect(svg.match(/class="threshold"/g)!.length).toBe(phases.filter((p) => bracketOf(result.rows, p).hi !== undefined).length);
  });

  it('free: every trim, RSS and mmapped-bytes label is a measured value', () => {
    const result = get<FreeRow>('free');
    const rows = result.rows;
    const texts = svgTexts(result.toSVG()!);
    // Each trim within a phase: its size, and how many trims of that size came right before it, step after step.
    const down = rows.map((r, i) => (i > 0 && r.phase === rows[i - 1].phase ? Number(breakOf(rows[i - 1]) - breakOf(r)) : 0));
    const runs: { size: number; count: number }[] = [];
    down.forEach((d, i) => {
      if (d <= 0) return;
      if (i > 0 && down[i - 1] === d && runs.length > 0) runs[runs.length - 1].count++;
      else runs.push({ size: d, count: 1 });
    });
    // Trim labels exactly when the run saw the break come down (the free
    // experiment's own test demands that it does; this one checks the chart):
    // one per run of trims of one size, `× n` when the run has more than one.
    const trims = texts.map((t) => /^−(\d+) B(?: × (\d+))?$/.exec(t)).filter((m) => m !== null);
    expect(trims.map((m) => ({ size: Number(m![1]), count: Number(m![2] ?? 1) }))).toEqual(runs);
    expect(trims.every((m) => m![2] === undefined || Number(m![2]) > 1)).toBe(true);
    const rss = new Set(rows.map((r) => (r.kind === 'step' ? r.rssPages : undefined)).filter((v) => v !== undefined));
    const rssLabels = texts.map((t) => /^(\d+) (?:trim|after)/.exec(t)).filter((m) => m !== null);
    expect(rssLabels.length).toBeGreaterThan(2);
    for (const m of rssLabels) expect(rss).toContain(Number(m![1]));
    const mmapped = new Set(rows.map((r) => (r.kind === 'step' ? r.mmappedBytes : undefined)));
    const mmapLabels = texts.map((t) => /^(\d+) B after (malloc|free)$/.exec(t)).filter((m) => m !== null);
    expect(mmapLabels.length).toBeGreaterThan(0);
    for (const m of mmapLabels) expect(mmapped).toContain(Number(m![1]));
    expect(texts).toContain(`max ${hex(rows.map(breakOf).reduce((a, b) => (b > a ? b : a)))}`);
    expect(texts).toContain(`min ${hex(rows.map(breakOf).reduce((a, b) => (b < a ? b : a)))}`);
  });
});

/**
 * The labels of the classes named cover no drawn point, no other text and no
 * other label, and stay inside the chart.
 */
function expectClearLabels(svg: string, classes: readonly string[]): Placed[] {
  const texts = textBoxes(svg);
  const labels = texts.filter((t) => classes.includes(t.className));
  const marks = markBoxes(svg);
  const { width, height } = svgSize(svg);
  const at = (p: Placed) => `"${p.content}" (${Object.values(p.box).map((v) => v.toFixed(1)).join(', ')})`;
  for (const label of labels) {
    expect(label.box.x0 >= 0 && label.box.x1 <= width && label.box.y0 >= 0 && label.box.y1 <= height, `${at(label)} inside ${width}×${height}`).toBe(true);
    for (const mark of marks) expect(overlaps(label.box, mark.box), `${at(label)} covers the point ${at(mark)}`).toBe(false);
    for (const other of texts) {
      if (other !== label) expect(overlaps(label.box, other.box), `${at(label)} overlaps ${at(other)}`).toBe(false);
    }
  }
  return labels;
}

describe('chart labels keep clear of the data and of each other', () => {
  it('mmap-threshold: each threshold label off every probe\'s mark and every other text', () => {
    const svg = get<MmapThresholdRow>('mmap-threshold').toSVG()!;
    expect(expectClearLabels(svg, ['threshold-label']).length).toBeGreaterThan(0);
  });

  it('free: the trim, RSS and mmapped-bytes labels off every dot, each other and the axis texts', () => {
    const svg = get<FreeRow>('free').toSVG()!;
    expect(expectClearLabels(svg, ['move-label', 'rss-label', 'mmap-label']).length).toBeGreaterThan(2);
  });
});

describe('toMarkdown', () => {
  it('has the question as heading, the environment, every finding and surprise, and a bounded table', () => {
    for (const result of results.values()) {
      const md = result.toMarkdown();
      expect(md.startsWith(`## ${result.question}\n`)).toBe(true);
      expect(md).toContain(`glibc ${result.environment.glibc}`);
      expect(md).toContain(`Node.js ${result.environment.node}`);
      for (const f of result.findings) expect(md).toContain(`- ${f}\n`);
      if (result.surprises.length > 0) expect(md).toContain('### Surprises');
      for (const s of result.surprises) expect(md).toContain(`- ${s}\n`);
      const table = md.split('\n').filter((l) => l.startsWith('|'));
      expect(table.length).toBeGreaterThan(2);
      // At most MARKDOWN_ROWS lines, and a ⋮ row wherever lines were left out between them.
      const cuts = table.filter((l) => /^\| ⋮( \| ⋮)* \|$/.test(l)).length;
      expect(table.length - cuts).toBeLessThanOrEqual(MARKDOWN_ROWS + 2);
      // Every row has as many cells as the header.
      const cells = (l: string) => l.replace(/\\\|/g, '').split('|').length;
      for (const l of table) expect(cells(l), `${result.name}: ${l}`).toBe(cells(table[0]));
    }
  });

  it('layout: the table shows the rows\' addresses', () => {
    const result = get<LayoutRow>('layout');
    const md = result.toMarkdown();
    for (const r of result.rows) expect(md).toContain(hex(r.address));
  });
});

describe('toHTML', () => {
  it('is a fragment with the findings, the chart beside a table, and nothing fetched or run', () => {
    for (const result of results.values()) {
      const html = result.toHTML();
      expect(html.startsWith(`<section class="heapscope-result" id="${result.name}">`)).toBe(true);
      expect(html).toContain('<style>');
      for (const f of result.findings) expect(html).toContain(`<li>${esc(f)}</li>`);
      expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|url\(|@import/i);
      // The only URL is the SVG namespace.
      expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:/);
      expect(html).toContain('<table style="table-layout:auto;');
      const svg = result.toSVG();
      if (svg !== undefined) expect(html).toContain(svg);
    }
  });
});

describe('reportHTML', () => {
  it('is one page with a table of contents linking every section', () => {
    const list = [...results.values()];
    const page = reportHTML(list);
    expect(page.startsWith('<!DOCTYPE html>')).toBe(true);
    for (const r of list) {
      expect(page).toContain(`<a href="#${r.name}">${esc(r.question)}</a>`);
      expect(page).toContain(`id="${r.name}"`);
    }
    expect(page.match(/<style>/g)).toHaveLength(1);
    expect(page).not.toMatch(/<script|\bsrc=/i);
  });
});

describe('heapscope report', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'dist', 'cli.js'), ...args], { ...SYNC_CHILD, encoding: 'utf8' });

  it('exits 2 with the usage without --out', () => {
    const child = cli('report');
    expect(child.status).toBe(2);
    expect(child.stderr).toContain('report needs --out <file>');
    expect(child.stderr).toContain('report --out <file>');
  });

  it('exits 1 with the reason when the file cannot be written', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-report-'));
    try {
      const child = cli('report', '--out', path.join(dir, 'missing', 'report.html'));
      expect(child.status).toBe(1);
      expect(child.stderr).toMatch(/ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
