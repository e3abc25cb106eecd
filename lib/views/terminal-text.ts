// Text for a terminal: colour (ANSI, only when asked), visible width, and
// words wrapped or lines clipped to the width.
import { inspect, stripVTControlCharacters } from 'node:util';
import type { ColourName } from '../table-spec';

/** What a terminal view draws for: its width in columns, and how to colour text. */
export interface Resolved {
  width: number;
  paint: Painter;
}

// ---------------------------------------------------------------- colour

export type Painter = (colour: ColourName | undefined, text: string) => string;

export function painter(on: boolean): Painter {
  return (colour, text) => {
    if (!on || colour === undefined || text === '') return text;
    const [open, close] = inspect.colors[colour] ?? [0, 0];
    return `\x1b[${open}m${text}\x1b[${close}m`;
  };
}


// ---------------------------------------------------------------- text

export function visible(text: string): number {
  return stripVTControlCharacters(text).length;
}

/** Last resort for a line nothing else could fit: cut it, dropping its colour. */
export function clip(line: string, width: number): string {
  const trimmed = line.replace(/\s+$/, '');
  if (visible(trimmed) <= width) return trimmed;
  return `${stripVTControlCharacters(trimmed).slice(0, width - 1)}…`;
}

/** Words to lines of at most `width`, the first after `first`, the rest after `rest`. */
export function wrap(text: string, width: number, first = '', rest = first): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  const room = () => width - line.length;
  for (let word of text.split(/\s+/).filter((w) => w !== '')) {
    if (!empty && word.length + 1 > room()) {
      lines.push(line);
      line = rest;
      empty = true;
    }
    // A word longer than a whole line (a long path) is broken where it must be.
    while (word.length > room() && room() > 0 && empty) {
      lines.push(line + word.slice(0, room()));
      word = word.slice(room());
      line = rest;
    }
    line += empty ? word : ` ${word}`;
    empty = false;
  }
  lines.push(line);
  return lines;
}
