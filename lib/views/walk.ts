// A walk's other views: its REPL line, a self-contained HTML fragment (the
// SVG strip and the summary), its JSON for notebooks, and the Jupyter bundle.
import { inspect } from 'node:util';
import { hex, plural, shortBytes } from '../format';
import { toJSONValue } from '../json';
import type { InspectContext, MimeBundle } from '../presenters';
import { HeapChunk, PLACES, WalkTotals } from '../walk/heap-walk';
import { HeapWalkData, walkRegions, WalkSVGOptions } from '../walk/walk-data';
import { walkSVG } from './charts/walk';
import { RESULT_CSS } from './html';
import { esc } from './svg';
import { heapTitle, snapshotLines, totalsLine } from './walk-strip';
import { own } from '../validate';

/** The most chunks application/json carries: a notebook stores the bundle whole. */
export const JSON_CHUNKS = 2000;

function stylize(options: InspectContext | undefined, text: string, style: Parameters<NonNullable<InspectContext['stylize']>>[1]): string {
  return typeof options?.stylize === 'function' ? options.stylize(text, style) : text;
}

/** `HeapWalk <3 regions, 1234 chunks: in use 310 (1.2 MiB), …, top 120 KiB; mallinfo2 agrees>`. */
export function inspectWalk(walk: HeapWalkData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'HeapWalk', 'special');
  const regions = walkRegions(walk);
  const where = `${walk.pid === undefined ? '' : `process ${walk.pid}, `}${regions.length} region${regions.length === 1 ? '' : 's'}`;
  if (depth < 0) return `[${name} ${where}]`;
  const stopped = regions.filter((r) => !r.complete).length;
  const failed = walk.checks.filter((c) => !c.equal).map((c) => c.field);
  const verdict = [
    ...(walk.consistent ? [] : ['snapshot torn']),
    ...(stopped === 0 ? [] : [`${stopped} walk${stopped === 1 ? '' : 's'} incomplete`]),
    walk.mallinfo === undefined ? 'no mallinfo2 to compare' : failed.length === 0 ? 'mallinfo2 agrees' : `mallinfo2 differs: ${failed.join(', ')}`,
  ].join('; ');
  return `${name} <${where}: ${totalsLine(walk.totals).replace(/^(\d+)/, (n) => stylize(options, n, 'number'))}; ${verdict}>`;
}

function totalsRows(t: WalkTotals): string {
  const row = (what: string, count: number | string, bytes: number) =>
    `<tr><td>${esc(what)}</td><td class="n">${count}</td><td class="n">${bytes}</td><td class="n">${esc(shortBytes(bytes))}</td></tr>`;
  return row('chunks', t.chunks, t.bytes) +
    PLACES.filter((p) => t.places[p].count > 0).map((p) => row(p, t.places[p].count, t.places[p].size)).join('') +
    (t.ours.count > 0 ? row('heapscope allocations (in use)', t.ours.count, t.ours.size) : '');
}

