// The import graph of lib/: no cycles, and dependencies point one way only,
// records → experiments → views → entry points, with no view importing an
// experiment (see scripts/import-graph.mjs for what is parsed and the layers).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain script, no declarations
import { cycles, importGraph, layerOf, layerViolations } from '../scripts/import-graph.mjs';
import { heapRoomNotNeeded } from './helpers/heap-room';

// Source files read, no live heap.
heapRoomNotNeeded();

type Edge = [string, string];
const ROOT = path.resolve(__dirname, '..');

const key = ([a, b]: Edge) => `${a} -> ${b}`;

describe('the import graph checker', () => {
  it('finds a cycle, however long, and a file importing itself', () => {
    expect(cycles([['a', 'b'], ['b', 'c'], ['c', 'a'], ['c', 'd']])).toEqual([['a', 'b', 'c']]);
    expect(cycles([['a', 'a']])).toEqual([['a']]);
    expect(cycles([['a', 'b'], ['b', 'c'], ['a', 'c']])).toEqual([]);
  });

  it('puts files in their layers and flags upward imports and view → experiment imports', () => {
    expect(layerOf('lib/maps.ts')).toBe('records');
    expect(layerOf('lib/walk/chunk.ts')).toBe('records');
    expect(layerOf('lib/experiments/free.ts')).toBe('experiments');
    expect(layerOf('lib/views/svg.ts')).toBe('views');
    expect(layerOf('lib/cli.ts')).toBe('entry');
    expect(layerViolations([
      ['lib/maps.ts', 'lib/views/inspect.ts'],
      ['lib/views/table.ts', 'lib/experiments/free.ts'],
      ['lib/experiments/free.ts', 'lib/views/svg.ts'],
      ['lib/views/terminal.ts', 'lib/maps.ts'],
      ['lib/cli.ts', 'lib/views/terminal.ts'],
      ['lib/experiments/free.ts', 'lib/plan.ts'],
    ])).toEqual([
      ['lib/maps.ts', 'lib/views/inspect.ts'],
      ['lib/views/table.ts', 'lib/experiments/free.ts'],
      ['lib/experiments/free.ts', 'lib/views/svg.ts'],
    ]);
  });

  it('sees the imports lib/ has: type-only, export-from, multi-line and require', () => {
    const edges = (importGraph(ROOT) as Edge[]).map(key);
    expect(edges).toContain('lib/index.ts -> lib/report.ts');
    expect(edges).toContain('lib/cli.ts -> lib/command-line.ts');
    expect(edges.length).toBeGreaterThan(300);
  });
});

describe('lib/', () => {
  const edges = importGraph(ROOT) as Edge[];

  it('has no import cycle', () => {
    expect(cycles(edges)).toEqual([]);
  });

  it('imports only down the layers, and no view imports an experiment', () => {
    expect(layerViolations(edges).map(key)).toEqual([]);
  });

  it('loads its own modules later with import() alone: a require() of one finds no .ts where the TypeScript runs itself (vitest)', () => {
    const files = (fs.readdirSync(path.join(ROOT, 'lib'), { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
      .map((f) => `lib/${f.split(path.sep).join('/')}`);
    const requiring = files.filter((f) => /\brequire\(\s*['"]\.\.?\//.test(fs.readFileSync(path.join(ROOT, f), 'utf8').replace(/\/\/.*$/gm, '')));
    // main.ts is the package's CommonJS face: `export =` a spread of require('./index').
    expect(requiring).toEqual(['lib/main.ts']);
  });
});
