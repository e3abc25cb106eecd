// Jupyter MIME bundles: what a notebook shows for a result, an allocation or
// a list of regions. Deno's kernel calls obj[Symbol.for('Jupyter.display')]()
// on a cell's value and sends the returned object as the message's `data`
// (mimetype → value, serialised as JSON); ijavascript does the same with
// `_toMime()`. So text types are strings, `application/json` is the value
// itself, and a type with nothing to show is left out (an undefined or null
// value would break the notebook file's schema).
import { inspect } from 'node:util';
import type { Allocation } from '../allocation';
import type { ChunkHeader } from '../chunk';
import type { ExperimentResult } from '../result-data';
import { hex, plural, shortBytes } from '../format';
import { toJSONValue } from '../json';
import type { MemoryRegion } from '../maps';
import { cellStyle, SCROLL_STYLE, TABLE_STYLE } from './html';
import { chunkFlags, regionPath } from './inspect';
import { esc } from './svg';
import type { MimeBundle } from '../presenters';

export type { MimeBundle } from '../presenters';

/** An experiment's result: its REPL text, its HTML, its chart (if any) and its data. */
export function mimeBundle(result: ExperimentResult): MimeBundle {
  const bundle: MimeBundle = {
    'text/plain': plain(result),
    'text/html': result.toHTML(),
  };
  const svg = result.toSVG();
  if (svg !== undefined) bundle['image/svg+xml'] = svg;
  bundle['application/json'] = toJSONValue(result);
  return bundle;
}

/** What a notebook shows for one allocation, read from the allocator now. */
export function allocationBundle(allocation: Allocation): MimeBundle {
  const data = allocationData(allocation);
  const rows: [string, string][] = [
    ['address', hex(allocation.address)],
    ['call', `${allocation.call}(${allocation.requested})`],
  ];
  if (data.freed) {
    rows.push(['state', 'freed: glibc owns the memory again, so there is nothing to read']);
  } else {
    const chunk = data.chunk!;
    rows.push(
      ['usable size', `${data.usableSize} B (${data.usableSize! - allocation.requested} more than asked for)`],
      ['chunk', `${hex(chunk.address)}, ${chunk.size} B, flags ${chunkFlags(chunk)}`],
      ['region', data.region === undefined ? 'none (not in /proc/self/maps)' : regionRange(data.region)],
    );
  }
  const html = `<table class="heapscope-allocation" style="${TABLE_STYLE}"><tbody>${rows
    .map(([k, v]) => `<tr><th style="${cellStyle(false)}">${esc(k)}</th><td style="${cellStyle(false)}"><code>${esc(v)}</code></td></tr>`)
    .join('')}</tbody></table>`;
  return { 'text/plain': plain(allocation), 'text/html': html, 'application/json': toJSONValue(data) };
}

/** A table of regions, low to high, as /proc/self/maps lists them. */
export function regionsBundle(regions: readonly MemoryRegion[]): MimeBundle {
  const withRss = regions.some((r) => r.rss !== undefined);
  const head = ['start', 'end', 'size', 'perms', 'kind', ...(withRss ? ['rss'] : []), 'path'];
  const cells = regions.map((r) => [
    hex(r.start), hex(r.end), shortBytes(r.size), r.perms, r.kind,
    ...(withRss ? [r.rss === undefined ? '' : shortBytes(r.rss)] : []),
    regionPath(r),
  ]);
  const numeric = (i: number) => i === 2 || (withRss && i === 5);
  const html = `<div style="${SCROLL_STYLE}"><table class="heapscope-maps" style="${TABLE_STYLE}"><thead><tr>${head.map((h, i) => `<th style="${cellStyle(numeric(i))}">${h}</th>`).join('')}</tr></thead><tbody>${cells
    .map((row) => `<tr>${row.map((c, i) => `<td style="${cellStyle(numeric(i))}">${i < 2 ? `<code>${c}</code>` : esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
  const text = regions.map((r) => plain(r)).join('\n');
  return { 'text/plain': `${plural(regions.length, 'region')}\n${text}`, 'text/html': html, 'application/json': toJSONValue(regions) };
}

interface AllocationData {
  address: bigint;
  requested: number;
  call: string;
  freed: boolean;
  usableSize?: number;
  chunk?: ChunkHeader;
  region?: MemoryRegion;
}

// A freed handle throws on every read, so only its identity is shown.
function allocationData(a: Allocation): AllocationData {
  const base = { address: a.address, requested: a.requested, call: a.call, freed: a.freed };
  if (a.freed) return base;
  return { ...base, usableSize: a.usableSize, chunk: a.chunk, region: a.region };
}

function regionRange(r: MemoryRegion): string {
  return `${r.kind} ${hex(r.start)}–${hex(r.end)} ${r.perms}${r.path === '' ? '' : ` ${r.path}`}`;
}

// The REPL's own text (util.inspect.custom where the class has one), without colour codes.
function plain(value: unknown): string {
  return inspect(value, { colors: false, depth: 4 });
}