/** The SVG strip and the summary: per region its totals, then the tcaches and the mallinfo2 checks. No scripts, nothing fetched. */
export function walkHTML(walk: HeapWalkData, options: WalkSVGOptions & { style?: boolean } = {}): string {
  const parts = [
    '<section class="heapscope-result heapscope-walk">',
    options.style === false ? '' : `<style>${RESULT_CSS}</style>`,
    `<h2>${esc(`The heap, chunk by chunk${walk.pid === undefined ? '' : ` (process ${walk.pid})`}: ${heapTitle(walk.main)}`)}</h2>`,
    `<figure class="chart">${walkSVG(walk, options)}</figure>`,
  ];
  const table = (t: WalkTotals) =>
    `<table class="totals"><thead><tr><th></th><th class="n">chunks</th><th class="n">bytes</th><th class="n"></th></tr></thead><tbody>${totalsRows(t)}</tbody></table>`;
  for (const heap of walkRegions(walk)) {
    parts.push(`<h3>${esc(heapTitle(heap))}</h3>`, table(heap.totals),
      `<p class="note">${esc(heap.complete ? 'Walked to the end: the chunk sizes tile the region exactly.' : `Walk not complete: ${heap.reason}`)}</p>`);
  }
  parts.push('<h3>Every region</h3>', table(walk.totals));
  parts.push('<h3>tcache</h3>');
  if (walk.tcaches.length === 0) parts.push('<p class="note">None found in the regions shown.</p>');
  for (const t of walk.tcaches) {
    const used = t.bins.filter((b) => b.count > 0);
    parts.push(`<p class="note">${esc(`${t.owner === 'calling-thread' ? "This thread's" : "Another thread's"} tcache_perthread_struct at ${hex(t.address)}: ` +
      `${plural(used.reduce((n, b) => n + b.count, 0), 'chunk')} in ${used.length} of ${t.bins.length} bins.`)}</p>`);
  }
  const [first, ...rest] = snapshotLines(walk);
  parts.push(`<h3>mallinfo2()</h3><p class="note">${esc(first)}</p>`);
  if (walk.mallinfo !== undefined) {
    const checks = walk.checks.map((c) => `<tr><td><code>${esc(c.field)}</code></td><td class="n">${c.mallinfo}</td>` +
      `<td>${c.equal ? '=' : '≠'}</td><td class="n">${c.walk}</td><td class="n">${c.equal ? '' : c.difference}</td></tr>`).join('');
    parts.push(`<table class="checks"><thead><tr><th>mallinfo2</th><th class="n">value</th><th></th><th class="n">walk</th><th class="n">difference</th></tr></thead><tbody>${checks}</tbody></table>`);
  } else {
    parts.push(`<pre>${esc(rest.join('\n'))}</pre>`);
  }
  for (const p of walk.problems) parts.push(`<p class="note">${esc(`Problem: ${p}`)}</p>`);
  parts.push('</section>');
  return parts.join('');
}

function chunkJSON(chunk: HeapChunk): Record<string, unknown> {
  const { allocation, ...rest } = chunk;
  return {
    ...rest,
    ...(allocation === undefined ? {} : { allocation: { address: allocation.address, call: allocation.call, requested: allocation.requested } }),
  };
}

/** The walk as plain JSON: every total and check, and the first `limit` chunks (across regions) with a note when there were more. */
export function walkJSON(walk: HeapWalkData, limit = JSON_CHUNKS): unknown {
  let left = limit;
  let total = 0;
  const regions = walkRegions(walk).map((heap) => {
    total += heap.chunks.length;
    const shown = heap.chunks.slice(0, Math.max(0, left));
    left -= shown.length;
    // Own properties only: a region whose walk met no top has none, whatever Object.prototype holds.
    const { chunks: _all, top: _top, ...rest } = heap;
    const top = Object.hasOwn(heap, 'top') ? heap.top : undefined;
    return { ...rest, ...(top === undefined ? {} : { top: chunkJSON(top) }), chunks: shown.map(chunkJSON) };
  });
  const { main: _main, mainTop: _mainTop, threadHeaps: _threads, tcaches, ...rest } = walk;
  const mainTop = Object.hasOwn(walk, 'mainTop') ? walk.mainTop : undefined;
  return toJSONValue({
    ...rest,
    main: regions[0], ...(mainTop === undefined ? {} : { mainTop: regions[1] }), threadHeaps: regions.slice(mainTop === undefined ? 1 : 2),
    tcaches: tcaches.map(({ struct: _struct, bins, ...t }) => ({ ...t, bins: bins.filter((b) => b.count > 0 || own(b, 'reason') !== undefined) })),
    ...(total > limit ? { truncated: `${limit} of ${total} chunks shown, in address order from main_arena's first; every total counts all ${total}` } : {}),
  });
}

/** What a notebook shows: the REPL line, the HTML, the SVG and the JSON. */
export function walkBundle(walk: HeapWalkData): MimeBundle {
  return {
    'text/plain': inspect(walk, { colors: false }),
    'text/html': walkHTML(walk),
    'image/svg+xml': walkSVG(walk),
    'application/json': walkJSON(walk),
  };
}
