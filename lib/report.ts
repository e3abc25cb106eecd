// The HTML report: every experiment in one self-contained page, with a table
// of contents and each question's findings. Inline SVG and CSS only.
import './present';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { typeError } from './errors';
import { allocatorSnapshot, AllocatorSnapshot, arenas, bins, mallocParams } from './allocator-state';
import { experiments, run } from './experiments/run';
import { glibcVersion } from './stats';
import { arenasDocument, binsDocument, paramsDocument } from './views/allocator';
import { documentHTML } from './views/document';
import { ExperimentResult, ResultData } from './experiments/types';
import { RESULT_CSS, resultHTML } from './views/html';
import { defineOwn, describe, own, readArray, readEntries, readOptions, readRecord } from './validate';
import { FileFacts, fileFacts } from './file-bytes';
import { esc } from './views/svg';

const PAGE_CSS = `
body { margin: 0 auto; max-width: 1700px; padding: 1.5em 2em 4em; background: #fff; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222; }
header h1 { margin: 0 0 0.2em; }
header p { color: #555; margin: 0.2em 0; }
nav.toc { margin: 1em 0 2em; padding: 0.6em 1.2em; background: #f6f6f6; border: 1px solid #ddd; }
nav.toc ol { margin: 0.3em 0; }
nav.toc a { color: #1f5fa8; }
`;

/** Results as the views need them, each field read once and checked; rows are passed through as they are. */
function checkResults(value: unknown): ResultData[] {
  return readArray(value, 'results').map((item, i) => {
    const name = `results[${i}]`;
    const r = readRecord(item, name, ['name', 'question', 'environment', 'rows', 'findings', 'surprises']);
    const text = (v: unknown, field: string): string => {
      if (typeof v !== 'string') throw typeError(`${field} must be a string, got ${describe(v)}`);
      return v;
    };
    const texts = (v: unknown, field: string): string[] => readArray(v, field).map((t, k) => text(t, `${field}[${k}]`));
    const e = readRecord(r.environment, `${name}.environment`, ['glibc', 'node', 'tunables', 'isolated', 'execArgv', 'pid', 'pageSize', 'mallinfo']);
    const count = (v: unknown, field: string): number => {
      if (typeof v !== 'number') throw typeError(`${field} must be a number, got ${describe(v)}`);
      return v;
    };
    const rows = readArray(r.rows, `${name}.rows`);
    rows.forEach((row, k) => {
      if (typeof row !== 'object' || row === null) throw typeError(`${name}.rows[${k}] must be an object, got ${describe(row)}`);
    });
    return {
      name: text(r.name, `${name}.name`),
      question: text(r.question, `${name}.question`),
      environment: {
        glibc: text(e.glibc, `${name}.environment.glibc`),
        node: text(e.node, `${name}.environment.node`),
        tunables: Object.fromEntries(e.tunables === undefined ? []
          : readEntries(e.tunables, `${name}.environment.tunables`).map(([k, v]) => [k, text(v, `${name}.environment.tunables.${k}`)])),
        isolated: e.isolated === true,
        execArgv: e.execArgv === undefined ? [] : texts(e.execArgv, `${name}.environment.execArgv`),
        pid: count(e.pid, `${name}.environment.pid`),
        pageSize: count(e.pageSize, `${name}.environment.pageSize`),
        mallinfo: e.mallinfo === 'mallinfo' ? 'mallinfo' : 'mallinfo2',
      },
      rows: rows as object[],
      findings: texts(r.findings, `${name}.findings`),
      surprises: texts(r.surprises, `${name}.surprises`),
    };
  });
}

/** A part of the page after the experiments: its entry in the contents, and its HTML. */
interface Part { id: string; title: string; html: string }

export function reportHTML(results: readonly ResultData[]): string {
  return page(checkResults(results), []);
}

function page(results: readonly ResultData[], parts: readonly Part[]): string {
  const first = results[0]?.environment;
  const toc = [
    ...results.map((r) => `<li><a href="#${esc(r.name)}">${esc(r.question)}</a> <small>(${esc(r.name)})</small></li>`),
    ...parts.map((p) => `<li><a href="#${esc(p.id)}">${esc(p.title)}</a></li>`),
  ].join('');
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>heapscope report</title>',
    `<style>${PAGE_CSS}${RESULT_CSS}</style>`,
    '</head><body>',
    '<header><h1>heapscope report</h1>',
    `<p>${results.length} experiments on the real glibc malloc` +
      (first === undefined ? '' : ` (glibc ${esc(first.glibc)}, Node.js ${esc(first.node)})`) +
      '. Every number below was measured when this page was made.</p></header>',
    `<nav class="toc"><strong>Contents</strong><ol>${toc}</ol></nav>`,
    '<main>',
    ...results.map((r) => resultHTML(r, { style: false })),
    ...parts.map((p) => p.html),
    '</main></body></html>',
    '',
  ].join('\n');
}

