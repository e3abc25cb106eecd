// The views of vis(): each chunk's header line (address, size, flags,
// place, links) over its raw 16-byte lines, coloured per chunk from a
// cycle as pwndbg's vis_heap_chunks does. One list of lines makes the
// terminal text, the Markdown code block and the SVG; the HTML is a table
// with each chunk's summary beside its first line.
import { inspect } from 'node:util';
import { sizeRule } from '../allocator/bin-walk';
import type { VisResultData } from '../allocator/results';
import { HEAD_LINES, TAIL_LINES, VisChunk, VisLine, WHOLE_LINES } from '../allocator/vis';
import { chunkFlags } from '../chunk';
import { hex, plural } from '../format';
import { TCACHE_MAX_BINS, tidx2csize } from '../size-classes';
import { toJSONValue } from '../json';
import type { DocumentViews, InspectContext, MimeBundle } from '../presenters';
import type { ColourName } from '../table-spec';
import { snapshotNotes } from './allocator';
import { RESULT_CSS, SCROLL_STYLE, TABLE_STYLE } from './html';
import { stylize } from './inspect';
import { el, esc, text } from './svg';
import { resolve, TerminalOptions } from './terminal';
import { clip, wrap } from './terminal-text';
import { own } from '../validate';

/** The colours chunks take in turn in a terminal. */
export const CHUNK_COLOURS: readonly ColourName[] = ['green', 'cyan', 'yellow', 'blue', 'magenta'];
/** The same cycle for HTML and SVG backgrounds: light, so that dark text stays readable. */
const CHUNK_FILLS = ['#dff3df', '#dcf1f5', '#f8f1d0', '#e0e6f8', '#f3e0f3'];

function region(v: VisResultData): string {
  return `${v.region.kind === 'heap' ? "main_arena's [heap]" : `arena ${hex(v.arena)}'s heap`} ${hex(v.region.start)}–${hex(v.region.end)}`;
}

/** Which list a chunk sits in, with the sizes the list holds as glibc computes them from its index. */
export function placeText(c: VisChunk): string {
  const range = (kind: 'fastbin' | 'regular', index: number) => {
    const { min, max } = sizeRule(kind, index);
    return max === undefined ? `${hex(min)}+` : max === min ? hex(min) : `${hex(min)}–${hex(max)}`;
  };
  const whose = () => (c.owner === 'calling-thread' ? 'of the calling thread' : `of tcache ${hex(c.tcache!)}`);
  let text: string;
  switch (c.place) {
    case 'in-use': text = 'in use'; break;
    case 'tcache-struct': text = `tcache_perthread_struct${c.owner === 'calling-thread' ? ' of the calling thread' : ''}`; break;
    // tcache bins below TCACHE_MAX_BINS hold one size each.
    case 'tcache': text = `tcache bin ${c.bin}${c.bin! < TCACHE_MAX_BINS ? ` (${hex(tidx2csize(c.bin!))})` : ''} ${whose()}`; break;
    case 'fastbin': text = `fastbin ${c.bin} (${range('fastbin', c.bin!)})`; break;
    case 'smallbin': text = `smallbin ${c.bin} (${range('regular', c.bin!)})`; break;
    case 'largebin': text = `largebin ${c.bin} (${range('regular', c.bin!)})`; break;
    case 'unlisted': text = 'free by the next chunk\'s P bit, yet in no bin'; break;
    default: text = c.place;
  }
  return c.lastRemainder ? `${text}, last remainder` : text;
}

/** `fd 0x… (stored 0x…)  bk 0x…`, or '' for a chunk without links. */
export function linksText(c: VisChunk): string {
  const parts: string[] = [];
  if (c.fd !== undefined) parts.push(`fd ${hex(c.fd)}${c.fdStored === undefined ? '' : ` (stored ${hex(c.fdStored)})`}`);
  if (c.bk !== undefined) parts.push(`bk ${hex(c.bk)}`);
  return parts.join('  ');
}

/** What stands beside a chunk: `0x30 [P]  tcache bin 1 (0x30) of the calling thread  fd 0x…`. */
export function chunkSummary(c: VisChunk): string {
  return [`${hex(c.size)} ${chunkFlags(c)}`, placeText(c), linksText(c)].filter((t) => t !== '').join('  ');
}

function word(w: bigint): string {
  return `0x${w.toString(16).padStart(16, '0')}`;
}

function dataLine(l: VisLine, width: number): string {
  return `${hex(l.address).padStart(width)}  ${word(l.words[0])}  ${word(l.words[1])}  ${l.ascii}`;
}

function omittedLine(c: VisChunk, width: number): string {
  return `${' '.repeat(width)}  … ${plural(c.omitted, 'line')} (${c.omitted * 16} bytes) not shown`;
}

