import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChunkSizeRow } from '../../lib/experiments/chunk-sizes';
import { stairs } from '../../lib/experiments/chunk-sizes/measure';
import { HeapGrowthRow } from '../../lib/experiments/heap-growth';
import { breakSteps } from '../../lib/experiments/heap-growth/measure';
import { LayoutRow } from '../../lib/experiments/layout';
import { MmapThresholdRow, ThresholdPhase } from '../../lib/experiments/mmap-threshold';
import { bracketOf } from '../../lib/experiments/mmap-threshold/prober';
import { bracketText } from '../../lib/experiments/mmap-threshold/bracket';
import { experiments, run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { hex, span } from '../../lib/format';
import { maps } from '../../lib/maps';
import { renderMaps, renderResult, terminalOptions } from '../../lib/views/terminal';
import { SYNC_CHILD } from '../helpers/sync-child';
import { hostLibraries, nodeAgainLine } from '../helpers/foreign-env';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// The experiments run in children and the command lines in nodes of their own: no live heap of this process is read.
heapRoomNotNeeded();

const ANSI = /\x1b\[[0-9;]*m/;
const WIDTHS = [40, 60, 80, 120, 200];
const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');

/** Characters a terminal shows (every character heapscope prints is one column wide). */
function columns(line: string): number {
  return [...stripVTControlCharacters(line)].length;
}

function widest(text: string): number {
  return Math.max(...text.split('\n').map(columns));
}

/** The environment of a child, with only the colour variables given. */
function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const out = { ...process.env };
  delete out.FORCE_COLOR;
  delete out.NO_COLOR;
  delete out.NODE_DISABLE_COLORS;
  return { ...out, ...extra };
}

describe('renderResult, on real results', () => {
  const results = new Map<string, ExperimentResult>();
  beforeAll(async () => {
    for (const e of experiments()) results.set(e.name, await run(e.name));
  }, 60_000);

  it.each(WIDTHS)('keeps every line of every experiment within %i columns, with no colour unless asked', (width) => {
    for (const result of results.values()) {
      const text = renderResult(result, { width, color: false });
      expect(text).not.toMatch(ANSI);
      expect(widest(text), `${result.name} at ${width}`).toBeLessThanOrEqual(width);
    }
  });

  it('colours when asked, and the colours add nothing but escape codes', () => {
    for (const result of results.values()) {
      const coloured = renderResult(result, { width: 100, color: true });
      expect(coloured, result.name).toMatch(ANSI);
      expect(stripVTControlCharacters(coloured)).toBe(renderResult(result, { width: 100 }));
      expect(widest(coloured)).toBeLessThanOrEqual(100);
    }
  });

  it('tells the question, where it ran and every finding and surprise, wrapped', () => {
    for (const result of results.values()) {
      const text = renderResult(result, { width: 80 });
      expect(text.startsWith(`== ${result.name}: `)).toBe(true);
      const flat = text.replace(/\s+/g, ' ');
      expect(flat).toContain(result.question.replace(/\s+/g, ' '));
      expect(flat).toContain(`glibc ${result.environment.glibc}, node ${result.environment.node}, fresh child process`);
      for (const sentence of [...result.findings, ...result.surprises]) {
        expect(flat, result.name).toContain(sentence.replace(/\s+/g, ' '));
      }
    }
  });

  it('chunk-sizes: one table line per run of equal chunk sizes, and the staircase with a row per size', () => {
    const result = results.get('chunk-sizes') as ExperimentResult<ChunkSizeRow>;
    const text = renderResult(result, { width: 80 });
    const lines = text.split('\n');
    const runs = stairs(result.rows);
    for (const s of runs.slice(0, 4)) {
      const usable = result.rows.find((r) => r.request === s.from)!.usableSize;
      // A run of one request (one served from a free chunk 16 bytes bigger than asked, say) is one number.
      expect(lines.some((l) => new RegExp(`^ *${span(s.from, s.to)} +${s.chunkSize} +${usable} `).test(l)), span(s.from, s.to)).toBe(true);
    }
    // The staircase has one row per 16-byte chunk size, labelled, highest on top,
    // up to the largest chunk among the requests it draws.
    const title = /The staircase: chunk size for malloc\(0\) … malloc\((\d+)\)/.exec(text);
    expect(title).not.toBeNull();
    const drawn = result.rows.filter((r) => r.request <= Number(title![1]));
    const top = Math.max(...drawn.map((r) => r.chunkSize));
    const labels = lines.filter((l) => /^ *\d+ ┤/.test(l)).map((l) => Number(l.split('┤')[0]));
    expect(labels).toEqual(Array.from({ length: (top - 32) / 16 + 1 }, (_, i) => top - 16 * i));
    expect(labels.length).toBeGreaterThanOrEqual(8);
    // A ⋮ line stands wherever measured requests are left out between two rows shown, and nowhere else.
    const table = lines.slice(lines.findIndex((l) => l.startsWith('Chunk size per request')) + 3);
    // Up to the note under it, which starts with a count too.
    const shown = table.slice(0, table.findIndex((l) => !/^ *(\d|⋮)/.test(l) || / rows \(/.test(l)));
    let previous: number | undefined;
    let cut = false;
    let gaps = 0;
    for (const l of shown) {
      if (l.trim().startsWith('⋮')) {
        cut = true;
        continue;
      }
      const [, from, to] = /^ *(\d+)(?:–(\d+))? /.exec(l)!;
      if (previous !== undefined) {
        const between = result.rows.some((r) => r.request > previous! && r.request < Number(from));
        expect(cut, `between ${previous} and ${from}`).toBe(between);
        if (between) gaps++;
      }
      previous = Number(to ?? from);
      cut = false;
    }
    expect(gaps).toBeGreaterThan(0);
    // Under it, how many of the runs it shows, of how many requests, and where to get them all.
    const rows = shown.filter((l) => !l.trim().startsWith('⋮')).length;
    expect(text.replace(/\s+/g, ' ')).toContain(
      `${rows} of ${runs.length} rows (a row per run of consecutive requests that got the same chunk size) of the ${result.rows.length} measured. ` +
      'Every row measured: heapscope run chunk-sizes --json');
    expect(rows).toBe(Math.min(20, runs.length));
  });

  it('heap-growth: the break moves in a table of at most 20 rows, with the rest counted', () => {
    const result = results.get('heap-growth') as ExperimentResult<HeapGrowthRow>;
    const steps = breakSteps(result.rows);
    const text = renderResult(result, { width: 100 });
    const shown = text.split('\n').filter((l) => /^(malloc|free) #\d+ /.test(l));
    expect(shown.length).toBe(Math.min(20, steps.length));
    expect(shown[0]).toContain(hex(steps[0].to));
    expect(shown.at(-1)).toContain(hex(steps.at(-1)!.to));
    const count = shown.length < steps.length ? `${shown.length} of ${steps.length}` : `${steps.length}`;
    expect(text.replace(/\s+/g, ' ')).toContain(`${count} rows (every step that moved the break) of the ${result.rows.length} measured.`);
    expect(text).toContain(`The break above ${hex(result.rows[0].breakBefore)}`);
  });

  it('mmap-threshold: each phase with the bracket its probes measured', () => {
    const result = results.get('mmap-threshold') as ExperimentResult<MmapThresholdRow>;
    const text = renderResult(result, { width: 120 });
    const phases = [...new Set(result.rows.filter((r) => r.kind === 'probe').map((r) => r.phase as ThresholdPhase))];
    expect(phases.length).toBeGreaterThan(1);
    const lines = text.split('\n');
    for (const phase of phases) {
      const bracket = bracketText(bracketOf(result.rows, phase));
      expect(lines.some((l) => l.startsWith(`${phase} `) && l.trimEnd().endsWith(bracket)), phase).toBe(true);
      // And a strip of probes for it: ● mmapped, ○ from the heap.
      const strip = lines.find((l) => new RegExp(`^ *${phase} │ `).test(l));
      expect(strip, phase).toBeDefined();
      const mmapped = result.rows.some((r) => r.kind === 'probe' && r.phase === phase && (r.role === 'probe' || r.role === 'sweep') && r.mmapped);
      expect(/[●◐]/.test(strip!), phase).toBe(mmapped);
    }
  });

  it('layout: the objects top to bottom by address, each gap labelled', () => {
    const result = results.get('layout') as ExperimentResult<LayoutRow>;
    const text = renderResult(result, { width: 100 });
    const diagram = text.slice(text.indexOf('The address space, top to bottom'));
    const addresses = diagram.split('\n').map((l) => /^ *(0x[0-9a-f]+) /.exec(l)?.[1]).filter((a) => a !== undefined);
    expect(addresses).toEqual([...result.rows].reverse().map((r) => hex(r.address)));
    expect(diagram.split('\n').filter((l) => l.includes('↕')).length).toBe(result.rows.length - 1);
  });

  it('free: the break over the steps, labelled with the lowest break', () => {
    const result = results.get('free')!;
    const text = renderResult(result, { width: 80 });
    expect(text).toMatch(/The program break above 0x[0-9a-f]+ over the \d+ steps/);
    expect(text).toMatch(/[┌┐└┘]/);
  });

  it('refuses options it cannot honour', () => {
    const result = results.get('paging')!;
    expect(() => renderResult(result, { width: 10 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => renderResult(result, { width: 80.5 })).toThrow(TypeError);
    expect(() => renderResult(result, { color: 'yes' as unknown as boolean })).toThrow(TypeError);
  });
});

describe('renderMaps', () => {
  it('is a table of the real map within the width, with the heap on its own row', () => {
    const regions = maps();
    const heap = regions.find((r) => r.kind === 'heap')!;
    for (const width of WIDTHS) {
      const text = renderMaps(regions, { width });
      expect(text).not.toMatch(ANSI);
      expect(widest(text)).toBeLessThanOrEqual(width);
      expect(text.split('\n')).toHaveLength(regions.length + 2);
      expect(text).toMatch(new RegExp(`^ *${hex(heap.start)} `, 'm'));
    }
    expect(renderMaps(regions, { width: 120 })).toMatch(new RegExp(`${hex(heap.end)} +rw-p .* heap +\\[heap\\]`));
  });

  it('adds the resident size when the map has it, and colours only when asked', () => {
    const regions = maps({ rss: true });
    const text = renderMaps(regions, { width: 160 });
    expect(text.split('\n')[0]).toMatch(/ rss /);
    const coloured = renderMaps(regions, { width: 160, color: true });
    expect(coloured).toMatch(ANSI);
    expect(stripVTControlCharacters(coloured)).toBe(text);
  });
});

describe('terminalOptions', () => {
  it('a pipe gets 80 columns and no colour; a TTY its own width and colour', () => {
    expect(terminalOptions({ isTTY: false }, {})).toEqual({ width: 80, color: false });
    expect(terminalOptions({ isTTY: true, columns: 132 }, {})).toEqual({ width: 132, color: true });
    expect(terminalOptions({ isTTY: true, columns: 132 }, { TERM: 'dumb' }).color).toBe(false);
  });

  it('NO_COLOR set to anything turns colour off, even with FORCE_COLOR; an empty NO_COLOR does not', () => {
    expect(terminalOptions({ isTTY: true, columns: 100 }, { NO_COLOR: '1' }).color).toBe(false);
    expect(terminalOptions({ isTTY: true, columns: 100 }, { NO_COLOR: 'false' }).color).toBe(false);
    expect(terminalOptions({ isTTY: true, columns: 100 }, { NO_COLOR: '' }).color).toBe(true);
    expect(terminalOptions({ isTTY: false }, { FORCE_COLOR: '1' }).color).toBe(true);
    expect(terminalOptions({ isTTY: false }, { FORCE_COLOR: '0' }).color).toBe(false);
    expect(terminalOptions({ isTTY: false }, { FORCE_COLOR: '1', NO_COLOR: '1' }).color).toBe(false);
  });
});

describe('the CLI renders with the terminal views', () => {
  function cli(args: string[], extra: Record<string, string> = {}) {
    const child = spawnSync(process.execPath, [CLI, ...args], { ...SYNC_CHILD, encoding: 'utf8', env: env(extra) });
    return { code: child.status, stdout: child.stdout, stderr: child.stderr };
  }

  it('piped: plain text in 80 columns', () => {
    const { code, stdout } = cli(['run', 'chunk-sizes']);
    expect(code).toBe(0);
    expect(stdout).not.toMatch(ANSI);
    expect(widest(stdout)).toBeLessThanOrEqual(80);
    expect(stdout).toContain('The staircase');
  });

  it('FORCE_COLOR colours a pipe; NO_COLOR wins over it', () => {
    const forced = cli(['run', 'chunk-sizes'], { FORCE_COLOR: '1' });
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(ANSI);
    const both = cli(['run', 'chunk-sizes'], { FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(both.code).toBe(0);
    expect(both.stdout).not.toMatch(ANSI);
  });

  it('--json stays plain JSON whatever the colour variables say', () => {
    const { code, stdout } = cli(['run', 'kernel-calls', '--json'], { FORCE_COLOR: '1' });
    expect(code).toBe(0);
    expect(stdout).not.toMatch(ANSI);
    expect(JSON.parse(stdout).name).toBe('kernel-calls');
  });

  it('maps: a table in 80 columns when piped', () => {
    const { code, stdout } = cli(['maps']);
    expect(code).toBe(0);
    expect(widest(stdout)).toBeLessThanOrEqual(80);
    expect(stdout.split('\n')[0]).toMatch(/^ +start +perms +size +kind +path$/);
  });

  // util-linux's script(1) gives the CLI a real pseudo-terminal of a chosen width.
  const script = ['/usr/bin/script', '/bin/script'].find((p) => fs.existsSync(p));
  it.skipIf(script === undefined)('on a terminal: its width and colour, and NO_COLOR still turns colour off (needs script(1))', () => {
    const onTTY = (extra: Record<string, string>) => spawnSync(
      script!, ['-qec', `stty cols 100 rows 50; ${nodeAgainLine()} ${CLI} run chunk-sizes`, '/dev/null'],
      { ...SYNC_CHILD, encoding: 'utf8', env: hostLibraries(env(extra)) },
    );
    const coloured = onTTY({});
    expect(coloured.status).toBe(0);
    expect(coloured.stdout).toMatch(ANSI);
    const lines = coloured.stdout.replace(/\r/g, '').split('\n');
    expect(Math.max(...lines.map(columns))).toBeLessThanOrEqual(100);
    // Wider than the 80 a pipe gets: the staircase's axis spans the terminal.
    expect(Math.max(...lines.map(columns))).toBeGreaterThan(80);
    const plain = onTTY({ NO_COLOR: '1' });
    expect(plain.status).toBe(0);
    expect(plain.stdout).not.toMatch(ANSI);
  });
});
