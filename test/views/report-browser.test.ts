// `heapscope report` checked in a real browser: Debian's headless Chromium,
// driven by playwright-core. The screenshot is left in test/artifacts/ for a
// person to look at.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { experiments } from '../../lib/experiments/run';
import { textWidth } from '../../lib/views/text-metrics';
import { foreignEnv } from '../helpers/foreign-env';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// The report is written by a node of its own and read in a browser.
heapRoomNotNeeded();

const CHROMIUM = '/usr/bin/chromium';
const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const ARTIFACTS = path.join(__dirname, '..', 'artifacts');
const REPORT = path.join(ARTIFACTS, 'report.html');
const SCREENSHOT = path.join(ARTIFACTS, 'report.png');
const CHARTED = ['layout', 'chunk-sizes', 'heap-growth', 'mmap-threshold', 'free'];
/** The sections after the experiments: the allocator of the process that wrote the page. */
const ALLOCATOR = ['allocator', 'allocator-arenas', 'allocator-params', 'allocator-bins'];
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic',
];

const installed = fs.existsSync(CHROMIUM);
const inCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
// Outside CI a missing browser is the machine's business, not a failure; in CI it is one (.ci/run installs it).
const skip = !installed && !inCI ? `${CHROMIUM} is not installed (Debian's chromium package; \`bash .ci/deps chromium\`)` : undefined;
if (skip !== undefined) console.warn(`report-browser: skipped: ${skip}`);

describe.skipIf(skip !== undefined)(`heapscope report in headless Chromium${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  let context: BrowserContext | undefined;
  let profile: string;
  const consoleErrors: string[] = [];
  const failed: string[] = [];
  const external: string[] = [];

  beforeAll(async () => {
    if (!installed) {
      throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium package (.ci/run passes it to .ci/deps)`);
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.rmSync(REPORT, { force: true });
    const child = spawnSync(process.execPath, [CLI, 'report', '--out', REPORT], { encoding: 'utf8', timeout: 300_000 });
    expect(child.status, child.stderr).toBe(0);

    // A fresh profile every run: nothing cached or remembered from before.
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ARGS,
      env: foreignEnv(),
      viewport: { width: 1600, height: 1000 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
    page.on('request', (r) => {
      if (r.url() !== pathToFileURL(REPORT).href) external.push(r.url());
    });
    await page.goto(pathToFileURL(REPORT).href, { waitUntil: 'load' });
  }, 600_000);

  afterAll(async () => {
    await context?.close();
    if (profile !== undefined) fs.rmSync(profile, { recursive: true, force: true });
  });

  const page = () => context!.pages()[0];

  it('the CLI wrote one page with every experiment, then the allocator of its own process', () => {
    const html = fs.readFileSync(REPORT, 'utf8');
    for (const e of experiments()) expect(html).toContain(`id="${e.name}"`);
    for (const id of ALLOCATOR) expect(html).toContain(`id="${id}"`);
  });

  it('loads with no console errors, no failed requests and nothing fetched', () => {
    expect(consoleErrors).toEqual([]);
    expect(failed).toEqual([]);
    expect(external).toEqual([]);
  });

  it('has a table of contents linking every section, and every question\'s findings', async () => {
    const sections = await page().$$eval('section.heapscope-result', (list) =>
      list.map((s) => ({ id: s.id, question: s.querySelector('h2')?.textContent, findings: s.querySelectorAll('ul.findings li').length })));
    expect(sections.map((s) => s.id)).toEqual([...experiments().map((e) => e.name), ...ALLOCATOR]);
    for (const s of sections.slice(0, experiments().length)) expect(s.findings, s.id).toBeGreaterThan(0);
    const links = await page().$$eval('nav.toc a', (list) => list.map((a) => a.getAttribute('href')));
    expect(links).toEqual([...experiments().map((e) => `#${e.name}`), '#allocator']);
  });

  it('shows the allocator of the process that wrote it: a row per arena, every mp_ field, the bins of every arena', async () => {
    const tables = await page().$$eval('section.heapscope-allocator', (list) =>
      list.map((s) => ({ id: s.id, rows: [...s.querySelectorAll('table')].map((t) => t.querySelectorAll('tbody tr').length), headings: s.querySelectorAll('h3').length })));
    expect(tables.map((t) => t.id)).toEqual(ALLOCATOR.slice(1));
    const [arenaTable, params, binTables] = tables;
    expect(arenaTable.rows[0]).toBeGreaterThanOrEqual(1);
    // Every field of mp_, and global_max_fast.
    expect(params.rows).toEqual([expect.any(Number)]);
    expect(params.rows[0]).toBeGreaterThan(15);
    // A heading per arena.
    expect(binTables.headings).toBe(arenaTable.rows[0]);
  });

  it('draws every chart: each SVG parses as XML and has visible paths and rects', async () => {
    const charts = await page().$$eval('section.heapscope-result figure.chart svg', (list) =>
      list.map((svg) => {
        const parsed = new DOMParser().parseFromString(new XMLSerializer().serializeToString(svg), 'image/svg+xml');
        const box = svg.getBoundingClientRect();
        return {
          section: svg.closest('section')!.id,
          parseError: parsed.getElementsByTagName('parsererror').length > 0,
          drawn: [...svg.querySelectorAll('path, rect, circle, line')].filter((e) => {
            const b = (e as SVGGraphicsElement).getBBox();
            return b.width > 0 || b.height > 0;
          }).length,
          paths: svg.querySelectorAll('path').length,
          rects: svg.querySelectorAll('rect').length,
          width: box.width,
          height: box.height,
        };
      }));
    expect(charts.map((c) => c.section)).toEqual(CHARTED);
    for (const c of charts) {
      expect(c.parseError, c.section).toBe(false);
      expect(c.paths + c.rects, c.section).toBeGreaterThan(1);
      expect(c.drawn, c.section).toBeGreaterThan(10);
      expect(c.width, c.section).toBeGreaterThan(300);
      expect(c.height, c.section).toBeGreaterThan(200);
    }
  });

  it('draws no chart text wider than the label layout reckons it (textWidth)', async () => {
    const texts = await page().$$eval('section.heapscope-result figure.chart svg text', (list) =>
      list.map((t) => {
        const style = getComputedStyle(t);
        return {
          content: t.textContent ?? '',
          width: (t as SVGTextElement).getBBox().width,
          size: parseFloat(style.fontSize),
          bold: Number(style.fontWeight) >= 600,
        };
      }));
    expect(texts.length).toBeGreaterThan(100);
    // Ink may overhang the advance widths by a fraction of a pixel at the ends; textBox's halo padding covers that.
    for (const t of texts) expect(t.width, `"${t.content}" at ${t.size}px${t.bold ? ' bold' : ''}`).toBeLessThanOrEqual(textWidth(t.content, t.size, t.bold) + 1);
  });

  it('writes a full-page screenshot to test/artifacts/report.png', async () => {
    fs.rmSync(SCREENSHOT, { force: true });
    await page().screenshot({ path: SCREENSHOT, fullPage: true, timeout: 120_000 });
    const png = fs.readFileSync(SCREENSHOT);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    // Width and height from the IHDR chunk: the whole page, not one screen.
    expect(png.readUInt32BE(16)).toBe(1600);
    expect(png.readUInt32BE(20)).toBeGreaterThan(5000);
  }, 180_000);
});
