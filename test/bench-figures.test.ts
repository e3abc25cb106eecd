// The README's table of where each performance target stands is the record
// in bench/figures.json, as `npm run bench -- --recorded` prints it: a row
// recorded again without the README following fails here. Nothing is timed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { SYNC_CHILD } from './helpers/sync-child';

// A file and a script's output are read, no live heap.
heapRoomNotNeeded();

const ROOT = path.resolve(__dirname, '..');

describe('bench/figures.json', () => {
  const recorded = JSON.parse(fs.readFileSync(path.join(ROOT, 'bench', 'figures.json'), 'utf8')) as {
    ratios: Record<string, { ratio: number; against: string; figure?: number; verdict?: string }>;
  };

  it('holds each row\'s own figure and a verdict that its figures bear out', () => {
    for (const [id, row] of Object.entries(recorded.ratios)) {
      expect(typeof row.figure, id).toBe('number');
      if (row.verdict === 'no target') continue;
      // "met (≤ 1.5× C)": the ratio against the target; "met (< 2 s)": the figure itself, in ns.
      const ratio = /^(met|MISSED) \(≤ ([\d.]+)× (.+)\)$/.exec(row.verdict ?? '');
      const time = /^(met|MISSED) \(< ([\d.]+) s\)$/.exec(row.verdict ?? '');
      expect(ratio ?? time, `${id}: ${row.verdict}`).not.toBeNull();
      if (ratio !== null) {
        expect(ratio[3], id).toBe(row.against);
        expect(ratio[1] === 'met', id).toBe(row.ratio <= Number(ratio[2]));
      } else {
        expect(time![1] === 'met', id).toBe(row.figure! < Number(time![2]) * 1e9);
      }
    }
  });

  it('is the table the README shows, as printed', () => {
    const table = execFileSync(process.execPath, [path.join(ROOT, 'bench', 'run.mjs'), '--recorded'], { encoding: 'utf8', ...SYNC_CHILD });
    const lines = table.trimEnd().split('\n');
    expect(lines.length).toBe(Object.keys(recorded.ratios).length + 2);
    // The README's table: from the same header line to the first line that is not a row.
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
    const from = readme.indexOf(lines[0]);
    expect(from, 'the README has no table with this header').toBeGreaterThanOrEqual(0);
    let to = from;
    while (to < readme.length && readme[to].startsWith('|')) to++;
    expect(readme.slice(from, to)).toEqual(lines);
  });
});