export interface ReportOptions {
  /** Passed to run() for each experiment: milliseconds before its child is killed. */
  timeout?: number;
  /** Called as each experiment starts: its name, its place (1-based) and how many there are. */
  progress?: (name: string, index: number, total: number) => void;
}

/**
 * Runs every experiment (each as it chooses: most in a fresh child) and
 * writes the report to `file`. A destination that cannot be written fails
 * at once, before the experiments run.
 */
export async function writeReport(file: string, options: ReportOptions = {}): Promise<ExperimentResult[]> {
  if (typeof file !== 'string' || file === '') throw typeError(`file must be a non-empty string, got ${describe(file)}`);
  const read = readOptions(options, 'options', ['timeout', 'progress']);
  if (read.progress !== undefined && typeof read.progress !== 'function') {
    throw typeError(`options.progress must be a function, got ${describe(read.progress)}`);
  }
  const progress = read.progress as ReportOptions['progress'];
  checkDestination(file);
  const results: ExperimentResult[] = [];
  const all = experiments();
  for (const [i, e] of all.entries()) {
    progress?.(e.name, i + 1, all.length);
    results.push(await run(e.name, { timeout: read.timeout as number | undefined }));
  }
  fs.writeFileSync(file, page(checkResults(results), [allocatorPart()]));
  return results;
}

/**
 * The allocator of the process writing the report, decoded from one
 * snapshot (`snapshot`, or one taken now): its arenas, mp_ and every
 * arena's bins. Most experiments ran in children of their own; this is the
 * state they left in the parent.
 */
export function allocatorSection(snapshot: AllocatorSnapshot = allocatorSnapshot()): string {
  return allocatorPart(snapshot).html;
}

function allocatorPart(snapshot: AllocatorSnapshot = allocatorSnapshot()): Part {
  const title = 'The allocator of the process that wrote this page';
  return {
    id: 'allocator',
    title,
    html: [
      '<section class="heapscope-result" id="allocator">',
      `<h2>${esc(title)}</h2>`,
      `<p class="env">${esc(`Process ${process.pid}, glibc ${glibcVersion()}: its arenas, mp_ and the bins of every arena, decoded from one copy of ` +
        "the allocator taken after the experiments ran (most of them in children of their own), as heapscope arenas, params and bins print them.")}</p>`,
      '</section>',
      documentHTML(arenasDocument(arenas(snapshot)), { style: false }),
      documentHTML(paramsDocument(mallocParams(snapshot)), { style: false }),
      documentHTML(binsDocument(bins(snapshot)), { style: false }),
    ].join(''),
  };
}

/** Throws, with the errno code of the reason, when `file` cannot be written. */
function checkDestination(file: string): void {
  // Defined, not assigned (an accessor on Object.prototype under these names would meet an assignment).
  const fail = (code: string, why: string) => {
    const error = new Error(`cannot write the report to ${file}: ${why}`);
    defineOwn(error, 'code', code);
    defineOwn(error, 'path', file);
    return error;
  };
  const dir = path.dirname(path.resolve(file));
  // The nearest ancestor of the file that exists says what is wrong.
  let up = dir;
  while (stat(up) === undefined && up !== path.dirname(up)) up = path.dirname(up);
  if (!stat(up)!.directory) throw fail('ENOTDIR', `${up} is not a directory`);
  if (up !== dir) throw fail('ENOENT', `there is no directory ${dir}`);
  const target = stat(file);
  if (target?.directory === true) throw fail('EISDIR', 'it is a directory');
  const writable = target === undefined ? dir : file;
  try {
    fs.accessSync(writable, target === undefined ? fs.constants.W_OK | fs.constants.X_OK : fs.constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EACCES';
    throw fail(code, `${writable} is not writable${code === 'EROFS' ? ' (a read-only file system)' : ''}`);
  }
}

const { ENOENT, ENOTDIR } = os.constants.errno;

/**
 * What is at `p`, or undefined when nothing is (ENOENT, or a file where a
 * directory should be). Through the addon (fileFacts): Node's Stats threw at
 * a getter-only `size` or `dev` on Object.prototype.
 */
function stat(p: string): FileFacts | undefined {
  try {
    return fileFacts(p);
  } catch (error) {
    const errno = own(error as { errno?: number }, 'errno');
    if (errno === ENOENT || errno === ENOTDIR) return undefined;
    throw error;
  }
}
