// The README's tables of where each performance target stands are the
// records in bench/figures.json, one a machine, as `npm run bench --
// --recorded` prints them: a row recorded again without the README
// following fails here. Nothing is timed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { SYNC_CHILD } from './helpers/sync-child';

// A file and a script's output are read, no live heap.
heapRoomNotNeeded();

const ROOT = path.resolve(__dirname, '..');

interface Recorded {
  environment: { cpu: string; cpus: number };
  ratios: Record<string, { ratio: number; against: string; figure?: number; verdict?: string }>;
}

describe('bench/figures.json', () => {
  const { records } = JSON.parse(fs.readFileSync(path.join(ROOT, 'bench', 'figures.json'), 'utf8')) as { records: Recorded[] };

  it('holds one record a machine', () => {
    expect(records.length).toBeGreaterThan(0);
    const machines = records.map((r) => `${r.environment.cpu} ×${r.environment.cpus}`);
    expect(new Set(machines).size).toBe(machines.length);
  });

  it('holds each row\'s own figure and a verdict that its figures bear out', () => {
    for (const { environment, ratios } of records) {
      for (const [id, row] of Object.entries(ratios)) {
        const where = `${environment.cpu}: ${id}`;
        expect(typeof row.figure, where).toBe('number');
        if (row.verdict === 'no target') continue;
        // "met (≤ 1.5× C)": the ratio against the target; "met (< 2 s)": the figure itself, in ns.
        const ratio = /^(met|MISSED) \(≤ ([\d.]+)× (.+)\)$/.exec(row.verdict ?? '');
        const time = /^(met|MISSED) \(< ([\d.]+) s\)$/.exec(row.verdict ?? '');
        expect(ratio ?? time, `${where}: ${row.verdict}`).not.toBeNull();
        if (ratio !== null) {
          expect(ratio[3], where).toBe(row.against);
          expect(ratio[1] === 'met', where).toBe(row.ratio <= Number(ratio[2]));
        } else {
          expect(time![1] === 'met', where).toBe(row.figure! < Number(time![2]) * 1e9);
        }
      }
    }
  });

  it('is the tables the README shows, as printed', () => {
    const printed = execFileSync(process.execPath, [path.join(ROOT, 'bench', 'run.mjs'), '--recorded'], { encoding: 'utf8', ...SYNC_CHILD });
    // Each record: the line naming its machine, a blank line, its table.
    const blocks = printed.trimEnd().split('\n\n');
    expect(blocks.length).toBe(2 * records.length);
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
    // No table of a machine the file no longer records.
    expect(readme.filter((line) => line.startsWith('Recorded on ')).length).toBe(records.length);
    for (let i = 0; i < records.length; i++) {
      const caption = blocks[2 * i];
      const lines = blocks[2 * i + 1].split('\n');
      expect(caption).toContain(records[i].environment.cpu);
      expect(lines.length).toBe(Object.keys(records[i].ratios).length + 2);
      const from = readme.indexOf(caption);
      expect(from, `the README has no line "${caption}"`).toBeGreaterThanOrEqual(0);
      // The README's table: from the line after the blank one to the first line that is not a row.
      expect(readme[from + 1]).toBe('');
      let to = from + 2;
      while (to < readme.length && readme[to].startsWith('|')) to++;
      expect(readme.slice(from + 2, to), caption).toEqual(lines);
    }
  });
});
