// A table cell's text for a terminal: wrapped at spaces to its column's
// width, each line's colour closed at its end and opened again on the next,
// a line too wide cut with `…`, and padded to the width. The tables were
// drawn by cli-table3 before, and these are its rules (the recorded views
// in test/fixtures/views hold its output). cli-table3 took 130–165 ms of
// the 244–285 ms that rendering a tour's ten results took, most of it
// measuring widths (string-width and strip-ansi, a regular expression built
// again for each) and merging options per cell; with these, rendering takes
// 102–117 ms.
import { visible } from './terminal-text';

/** An SGR escape (colour, bold…), its parameters captured. */
const SGR = /\x1b\[((?:\d*;){0,5}\d*)m/g;

/** The attributes an SGR escape turns on or off by itself: bold, italics, underline, inverse, strikethrough. */
const STYLE_CODES = new Map<string, { style: string; on: boolean }>();
const STYLE_ESCAPES = new Map<string, { on: string; off: string }>();
for (const [style, on, off] of [['bold', 1, 22], ['italics', 3, 23], ['underline', 4, 24], ['inverse', 7, 27], ['strikethrough', 9, 29]] as const) {
  STYLE_CODES.set(`\x1b[${on}m`, { style, on: true });
  STYLE_CODES.set(`\x1b[${off}m`, { style, on: false });
  STYLE_ESCAPES.set(style, { on: `\x1b[${on}m`, off: `\x1b[${off}m` });
}
const FG_OFF = '\x1b[39m';
const BG_OFF = '\x1b[49m';

/** What is switched on at a point of a line: styles in the order met, the last foreground and background set. */
interface SgrState {
  styles: Map<string, boolean>;
  fg?: string;
  bg?: string;
}

function update(state: SgrState, escape: string, params: string): void {
  const code = params !== '' ? parseInt(params.split(';')[0], 10) : 0;
  if ((code >= 30 && code <= 39) || (code >= 90 && code <= 97)) state.fg = escape;
  else if ((code >= 40 && code <= 49) || (code >= 100 && code <= 107)) state.bg = escape;
  else if (code === 0) {
    state.styles.clear();
    state.fg = undefined;
    state.bg = undefined;
  } else {
    const known = STYLE_CODES.get(escape);
    if (known !== undefined) state.styles.set(known.style, known.on);
  }
}

function stateAtEnd(line: string): SgrState {
  const state: SgrState = { styles: new Map() };
  for (const m of line.matchAll(SGR)) update(state, m[0], m[1]);
  return state;
}

/** `text` with what `state` has on switched off after it. */
function closed(state: SgrState, text: string): string {
  let out = text;
  for (const [style, on] of state.styles) if (on) out += STYLE_ESCAPES.get(style)!.off;
  if (state.bg !== undefined && state.bg !== BG_OFF) out += BG_OFF;
  if (state.fg !== undefined && state.fg !== FG_OFF) out += FG_OFF;
  return out;
}

/** `text` with what `state` has on switched on before it. */
function reopened(state: SgrState, text: string): string {
  let out = text;
  for (const [style, on] of state.styles) if (on) out = STYLE_ESCAPES.get(style)!.on + out;
  if (state.bg !== undefined && state.bg !== BG_OFF) out = state.bg + out;
  if (state.fg !== undefined && state.fg !== FG_OFF) out = state.fg + out;
  return out;
}

/** Each line's colour closed at its end and opened again at the next line's start. */
function colourLines(lines: string[]): string[] {
  if (!lines.some((l) => l.includes('\x1b'))) return lines;
  let state: SgrState = { styles: new Map() };
  return lines.map((l) => {
    const line = reopened(state, l);
    state = stateAtEnd(line);
    return closed(state, line);
  });
}

/**
 * Words to lines of at most `width` columns, broken at whitespace only (a
 * longer word is a line of its own, cut later). Whitespace between words
 * on a line is kept as it was; an empty or blank text has no line.
 */
function wordWrap(width: number, text: string): string[] {
  const lines: string[] = [];
  const parts = text.split(/(\s+)/g);
  let line: string[] = [];
  let length = 0;
  let space: string | undefined;
  for (let i = 0; i < parts.length; i += 2) {
    const word = parts[i];
    let next = length + visible(word);
    if (length > 0 && space !== undefined) next += space.length;
    if (next > width) {
      if (length !== 0) lines.push(line.join(''));
      line = [word];
      length = visible(word);
    } else {
      line.push(space ?? '', word);
      length = next;
    }
    space = parts[i + 1];
  }
  if (length !== 0) lines.push(line.join(''));
  return lines;
}

/** A cell's text as the lines it takes in a column `width` wide (none for an empty text). */
export function cellLines(text: string, width: number): string[] {
  return colourLines(text.split('\n').flatMap((part) => wordWrap(width, part)));
}

/** The first `width` columns of a text without escapes. */
function cutPlain(text: string, width: number): string {
  if (text.length === visible(text)) return text.slice(0, width);
  let out = text;
  while (visible(out) > width) out = out.slice(0, -1);
  return out;
}

/** A line cut to `width` columns, its escapes kept up to the cut and what they switched on switched off. */
function cut(line: string, width: number): string {
  const escapes = [...line.matchAll(SGR)];
  const state: SgrState = { styles: new Map() };
  let out = '';
  let length = 0;
  // The text before each escape, then the text after the last.
  for (let i = 0, from = 0; length < width; i++) {
    const escape = escapes[i];
    let piece = line.slice(from, escape?.index ?? line.length);
    if (length + visible(piece) > width) piece = cutPlain(piece, width - length);
    out += piece;
    length += visible(piece);
    if (length < width) {
      if (escape === undefined) break;
      out += escape[0];
      update(state, escape[0], escape[1]);
      from = escape.index! + escape[0].length;
    }
  }
  return closed(state, out);
}

/** One line of a cell: cut with `…` when wider than `width`, then padded to it on the side away from `align`. */
export function fitCell(line: string, width: number, align: 'left' | 'right'): string {
  const fitted = visible(line) <= width ? line : `${cut(line, width - 1)}…`;
  const room = Math.max(0, width - visible(fitted));
  return align === 'right' ? ' '.repeat(room) + fitted : fitted + ' '.repeat(room);
}
