// Every view of every experiment (and of a heap walk), rendered from rows
// recorded once, must come out byte for byte as recorded. The recordings are
// real runs; HEAPSCOPE_RECORD_VIEWS=1 records them again, and
// HEAPSCOPE_RECORD_VIEWS=views renders the recorded rows again without
// running anything, for a change that means to alter views and nothing
// measured (then review the diff: a changed view is a changed output).
// HEAPSCOPE_RECORD_ONLY=name[,name…] with HEAPSCOPE_RECORD_VIEWS=1 records
// only those experiments (a new one, say) and renders the report again from
// every recording, leaving the others' rows and the walk as recorded.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { experiments, run } from '../../lib/experiments/run';
import { ResultData } from '../../lib/experiments/types';
import { toJSON } from '../../lib/json';
import { HeapWalkData } from '../../lib/walk';
import { decode, encode, reportView, resultViews, walkViews } from '../helpers/view-fixtures';
import { SYNC_CHILD } from '../helpers/sync-child';

const DIR = path.join(__dirname, '..', 'fixtures', 'views');
const NAMES = experiments().map((e) => e.name);
const RECORD = process.env.HEAPSCOPE_RECORD_VIEWS === '1';
const RERENDER = process.env.HEAPSCOPE_RECORD_VIEWS === 'views';
const ONLY = process.env.HEAPSCOPE_RECORD_ONLY?.split(',').filter((n) => n !== '');

function plain<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value)) as T;
}

// Rows as JSON run to megabytes: those files are kept gzipped.
const BIG = new Set(['data.json', 'json.json', 'bundle.json', 'cli.json']);

function store(file: string, text: string): void {
  if (BIG.has(path.basename(file))) fs.writeFileSync(`${file}.gz`, zlib.gzipSync(text, { level: 9 }));
  else fs.writeFileSync(file, text);
}

function load(file: string): string {
  return BIG.has(path.basename(file)) ? zlib.gunzipSync(fs.readFileSync(`${file}.gz`)).toString('utf8') : fs.readFileSync(file, 'utf8');
}

const ROOT = path.resolve(__dirname, '..', '..');

/** The data as recorded: the checkout's path (in mapped file names) replaced by a neutral one. */
function recorded<T extends object>(data: T): T {
  const encoded = toJSON(encode(data), 0);
  if (!isDeepStrictEqual(decode(JSON.parse(encoded)), data)) throw new Error('the recorded data does not round-trip');
  return decode(JSON.parse(encoded.replaceAll(ROOT, '/home/user/heapscope'))) as T;
}

function write(dir: string, data: object, views: Record<string, string>): void {
  const encoded = toJSON(encode(data), 0);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  store(path.join(dir, 'data.json'), encoded);
  for (const [file, text] of Object.entries(views)) store(path.join(dir, file), text);
}

/** The views of a recording replaced by `views`, its data left as recorded. */
function rewrite(dir: string, views: Record<string, string>): void {
  for (const file of fs.readdirSync(path.join(DIR, dir))) {
    if (file !== 'data.json.gz') fs.rmSync(path.join(DIR, dir, file));
  }
  for (const [file, text] of Object.entries(views)) store(path.join(DIR, dir, file), text);
}

function read<T>(dir: string): T {
  return decode(JSON.parse(load(path.join(DIR, dir, 'data.json')))) as T;
}

function expectSame(dir: string, views: Record<string, string>): void {
  const recorded = fs.readdirSync(path.join(DIR, dir)).map((f) => f.replace(/\.gz$/, '')).filter((f) => f !== 'data.json').sort();
  expect(Object.keys(views).sort(), dir).toEqual(recorded);
  for (const file of recorded) {
    const want = load(path.join(DIR, dir, file));
    // toBe on whole documents prints a useless diff; the first differing line says where.
    const got = views[file];
    if (got !== want) {
      const a = got.split('\n');
      const b = want.split('\n');
      const k = a.findIndex((line, i) => line !== b[i]);
      expect.fail(`${dir}/${file} differs at line ${k + 1}:\n got: ${a[k]}\nwant: ${b[k]}`);
    }
  }
}

describe.runIf(RECORD)('recording (only with HEAPSCOPE_RECORD_VIEWS=1; -t walk records the walk alone)', () => {
  it('records every experiment (or those HEAPSCOPE_RECORD_ONLY names) and the report', async () => {
    const unknown = ONLY?.filter((n) => !NAMES.includes(n)) ?? [];
    if (unknown.length > 0) throw new Error(`HEAPSCOPE_RECORD_ONLY names no experiment: ${unknown.join(', ')}`);
    for (const name of ONLY ?? NAMES) {
      const data = recorded(plain(await run(name)) as ResultData);
      write(path.join(DIR, name), data, resultViews(data));
    }
    const all = NAMES.map((name) => read<ResultData>(name));
    write(path.join(DIR, 'report'), { results: all.map((r) => r.name) }, { 'report.html': reportView(all) });
  }, 300_000);

  it.skipIf(ONLY !== undefined)('records a walk', () => {
    // A fresh process's heap: a few hundred chunks, not the test runner's thousands.
    const script = `const v8 = require('node:v8'); const { walkHeap } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'walk'))});` +
      'process.stdout.write(v8.serialize({ ...walkHeap() }).toString(\'base64\'));';
    const walk = recorded(v8.deserialize(Buffer.from(execFileSync(process.execPath, ['-e', script], { ...SYNC_CHILD, encoding: 'utf8', maxBuffer: 1 << 30 }), 'base64')) as HeapWalkData);
    write(path.join(DIR, 'walk'), walk, walkViews(walk));
  }, 300_000);
});

describe.runIf(RERENDER)('rendering the recorded rows again (only with HEAPSCOPE_RECORD_VIEWS=views)', () => {
  it('renders every experiment, the report and the walk from the rows as recorded', () => {
    for (const name of NAMES) rewrite(name, resultViews(read<ResultData>(name)));
    rewrite('report', { 'report.html': reportView(NAMES.map((name) => read<ResultData>(name))) });
    rewrite('walk', walkViews(read<HeapWalkData>('walk')));
  });
});

describe.skipIf(RECORD || RERENDER)('views of recorded rows', () => {
  it('has a recording for every experiment', () => {
    for (const name of NAMES) expect(fs.existsSync(path.join(DIR, name, 'data.json.gz')), name).toBe(true);
  });

  it.each(NAMES)('%s: terminal, Markdown, HTML, SVG, JSON, inspect and MIME bundle as recorded', (name) => {
    expectSame(name, resultViews(read<ResultData>(name)));
  });

  it('the report page over all of them, as recorded', () => {
    expectSame('report', { 'report.html': reportView(NAMES.map((name) => read<ResultData>(name))) });
  });

  it('a heap walk: terminal strip, SVG, HTML, JSON, inspect and MIME bundle as recorded', () => {
    expectSame('walk', walkViews(read<HeapWalkData>('walk')));
  });
});
