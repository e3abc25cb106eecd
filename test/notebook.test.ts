// examples/heapscope.ipynb, executed headlessly the way a reader would run it:
// Debian's Jupyter client drives the Deno Jupyter kernel (the one the `deno`
// npm package installs with `deno jupyter --install`), which loads the real
// addon. scripts/run-notebook.py rather than nbconvert: see its docstring.
// The executed notebook is then rendered the way JupyterLab shows it
// (nbconvert's lab template, JupyterLab's own stylesheet) and opened in
// Debian's headless Chromium, to see that every table lays out in it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { foreignEnv, hostLibraries } from './helpers/foreign-env';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { SYNC_CHILD } from './helpers/sync-child';

// The notebook runs in a kernel of its own and is read in a browser.
heapRoomNotNeeded();

const ROOT = path.resolve(__dirname, '..');
const NOTEBOOK = path.join(ROOT, 'examples', 'heapscope.ipynb');
const RUNNER = path.join(ROOT, 'scripts', 'run-notebook.py');
const DENO = path.join(ROOT, 'node_modules', '.bin', 'deno');
// Debian's Jupyter lives in the system Python, not in a pyenv or venv on PATH.
const PYTHON = '/usr/bin/python3';
const DEBIAN_PACKAGES = 'jupyter-nbconvert python3-ipykernel jupyter-client python3-nbclient';
const CHROMIUM = '/usr/bin/chromium';
const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Window widths to lay the notebook out at: a wide screen, and a notebook beside JupyterLab's file browser. */
const WIDTHS = [1280, 800];

// The cells, by id, that show an experiment; those of them with a chart.
const EXPERIMENT_CELLS = ['layout', 'kernel-calls', 'chunk-sizes', 'free', 'mmap-threshold'];
const CHART_CELLS = ['layout', 'chunk-sizes', 'free', 'mmap-threshold'];

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}
interface Cell {
  id: string;
  cell_type: string;
  execution_count?: number | null;
  outputs?: Output[];
}
interface Notebook {
  cells: Cell[];
}