function title(v: VisResultData): string {
  const last = v.first + v.chunks.length;
  return `Chunks ${v.first + 1}–${last} of ${v.total} in ${region(v)}`;
}

function notes(v: VisResultData): { text: string; problem?: boolean }[] {
  const out: { text: string; problem?: boolean }[] = [];
  if (v.address !== undefined) {
    const c = v.chunks[0];
    out.push({ text: c.address === v.address ? `${hex(v.address)} is where the first chunk starts.` : `${hex(v.address)} lies ${v.address - c.address} bytes into the first chunk, at ${hex(c.address)}.` });
  }
  const last = v.first + v.chunks.length;
  if (last === v.total && own(v, 'reason') === undefined) out.push({ text: `The heap ends with the last chunk shown (${v.region.kind === 'heap' || v.chunks[v.chunks.length - 1].place === 'top' ? 'its top' : 'its fencepost'}).` });
  if (own(v, 'reason') !== undefined) out.push({ text: `The heap's walk stopped after chunk ${v.total}: ${v.reason}`, problem: true });
  out.push({ text: v.safeLinking
    ? 'fd of a tcache or fastbin chunk is the link revealed from the stored word (safe-linking, glibc 2.32 on); a tcache link points 16 bytes into the next chunk.'
    : 'Links are shown as stored: this glibc does not safe-link them.' });
  out.push({ text: `A chunk over ${WHOLE_LINES} lines (${WHOLE_LINES * 16} bytes) shows its first ${HEAD_LINES} and last ${TAIL_LINES} lines.` });
  for (const c of v.chunks) if (c.place === 'unlisted') out.push({ text: `The chunk at ${hex(c.address)} is free by the next chunk's P bit, yet no bin lists it.`, problem: true });
  out.push(...snapshotNotes(v.snapshot));
  return out;
}

/** The chunks' lines: a summary line, then the data lines; `chunk` is the chunk's position, for its colour. */
function chunkLines(v: VisResultData): { text: string; chunk: number; summary?: true }[] {
  const width = Math.max(...v.chunks.flatMap((c) => c.lines.map((l) => hex(l.address).length)));
  const out: { text: string; chunk: number; summary?: true }[] = [];
  v.chunks.forEach((c, k) => {
    out.push({ text: `${hex(c.address)}  ${chunkSummary(c)}`, chunk: k, summary: true });
    const head = c.omitted === 0 ? c.lines.length : c.lines.length - TAIL_LINES;
    c.lines.forEach((l, i) => {
      if (i === head && c.omitted > 0) out.push({ text: `  ${omittedLine(c, width)}`, chunk: k });
      out.push({ text: `  ${dataLine(l, width)}`, chunk: k });
    });
  });
  return out;
}

// ---------------------------------------------------------------- terminal

/**
 * The title and notes wrapped to the width, then each chunk in its colour:
 * its summary line (wrapped) and its 16-byte lines (74 columns with 14-digit
 * addresses; clipped in a narrower terminal).
 */
export function renderVis(v: VisResultData, options?: TerminalOptions): string {
  const o = resolve(options);
  const lines = [...wrap(title(v), o.width).map((l) => o.paint('bold', l))];
  for (const n of notes(v)) {
    if (!n.problem) lines.push(...wrap(n.text, o.width));
    else {
      const [head, ...rest] = wrap(n.text, o.width, '! ', '  ');
      lines.push(head.replace('!', o.paint('yellow', '!')), ...rest);
    }
  }
  lines.push('');
  for (const l of chunkLines(v)) {
    const colour = CHUNK_COLOURS[l.chunk % CHUNK_COLOURS.length];
    // The summary's double spaces survive unless it has to wrap.
    const texts = l.summary && l.text.length > o.width ? wrap(l.text, o.width, '', '    ') : [clip(l.text, o.width)];
    lines.push(...texts.map((t) => o.paint(colour, t)));
  }
  return lines.map((l) => clip(l, o.width)).join('\n');
}

// ---------------------------------------------------------------- Markdown

export function visMarkdown(v: VisResultData): string {
  const md = [`## ${title(v)}`, '', ...notes(v).flatMap((n) => [n.problem ? `> **!** ${n.text}` : n.text, '']), '```', ...chunkLines(v).map((l) => l.text), '```'];
  return `${md.join('\n')}\n`;
}

// ---------------------------------------------------------------- HTML

const MONO = 'font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace';

