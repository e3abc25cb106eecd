// One table per experiment, drawn alike by every view: the terminal shows
// the same lines and cells as Markdown and HTML (under the spec's short
// headers), and at 80 columns it keeps every column its spec does not let
// go. Rendered from the recorded rows of test/fixtures/views/.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import '../../lib/present';
import { PRESENTATIONS } from '../../lib/experiments/presentations';
import { ExperimentResultView } from '../../lib/experiments/result';
import { experiments } from '../../lib/experiments/run';
import { ResultData } from '../../lib/experiments/types';
import { resultHTML } from '../../lib/views/html';
import { resultMarkdown } from '../../lib/views/markdown';
import { resultTable, TERMINAL_ROWS } from '../../lib/views/table';
import { esc } from '../../lib/views/svg';
import { renderResult } from '../../lib/views/terminal';
import { decode } from '../helpers/view-fixtures';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Rows recorded in fixtures, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const DIR = path.join(__dirname, '..', 'fixtures', 'views');
const NAMES = experiments().map((e) => e.name);

function recorded(name: string): ExperimentResultView {
  const data = decode(JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(DIR, name, 'data.json.gz'))).toString('utf8'))) as ResultData;
  return new ExperimentResultView(data);
}

/** The terminal's table: its title, its header and lines as cells, split where the rule under the header splits. */
function terminalCells(text: string, noted: boolean): { title: string; head: string[]; lines: string[][] } {
  const lines = text.split('\n');
  // The rule under the header is the first line of nothing but rules (findings and titles are words).
  const rule = lines.findIndex((l) => /^─+( ─+)*$/.test(l));
  expect(rule).toBeGreaterThan(1);
  const spans = [...lines[rule].matchAll(/─+/g)].map((m) => [m.index!, m.index! + m[0].length]);
  const cut = (l: string) => spans.map(([a, b]) => l.slice(a, b + 1).trim());
  const top = lines.lastIndexOf('', rule);
  const end = lines.indexOf('', rule);
  // The note under the table, when rows were left out.
  const body = lines.slice(rule + 1, end < 0 ? undefined : end).slice(0, noted ? -1 : undefined);
  return { title: lines.slice(top + 1, rule - 1).join(' '), head: cut(lines[rule - 1]), lines: body.map(cut) };
}

/** The Markdown table after its heading: header and lines as cells. */
function markdownCells(md: string): { head: string[]; lines: string[][] } {
  const rows = md.split('\n').filter((l) => l.startsWith('| ')).map((l) => l.slice(2, -2).split(/(?<!\\) \| /).map((c) => c.replace(/\\\|/g, '|')));
  return { head: rows[0], lines: rows.slice(2) };
}

/** The HTML table: header and lines as cells, text unescaped. */
function htmlCells(html: string): { head: string[]; lines: string[][] } {
  const text = (s: string) => s.replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  const table = /<div class="rows"[^>]*>(.*?)<\/table>/s.exec(html)![1];
  const cells = (row: string, tag: string) => [...row.matchAll(new RegExp(`<${tag}[^>]*>(.*?)</${tag}>`, 'gs'))].map((m) => text(m[1]));
  const rows = [...table.matchAll(/<tr[^>]*>(.*?)<\/tr>/gs)].map((m) => m[1]);
  return { head: cells(rows[0], 'th'), lines: rows.slice(1).map((r) => cells(r, 'td')) };
}

describe('one table spec, every view', () => {
  it.each(NAMES)('%s: the terminal, Markdown and HTML show the same lines and cells', (name) => {
    const result = recorded(name);
    const table = resultTable(result, TERMINAL_ROWS);
    expect(table.shown, name).toBeGreaterThan(0);
    const cells = table.lines.flatMap((l, i) => [...(table.cuts.includes(i) ? [table.columns.map(() => '⋮')] : []), l.cells]);
    // Wide enough that no column is narrowed or left out.
    const terminal = terminalCells(renderResult(result, { width: 1000 }), table.shown < table.total);
    expect(terminal.title).toBe(table.title);
    expect(terminal.head).toEqual(table.columns.map((c) => c.short));
    expect(terminal.lines).toEqual(cells);
    // The same title and note: the note says how many of which rows, and the terminal where to get them all.
    const text = renderResult(result, { width: 1000 }).split('\n');
    if (table.shown < table.total) expect(text).toContain(`${table.note} Every row measured: heapscope run ${name} --json`);
    else expect(text.join('\n')).not.toContain(table.note);
    const markdown = resultMarkdown(result, { maxRows: TERMINAL_ROWS });
    expect(markdown).toContain(`### ${table.title}\n\n${table.note}\n\n|`);
    const fragment = resultHTML(result, { maxRows: TERMINAL_ROWS });
    expect(fragment).toContain(`>${esc(table.title)}</caption>`);
    expect(fragment).toContain(`<p class="note">${esc(table.note)}</p>`);
    const md = markdownCells(markdown);
    expect(md.head).toEqual(table.columns.map((c) => c.title));
    expect(md.lines).toEqual(cells);
    const html = htmlCells(fragment);
    expect(html.head).toEqual(table.columns.map((c) => c.title));
    expect(html.lines).toEqual(cells);
  });

  it.each(NAMES)('%s: at 80 columns the terminal keeps every column its spec does not let go', (name) => {
    const result = recorded(name);
    const table = resultTable(result, TERMINAL_ROWS);
    const { head } = terminalCells(renderResult(result, { width: 80 }), table.shown < table.total);
    const kept = PRESENTATIONS[name].table.columns.filter((c) => c.drop === undefined).map((c) => c.short ?? c.title);
    expect(kept.length, name).toBeGreaterThan(0);
    for (const h of kept) expect(head, `${name} at 80 columns`).toContain(h);
  });
});
