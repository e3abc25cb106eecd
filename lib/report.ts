// The HTML report: every experiment in one self-contained page, with a table
// of contents and each question's findings. Inline SVG and CSS only.
import fs from 'node:fs';
import { experiments, run } from './experiments/run';
import { ExperimentResult, ResultData } from './experiments/types';
import { RESULT_CSS, resultHTML } from './views/html';
import { esc } from './views/svg';

const PAGE_CSS = `
body { margin: 0 auto; max-width: 1700px; padding: 1.5em 2em 4em; background: #fff; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222; }
header h1 { margin: 0 0 0.2em; }
header p { color: #555; margin: 0.2em 0; }
nav.toc { margin: 1em 0 2em; padding: 0.6em 1.2em; background: #f6f6f6; border: 1px solid #ddd; }
nav.toc ol { margin: 0.3em 0; }
nav.toc a { color: #1f5fa8; }
`;

export function reportHTML(results: readonly ResultData[]): string {
  const first = results[0]?.environment;
  const toc = results.map((r) => `<li><a href="#${esc(r.name)}">${esc(r.question)}</a> <small>(${esc(r.name)})</small></li>`).join('');
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
    '</main></body></html>',
    '',
  ].join('\n');
}

/** Runs every experiment (each as it chooses: most in a fresh child) and writes the report to `file`. */
export async function writeReport(file: string): Promise<ExperimentResult[]> {
  const results: ExperimentResult[] = [];
  for (const e of experiments()) results.push(await run(e.name));
  fs.writeFileSync(file, reportHTML(results));
  return results;
}
