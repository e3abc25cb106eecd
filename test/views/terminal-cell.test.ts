// The terminal's tables against cli-table3, which drew them before and whose
// output the recorded views hold: random tables of words, long words, runs
// of spaces, empty cells and colours (the painter's, and escapes cli-table3
// tracks by kind: bold, underline, foreground, background, reset), drawn
// both ways with the same column widths and alignments, must be the same
// lines. The generator is seeded, so a failure names a table that fails again.
import Table from 'cli-table3';
import { describe, expect, it } from 'vitest';
import { drawTable } from '../../lib/views/terminal-table';
import { cellLines, fitCell } from '../../lib/views/terminal-cell';
import { painter } from '../../lib/views/terminal-text';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Text drawn here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

/** The old renderTable's cli-table3 table, given its widths and alignments. */
function cliTable(head: string[], rows: string[][], widths: number[], aligns: ('left' | 'right')[]): string[] {
  const table = new Table({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '─', 'mid-mid': ' ', right: '', 'right-mid': '', middle: ' ',
    },
    colWidths: widths.map((w) => w + 1),
    colAligns: aligns,
    wordWrap: true,
    style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 1 },
  });
  for (const row of rows) table.push(row);
  return table.toString().split('\n');
}

/** A seeded linear congruential generator (as test/maps.test.ts's), numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const paint = painter(true);
const COLOURS = ['bold', 'dim', 'red', 'green', 'yellow', 'cyan', 'underline', 'inverse'] as const;
/** Escapes inside a cell, as cli-table3 meets them: kinds it tracks, and a reset. */
const INNER = ['\x1b[1m', '\x1b[22m', '\x1b[4m', '\x1b[24m', '\x1b[31m', '\x1b[39m', '\x1b[44m', '\x1b[49m', '\x1b[0m', '\x1b[m', '\x1b[2m'];
const WORDS = ['0x55', 'free', 'tcache', 'main_arena', '…/libc.so.6', '→', '×', '0x7f3a2c000b10', 'a', 'mmap', 'unsorted', '1,048,576', '⋮'];

function cellText(next: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
  const kind = next();
  if (kind < 0.08) return '';
  if (kind < 0.12) return ' '.repeat(1 + Math.floor(next() * 3));
  const words: string[] = [];
  const count = 1 + Math.floor(next() * 8);
  for (let i = 0; i < count; i++) {
    let word = next() < 0.1 ? 'x'.repeat(10 + Math.floor(next() * 30)) : pick(WORDS);
    if (next() < 0.15) word = pick(INNER) + word;
    if (next() < 0.1) word += pick(INNER);
    words.push(word);
  }
  const text = words.map((w, i) => (i === 0 ? w : (next() < 0.1 ? '   ' : next() < 0.05 ? '\n' : ' ') + w)).join('');
  const padded = next() < 0.05 ? ` ${text} ` : text;
  return next() < 0.4 ? paint(pick(COLOURS), padded) : padded;
}

describe('the terminal table', () => {
  it('draws every random table as cli-table3 drew it', () => {
    const next = random(20261205);
    for (let t = 0; t < 1500; t++) {
      const columns = 1 + Math.floor(next() * 5);
      const widths = Array.from({ length: columns }, () => 1 + Math.floor(next() * 24));
      const aligns = Array.from({ length: columns }, () => (next() < 0.3 ? 'right' as const : 'left' as const));
      const head = Array.from({ length: columns }, () => paint('bold', `h${Math.floor(next() * 1000)}`));
      const rows = Array.from({ length: Math.floor(next() * 5) }, () => Array.from({ length: columns }, () => cellText(next)));
      const ours = drawTable(head, rows, widths, aligns);
      const theirs = cliTable(head, rows, widths, aligns);
      if (ours.join('\n') !== theirs.join('\n')) {
        expect({ table: t, widths, aligns, head, rows, lines: ours }).toEqual({ table: t, widths, aligns, head, rows, lines: theirs });
      }
    }
  });

  it('wraps at spaces, carries a colour over to the next line, and cuts a word wider than its column', () => {
    expect(cellLines('one two three', 7)).toEqual(['one two', 'three']);
    expect(cellLines('', 5)).toEqual([]);
    expect(cellLines('   ', 5)).toEqual([]);
    expect(cellLines(paint('red', 'one two'), 3)).toEqual(['\x1b[31mone\x1b[39m', '\x1b[31mtwo\x1b[39m']);
    expect(fitCell('abcdefgh', 5, 'left')).toBe('abcd…');
    expect(fitCell(paint('bold', 'abcdefgh'), 5, 'left')).toBe('\x1b[1mabcd\x1b[22m…');
    expect(fitCell('ab', 5, 'right')).toBe('   ab');
  });
});
