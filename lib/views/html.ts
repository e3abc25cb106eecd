// HTML views: one self-contained fragment per result (inline SVG and CSS,
// no scripts, nothing fetched), the chart beside the experiment's table.
import { ResultData } from '../result-data';
import { resultSVG } from './charts';
import { environmentLine } from './environment';
import { esc } from './svg';
import { resultTable } from './table';

/** Rows in an HTML table; it scrolls. */
export const HTML_ROWS = 200;

/** The fragment's styles, every rule under .heapscope-result so that it leaves the host page alone. */
export const RESULT_CSS = `
.heapscope-result { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222; line-height: 1.45; margin: 0 0 2.5em; }
.heapscope-result h2 { font-size: 1.35em; margin: 0.2em 0; }
.heapscope-result h3 { font-size: 1.05em; margin: 1em 0 0.3em; }
.heapscope-result .env { color: #555; font-size: 0.9em; margin: 0.2em 0 0.8em; }
.heapscope-result ul { margin: 0.2em 0; padding-left: 1.4em; }
.heapscope-result li { margin: 0.25em 0; }
.heapscope-result ul.surprises li { list-style: "! "; }
.heapscope-result .views { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; margin-top: 1em; }
.heapscope-result figure { margin: 0; flex: 0 0 auto; max-width: 100%; }
.heapscope-result figure svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
.heapscope-result figcaption { font-size: 0.85em; color: #555; }
.heapscope-result .rows { flex: 1 1 28em; min-width: 0; max-height: 36em; overflow: auto; border: 1px solid #ddd; }
.heapscope-result table { border-collapse: collapse; table-layout: auto; font-size: 0.8em; font-variant-numeric: tabular-nums; width: 100%; }
.heapscope-result th, .heapscope-result td { padding: 0.15em 0.5em; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }
.heapscope-result th { position: sticky; top: 0; background: #f6f6f6; }
.heapscope-result td.n, .heapscope-result th.n { text-align: right; }
.heapscope-result .note { font-size: 0.85em; color: #555; margin: 0.3em 0.5em; }
`;

/**
 * What keeps a table's columns apart, inline on the elements: a host page's
 * stylesheet can outrank the rules above (JupyterLab's
 * `.jp-RenderedHTMLCommon table { table-layout: fixed }` gives every column
 * the same width, so long cells run into the next; its cells are
 * right-aligned and wrap), and a sanitiser may drop the <style> element.
 */
export const TABLE_STYLE = 'table-layout:auto;border-collapse:collapse';

/** A cell's alignment and no wrapping (the table scrolls instead), inline for the same reason. */
export function cellStyle(numeric: boolean): string {
  return `text-align:${numeric ? 'right' : 'left'};white-space:nowrap`;
}

/** A column's cells: long text wraps in a column wide enough to read, the rest as cellStyle says. */
export function columnStyle(c: { align?: 'left' | 'right'; wrap?: boolean }): string {
  return c.wrap ? 'text-align:left;white-space:normal;min-width:16em' : cellStyle(c.align === 'right');
}

/** A table's title over it, inline for the same reason. */
export const CAPTION_STYLE = 'caption-side:top;text-align:left;font-weight:600;padding:0.3em 0.5em';

/**
 * The box a wide table scrolls in. `contain: inline-size` keeps the table's
 * width from becoming the page's minimum width: without it a notebook
 * output (nbconvert's lab template lays outputs out as tables) grows to the
 * table's width and the text around it runs past the notebook's edge.
 */
export const SCROLL_STYLE = 'overflow:auto;contain:inline-size';

export interface HTMLOptions {
  /** Include the <style> element (a page with several results includes RESULT_CSS once instead). */
  style?: boolean;
  maxRows?: number;
}

function list(items: readonly string[], className?: string): string {
  return `<ul${className === undefined ? '' : ` class="${className}"`}>${items.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>`;
}

export function resultHTML(result: ResultData, options: HTMLOptions = {}): string {
  const parts = [
    `<section class="heapscope-result" id="${esc(result.name)}">`,
    options.style === false ? '' : `<style>${RESULT_CSS}</style>`,
    `<h2>${esc(result.question)}</h2>`,
    `<p class="env">${esc(result.name)}: ${esc(environmentLine(result, 'full'))}.</p>`,
    `<h3>Findings</h3>${list(result.findings, 'findings')}`,
  ];
  if (result.surprises.length > 0) parts.push(`<h3>Surprises</h3>${list(result.surprises, 'surprises')}`);
  const svg = resultSVG(result);
  const table = resultTable(result, options.maxRows ?? HTML_ROWS);
  parts.push('<div class="views">');
  if (svg !== undefined) parts.push(`<figure class="chart">${svg}</figure>`);
  if (table.shown > 0) {
    const attrs = table.columns.map((c) => `${c.align === 'right' ? ' class="n"' : ''} style="${columnStyle(c)}"`);
    const head = table.columns.map((c, i) => `<th${attrs[i]}>${esc(c.title)}</th>`).join('');
    // A ⋮ row where lines of the table were left out.
    const cut = `<tr class="cut">${attrs.map((a) => `<td${a}>⋮</td>`).join('')}</tr>`;
    const body = table.lines.map((line, i) => `${table.cuts.includes(i) ? cut : ''}<tr>${line.cells.map((v, j) => `<td${attrs[j]}>${esc(v)}</td>`).join('')}</tr>`).join('');
    parts.push(`<div class="rows" style="${SCROLL_STYLE}"><table style="${TABLE_STYLE};width:100%"><caption style="${CAPTION_STYLE}">${esc(table.title)}</caption>` +
      `<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table><p class="note">${esc(table.note)}</p></div>`);
  }
  parts.push('</div></section>');
  return parts.join('');
}
