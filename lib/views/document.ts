// A small document model (a title, sentences, and sections each with a
// table and the sentences about it) and its three renderings: a terminal
// (cli-table3 tables fitted to the width), Markdown and an HTML fragment.
// Records whose views are tables and sentences build one of these and get
// every rendering from it.
import type { ColourName } from '../table-spec';
import { columnStyle, RESULT_CSS, SCROLL_STYLE, TABLE_STYLE } from './html';
import { mdCell } from './markdown';
import { esc } from './svg';
import { resolve, TerminalOptions } from './terminal';
import { renderTable, TerminalColumn } from './terminal-table';
import { clip, wrap } from './terminal-text';

export interface DocColumn {
  head: string;
  align?: 'left' | 'right';
  /** Long text: wraps in the terminal and in HTML. */
  wrap?: boolean;
  /** Left out of a terminal table that is still too wide, lowest first (see TerminalColumn.drop). */
  drop?: number;
  /** Addresses and names: `code` in Markdown and HTML. */
  code?: boolean;
}

export interface DocRow {
  cells: string[];
  /** The row's colour in a terminal. */
  colour?: ColourName;
}

export interface DocTable {
  columns: DocColumn[];
  rows: DocRow[];
}

/** A sentence; a problem is marked (`!`, yellow) wherever it is shown. */
export interface DocNote {
  text: string;
  problem?: boolean;
}

export interface DocSection {
  heading: string;
  table?: DocTable;
  /** Shown after the table. */
  notes: DocNote[];
}

export interface ViewDocument {
  /** The HTML fragment's id. */
  id: string;
  title: string;
  /** Shown under the title. */
  notes: DocNote[];
  sections: DocSection[];
}

// ---------------------------------------------------------------- terminal

/** The document for a terminal: no line longer than the width, colour only when asked. */
export function documentTerminal(doc: ViewDocument, options?: TerminalOptions): string {
  const o = resolve(options);
  const notes = (list: readonly DocNote[], indent: string): string[] => list.flatMap((n) => {
    if (!n.problem) return wrap(n.text, o.width, indent);
    const [head, ...rest] = wrap(n.text, o.width, `${indent}! `, `${indent}  `);
    return [head.replace('!', o.paint('yellow', '!')), ...rest];
  });
  const lines = [...wrap(doc.title, o.width).map((l) => o.paint('bold', l)), ...notes(doc.notes, '')];
  for (const section of doc.sections) {
    lines.push('', ...wrap(section.heading, o.width).map((l) => o.paint('bold', l)));
    if (section.table !== undefined && section.table.rows.length > 0) {
      const columns: TerminalColumn<DocRow>[] = section.table.columns.map((c, i) => ({
        head: c.head, cell: (r) => r.cells[i], align: c.align, wrap: c.wrap, drop: c.drop, colour: (r) => r.colour,
      }));
      lines.push(...renderTable(columns, section.table.rows, o));
    }
    lines.push(...notes(section.notes, '  '));
  }
  return lines.map((l) => clip(l, o.width)).join('\n');
}

// ---------------------------------------------------------------- Markdown

function markdownTable(table: DocTable): string[] {
  const cell = (c: DocColumn, text: string) => (c.code && text !== '' ? `\`${text}\`` : mdCell(text));
  return [
    `| ${table.columns.map((c) => mdCell(c.head)).join(' | ')} |`,
    `| ${table.columns.map((c) => (c.align === 'right' ? '---:' : '---')).join(' | ')} |`,
    ...table.rows.map((r) => `| ${r.cells.map((text, i) => cell(table.columns[i], text)).join(' | ')} |`),
  ];
}

function markdownNotes(notes: readonly DocNote[]): string[] {
  return notes.flatMap((n) => [n.problem ? `> **!** ${n.text}` : n.text, '']);
}

export function documentMarkdown(doc: ViewDocument): string {
  const lines = [`## ${doc.title}`, '', ...markdownNotes(doc.notes)];
  for (const section of doc.sections) {
    lines.push(`### ${section.heading}`, '');
    if (section.table !== undefined && section.table.rows.length > 0) lines.push(...markdownTable(section.table), '');
    lines.push(...markdownNotes(section.notes));
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

// ---------------------------------------------------------------- HTML

function htmlTable(table: DocTable): string {
  const attrs = table.columns.map((c) => `${c.align === 'right' ? ' class="n"' : ''} style="${columnStyle(c)}"`);
  const head = table.columns.map((c, i) => `<th${attrs[i]}>${esc(c.head)}</th>`).join('');
  const body = table.rows.map((r) => `<tr>${r.cells.map((text, i) => {
    const c = table.columns[i];
    return `<td${attrs[i]}>${c.code && text !== '' ? `<code>${esc(text)}</code>` : esc(text)}</td>`;
  }).join('')}</tr>`).join('');
  return `<div class="rows" style="${SCROLL_STYLE}"><table style="${TABLE_STYLE};width:100%"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

function htmlNotes(notes: readonly DocNote[], className: string): string {
  const plain = notes.filter((n) => !n.problem).map((n) => `<p class="${className}">${esc(n.text)}</p>`).join('');
  const problems = notes.filter((n) => n.problem);
  return plain + (problems.length === 0 ? '' : `<ul class="surprises">${problems.map((n) => `<li>${esc(n.text)}</li>`).join('')}</ul>`);
}

/** Self-contained: inline CSS (unless `style: false`, for a page that has it once), no scripts, nothing fetched. */
export function documentHTML(doc: ViewDocument, options: { style?: boolean } = {}): string {
  const parts = [
    `<section class="heapscope-result heapscope-allocator" id="${esc(doc.id)}">`,
    options.style === false ? '' : `<style>${RESULT_CSS}</style>`,
    `<h2>${esc(doc.title)}</h2>`,
    htmlNotes(doc.notes, 'env'),
  ];
  for (const section of doc.sections) {
    parts.push(`<h3>${esc(section.heading)}</h3>`);
    if (section.table !== undefined && section.table.rows.length > 0) parts.push(htmlTable(section.table));
    parts.push(htmlNotes(section.notes, 'note'));
  }
  parts.push('</section>');
  return parts.join('');
}