/** Why the notebook cannot run here, or undefined when it can. */
function missingTools(): string | undefined {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} is missing`;
  const probe = spawnSync(PYTHON, ['-c', 'import nbformat, jupyter_client, nbconvert'], { ...SYNC_CHILD, encoding: 'utf8', env: foreignEnv() });
  if (probe.status !== 0) {
    return `Debian's Jupyter is not installed (${probe.stderr.trim().split('\n').pop()}); ` +
      `install it with: bash .ci/deps ${DEBIAN_PACKAGES}`;
  }
  if (!fs.existsSync(DENO)) return `${DENO} is missing: the deno dev dependency is not installed`;
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is missing; install it with: bash .ci/deps chromium`;
  return undefined;
}

/** Runs one of this machine's programs (Deno, Debian's python3), on its own libraries. */
function exec(command: string, args: string[], env: NodeJS.ProcessEnv): string {
  const result = spawnSync(command, args, { cwd: ROOT, env: hostLibraries(env), encoding: 'utf8', timeout: 280_000 });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${path.basename(command)} ${args.join(' ')} exited with ${result.status ?? result.signal}:\n${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

let missing: string | undefined;
let work: string | undefined;
let executed: Notebook;
let env: NodeJS.ProcessEnv;

function cell(id: string): Cell {
  const found = executed.cells.find((c) => c.id === id);
  if (found === undefined) throw new Error(`the notebook has no cell with id ${JSON.stringify(id)}`);
  return found;
}

/**
 * The one bundle a cell showed (with Deno.jupyter.display). The file stores
 * text types as lists of lines; they are joined back here.
 */
function shown(id: string): Record<string, unknown> {
  const bundles = (cell(id).outputs ?? []).filter((o) => o.output_type === 'display_data' || o.output_type === 'execute_result');
  if (bundles.length !== 1 || bundles[0].data === undefined) {
    throw new Error(`cell ${id} should show one value; its outputs: ${JSON.stringify(cell(id).outputs).slice(0, 2000)}`);
  }
  return Object.fromEntries(Object.entries(bundles[0].data).map(([type, value]) =>
    [type, type !== 'application/json' && Array.isArray(value) ? value.join('') : value]));
}

function needTools(context: TestContext): void {
  if (missing !== undefined) context.skip(missing);
}

// After every describe: the rendering below reads what the kernel run wrote.
afterAll(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
});

describe('examples/heapscope.ipynb as stored', () => {
  it('has the cells in order and no outputs', () => {
    const stored = JSON.parse(fs.readFileSync(NOTEBOOK, 'utf8')) as Notebook;
    const code = stored.cells.filter((c) => c.cell_type === 'code');
    expect(code.map((c) => c.id)).toEqual(['setup', 'layout', 'kernel-calls', 'malloc', 'chunk-sizes', 'free', 'mmap-threshold', 'maps']);
    for (const c of code) {
      expect(c.outputs, c.id).toEqual([]);
      expect(c.execution_count, c.id).toBeNull();
    }
  });
});

describe('examples/heapscope.ipynb in the Deno Jupyter kernel', () => {
  beforeAll(() => {
    missing = missingTools();
    if (missing !== undefined) {
      if (process.env.CI === 'true') throw new Error(`the notebook check cannot run in CI: ${missing}`);
      return;
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-notebook-'));
    // `deno jupyter --install` writes the kernelspec under $HOME/.local/share/jupyter;
    // a throwaway HOME keeps the real one untouched, and JUPYTER_PATH points there.
    const home = path.join(work, 'home');
    const data = path.join(home, '.local', 'share');
    fs.mkdirSync(data, { recursive: true });
    exec(DENO, ['jupyter', '--install'], { ...process.env, HOME: home, XDG_DATA_HOME: data, NO_COLOR: '1' });
    const kernelspec = path.join(data, 'jupyter', 'kernels', 'deno', 'kernel.json');
    if (!fs.existsSync(kernelspec)) throw new Error(`deno jupyter --install wrote no ${kernelspec}`);

    env = {
      ...process.env,
      JUPYTER_PATH: path.join(data, 'jupyter'),
      JUPYTER_DATA_DIR: path.join(work, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(work, 'runtime'),
      JUPYTER_CONFIG_DIR: path.join(work, 'config'),
      // A cache of its own, made anew each run: the kernel's children are Deno too. With the shared
      // ~/.cache/deno, after an edit of take-snapshot.ts that kept dist/allocator/take-snapshot.js's
      // length (a doc comment moved), every experiment's child failed in three runs with "SyntaxError:
      // Unexpected token '*'", and all passed once that cache was set aside. The notebook imports no
      // npm: package, so nothing needs fetching.
      DENO_DIR: path.join(work, 'deno'),
      NO_COLOR: '1',
    };
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    // Every cell runs even after an error, so one failure does not hide the others.
    exec(PYTHON, [RUNNER, NOTEBOOK, path.join(work, 'executed.ipynb'), '--timeout', '240'], env);
    executed = JSON.parse(fs.readFileSync(path.join(work, 'executed.ipynb'), 'utf8')) as Notebook;
  }, 300_000);

  it('runs every code cell without an error', (context) => {
    needTools(context);
    const code = executed.cells.filter((c) => c.cell_type === 'code');
    const errors = code.flatMap((c) =>
      (c.outputs ?? []).filter((o) => o.output_type === 'error').map((o) => `${c.id}: ${o.ename}: ${o.evalue}\n${(o.traceback ?? []).join('\n')}`));
    expect(errors).toEqual([]);
    for (const c of code) expect(c.execution_count, c.id).toBeGreaterThan(0);
    expect(String(shown('setup')['text/plain'])).toMatch(/glibc 2\.\d+, page size \d+ bytes/);
  });

  it('shows each experiment as text, HTML and JSON, and its chart as SVG', (context) => {
    needTools(context);
    for (const id of EXPERIMENT_CELLS) {
      const data = shown(id);
      expect(typeof data['text/plain'], id).toBe('string');
      expect(data['text/html'], id).toMatch(/<\w+/);
      const json = data['application/json'] as { name: string; findings: string[]; rows: unknown[] };
      expect(json.name, id).toBe(id);
      expect(json.findings.length, id).toBeGreaterThan(0);
      expect(json.rows.length, id).toBeGreaterThan(0);
      if (CHART_CELLS.includes(id)) {
        expect(typeof data['image/svg+xml'], `${id}: no image/svg+xml in the bundle (toSVG() returned none)`).toBe('string');
        expect(data['image/svg+xml'], id).toMatch(/<svg[\s>]/);
      }
    }
  });

  it('shows malloc(10) as a table and as data read from the allocator', (context) => {
    needTools(context);
    const data = shown('malloc');
    const json = data['application/json'] as {
      address: string; requested: number; freed: boolean; usableSize: number;
      chunk: { address: string; size: number }; region: { start: string; end: string; kind: string };
    };
    expect(json.requested).toBe(10);
    expect(json.freed).toBe(false);
    expect(json.usableSize).toBeGreaterThanOrEqual(10);
    expect(json.chunk.size).toBeGreaterThan(json.usableSize);
    expect(BigInt(json.chunk.address)).toBe(BigInt(json.address) - 16n);
    expect(BigInt(json.region.start) <= BigInt(json.address) && BigInt(json.address) < BigInt(json.region.end)).toBe(true);
    // The table shows the numbers the data holds.
    expect(data['text/html']).toContain('<table');
    expect(data['text/html']).toContain(json.address);
    expect(data['text/html']).toContain(`${json.usableSize} B`);
  });

  it('shows maps() as a table of the regions', (context) => {
    needTools(context);
    const data = shown('maps');
    const regions = data['application/json'] as { start: string; kind: string; path: string }[];
    expect(regions.length).toBeGreaterThan(10);
    expect(regions.some((r) => r.kind === 'text')).toBe(true);
    expect(regions.some((r) => r.kind === 'stack')).toBe(true);
    const html = String(data['text/html']);
    expect(html.match(/<tr>/g)?.length).toBe(regions.length + 1);
    for (const r of regions) expect(html).toContain(r.start);
  });
});

interface CellFit {
  cell: string;
  text: string;
  scrollWidth: number;
  clientWidth: number;
}

describe('examples/heapscope.ipynb rendered as JupyterLab shows it', () => {
  let html: string;
  beforeAll(() => {
    if (missing !== undefined) return;
    // nbconvert's lab template carries JupyterLab's stylesheet, `table-layout: fixed` on every output table included.
    exec(PYTHON, ['-m', 'nbconvert', '--to', 'html', '--template', 'lab', '--output-dir', work!, '--output', 'executed', path.join(work!, 'executed.ipynb')], env);
    html = path.join(work!, 'executed.html');
  }, 120_000);

  it.for(WIDTHS)('fits every table cell in its column at a %i px wide window', async (width, context) => {
    needTools(context);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: BROWSER_ARGS, viewport: { width, height: 900 }, env: foreignEnv() });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      // Only the file itself: anything else it asks for (MathJax, require.js) is not needed for layout.
      await page.route(/^(?!file:)/, (route) => route.abort());
      await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
      const tables = await page.$$eval('.jp-OutputArea-output table', (list) => list.map((table) => ({
        cell: table.closest('.jp-Cell')?.querySelector('.jp-InputArea-editor')?.textContent?.trim().split('\n')[0] ?? '',
        layout: getComputedStyle(table).tableLayout,
        cells: [...table.querySelectorAll('th, td')].map((c) => ({ text: (c.textContent ?? '').slice(0, 60), scrollWidth: c.scrollWidth, clientWidth: c.clientWidth })),
      })));
      // layout, kernel-calls, malloc, chunk-sizes, free, mmap-threshold and maps.
      expect(tables.length).toBe(7);
      // And no output is wider than its cell: a wide table scrolls in its own box, the text beside it wraps.
      const outputs = await page.$$eval('.jp-OutputArea-output', (list) => list.map((o) => ({
        width: o.getBoundingClientRect().width,
        cell: o.closest('.jp-Cell')!.getBoundingClientRect().width,
        scrollWidth: o.scrollWidth,
        clientWidth: o.clientWidth,
      })));
      for (const o of outputs) {
        expect(o.width).toBeLessThanOrEqual(o.cell);
        expect(o.scrollWidth).toBeLessThanOrEqual(o.clientWidth);
      }
      const overflowing: CellFit[] = tables.flatMap((t) => t.cells.filter((c) => c.scrollWidth > c.clientWidth).map((c) => ({ cell: t.cell, ...c })));
      expect(overflowing.slice(0, 5), `${overflowing.length} cells overflow their column`).toEqual([]);
      for (const t of tables) expect(t.layout, t.cell).toBe('auto');
      expect(tables.reduce((n, t) => n + t.cells.length, 0)).toBeGreaterThan(1000);
    } finally {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    }
  }, 120_000);
});
