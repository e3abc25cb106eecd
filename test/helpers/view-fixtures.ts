// Recorded results and walks, and every view rendered from them: the golden
// files that hold the views byte for byte while the code behind them moves.
// Bigints, undefined values and non-finite numbers are tagged so that the
// recorded data round-trips exactly (plain JSON would lose all three).
import { inspect } from 'node:util';
import { ExperimentResultView } from '../../lib/experiments/result';
import { ResultData } from '../../lib/experiments/types';
import { toJSON } from '../../lib/json';
import { reportHTML } from '../../lib/report';
import { HeapWalk, HeapWalkData } from '../../lib/walk';
import { walkJSON } from '../../lib/views/walk';
import { renderWalk } from '../../lib/views/walk-strip';
import { renderResult } from '../../lib/views/terminal';

type Tagged = { $bigint: string } | { $undefined: true } | { $number: string };

export function encode(value: unknown): unknown {
  if (typeof value === 'bigint') return { $bigint: value.toString() } satisfies Tagged;
  if (value === undefined) return { $undefined: true } satisfies Tagged;
  if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0))) return { $number: String(Object.is(value, -0) ? '-0' : value) };
  if (Array.isArray(value)) return value.map(encode);
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new Error(`cannot record a ${proto?.constructor?.name ?? 'foreign'} object`);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  }
  return value;
}

export function decode(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decode);
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '$bigint') return BigInt(o.$bigint as string);
    if (keys.length === 1 && keys[0] === '$undefined') return undefined;
    if (keys.length === 1 && keys[0] === '$number') return Number(o.$number);
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = decode(o[k]);
    return out;
  }
  return value;
}

/** What Deno's Jupyter kernel sends for a value. */
function display(value: object): unknown {
  return (value as Record<symbol, () => unknown>)[Symbol.for('Jupyter.display')]();
}

/** The width the terminal views are recorded at. */
export const WIDTH = 100;

/** Every view of one result, by fixture file name. */
export function resultViews(data: ResultData): Record<string, string> {
  const result = new ExperimentResultView(data);
  const views: Record<string, string> = {
    'terminal.txt': renderResult(result, { width: WIDTH, color: false }),
    'terminal-40.txt': renderResult(result, { width: 40, color: false }),
    'terminal-color.txt': renderResult(result, { width: WIDTH, color: true }),
    'markdown.md': result.toMarkdown(),
    'html.html': result.toHTML(),
    'json.json': toJSON(result.toJSON(), 0),
    'inspect.txt': inspect(result, { colors: false }),
    'inspect-nested.txt': inspect({ result }, { colors: false, depth: 1 }),
    'bundle.json': toJSON(display(result), 0),
  };
  const svg = result.toSVG();
  if (svg !== undefined) views['svg.svg'] = svg;
  return views;
}

/** The report page over every recorded result. */
export function reportView(all: readonly ResultData[]): string {
  return reportHTML(all);
}

/** Every view of one walk, by fixture file name. */
export function walkViews(data: HeapWalkData): Record<string, string> {
  const walk = new HeapWalk(data);
  return {
    'terminal.txt': renderWalk(walk, { width: WIDTH, color: false }),
    'terminal-color.txt': renderWalk(walk, { width: WIDTH, color: true }),
    'svg.svg': walk.toSVG(),
    'html.html': walk.toHTML(),
    'json.json': toJSON(walkJSON(walk), 0),
    'cli.json': toJSON(walk, 0),
    'inspect.txt': inspect(walk, { colors: false }),
    'bundle.json': toJSON(display(walk), 0),
  };
}
