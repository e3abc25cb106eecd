// Markdown views: the question as a heading, where it ran, the findings and
// surprises as measured, and the experiment's table.
import { ResultData } from '../result-data';
import { environmentLine } from './environment';
import { resultTable } from './table';

/** Rows in a Markdown table: enough to check the findings, few enough to read. */
export const MARKDOWN_ROWS = 40;

/** A table cell: pipes escaped, no line breaks. */
export function mdCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function resultMarkdown(result: ResultData, options: { maxRows?: number } = {}): string {
  const lines = [`## ${result.question}`, '', `_${result.name}: ${environmentLine(result, 'full')}._`, '', '### Findings', ''];
  for (const finding of result.findings) lines.push(`- ${finding}`);
  if (result.surprises.length > 0) {
    lines.push('', '### Surprises', '');
    for (const surprise of result.surprises) lines.push(`- ${surprise}`);
  }
  const table = resultTable(result, options.maxRows ?? MARKDOWN_ROWS);
  if (table.shown > 0) {
    lines.push('', `### ${table.title}`, '', table.note, '');
    lines.push(`| ${table.columns.map((c) => mdCell(c.title)).join(' | ')} |`);
    lines.push(`| ${table.columns.map((c) => (c.align === 'right' ? '---:' : '---')).join(' | ')} |`);
    table.lines.forEach((line, i) => {
      // Where lines of the table were left out.
      if (table.cuts.includes(i)) lines.push(`| ${table.columns.map(() => '⋮').join(' | ')} |`);
      lines.push(`| ${line.cells.map(mdCell).join(' | ')} |`);
    });
  }
  return `${lines.join('\n')}\n`;
}