/** Self-contained: a table of the 16-byte lines on each chunk's colour, its summary beside its first line. */
export function visHTML(v: VisResultData, options: { style?: boolean } = {}): string {
  const cell = 'padding:0 0.6em;white-space:pre;text-align:left;vertical-align:top';
  const rows = v.chunks.map((c, k) => {
    const fill = CHUNK_FILLS[k % CHUNK_FILLS.length];
    const head = c.omitted === 0 ? c.lines.length : c.lines.length - TAIL_LINES;
    const span = c.lines.length + (c.omitted > 0 ? 1 : 0);
    const summary = `<td rowspan="${span}" style="${cell};white-space:normal;min-width:16em"><code>${esc(hex(c.address))}</code> ${esc(chunkSummary(c))}</td>`;
    const out: string[] = [];
    c.lines.forEach((l, i) => {
      if (i === head && c.omitted > 0) out.push(`<tr style="background:${fill}"><td style="${cell}" colspan="4">… ${esc(`${plural(c.omitted, 'line')} (${c.omitted * 16} bytes) not shown`)}</td></tr>`);
      const cells = [hex(l.address), word(l.words[0]), word(l.words[1]), l.ascii].map((t) => `<td style="${cell}">${esc(t)}</td>`).join('');
      out.push(`<tr style="background:${fill}">${cells}${i === 0 ? summary : ''}</tr>`);
    });
    return out.join('');
  }).join('');
  const noteHTML = notes(v).map((n) => `<p class="${n.problem ? 'note problem' : 'note'}">${n.problem ? '! ' : ''}${esc(n.text)}</p>`).join('');
  return [
    '<section class="heapscope-result heapscope-vis">',
    options.style === false ? '' : `<style>${RESULT_CSS}</style>`,
    `<h2>${esc(title(v))}</h2>`,
    noteHTML,
    `<div class="rows" style="${SCROLL_STYLE}"><table style="${TABLE_STYLE};${MONO};font-size:0.8em"><thead><tr>`,
    ['address', 'word 0', 'word 1', 'ASCII', 'chunk'].map((h) => `<th style="${cell}">${h}</th>`).join(''),
    `</tr></thead><tbody>${rows}</tbody></table></div>`,
    '</section>',
  ].join('');
}

// ---------------------------------------------------------------- SVG

const FONT_SIZE = 12;
/** A monospace advance is 0.6 em in every font of the list. */
const ADVANCE = 0.6 * FONT_SIZE;
const LINE = 16;
const PAD = 8;

/** The chunks' lines as a standalone SVG document: monospace text on each chunk's colour. No scripts, nothing fetched. */
export function visSVG(v: VisResultData): string {
  const lines = chunkLines(v);
  const head = title(v);
  const columns = Math.max(head.length, ...lines.map((l) => l.text.length));
  const width = Math.ceil(columns * ADVANCE) + 2 * PAD;
  const top = PAD + LINE * 1.5;
  const height = Math.ceil(top + lines.length * LINE + PAD);
  const parts: string[] = [el('rect', { x: 0, y: 0, width, height, fill: '#fff' }), text(PAD, PAD + FONT_SIZE, head, { 'font-weight': 'bold' })];
  lines.forEach((l, i) => {
    const y = top + i * LINE;
    parts.push(el('rect', { x: 0, y, width, height: LINE, fill: CHUNK_FILLS[l.chunk % CHUNK_FILLS.length] }));
    parts.push(text(PAD, y + FONT_SIZE, l.text, { 'xml:space': 'preserve' }));
  });
  return el('svg', {
    xmlns: 'http://www.w3.org/2000/svg', width, height, viewBox: `0 0 ${width} ${height}`,
    'font-family': 'DejaVu Sans Mono, Menlo, Consolas, monospace', 'font-size': FONT_SIZE, role: 'img', 'aria-label': head,
  }, parts.join(''));
}

// ---------------------------------------------------------------- REPL and notebook

/** `VisResult <chunks 1–6 of 120 in main_arena's [heap] 0x…–0x…>`, then one line a chunk. */
export function inspectVis(v: VisResultData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'VisResult', 'special');
  if (depth < 0) return `[${name} ${plural(v.chunks.length, 'chunk')}]`;
  const head = `${name} <${title(v).replace(/^Chunks/, 'chunks')}${v.snapshot.consistent ? '' : '; torn copy'}`;
  if (depth === 0) return `${head}>`;
  return [
    head,
    ...v.chunks.map((c) => `  ${stylize(options, hex(c.address), 'number')}  ${chunkSummary(c)}`),
    `  ${stylize(options, '.chunks[n].lines', 'undefined')}: the 16-byte lines; ${stylize(options, '.toSVG()', 'undefined')}, ${stylize(options, '.toHTML()', 'undefined')}>`,
  ].join('\n');
}

function bundle(v: VisResultData): MimeBundle {
  return {
    'text/plain': inspect(v, { colors: false }),
    'text/html': visHTML(v),
    'image/svg+xml': visSVG(v),
    'application/json': toJSONValue(v),
  };
}

/** What present.ts installs as allocatorViews' `vis`. */
export const visViews: DocumentViews<VisResultData> & { svg(v: VisResultData): string } = {
  inspect: inspectVis,
  markdown: visMarkdown,
  html: (v) => visHTML(v),
  bundle,
  svg: visSVG,
};
