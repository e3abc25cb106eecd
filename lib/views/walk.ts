// A walk's other views: its REPL line, a self-contained HTML fragment (the
// SVG strip and the summary), its JSON for notebooks, and the Jupyter bundle.
import { inspect } from 'node:util';
import { hex, shortBytes } from '../format';
import { toJSONValue } from '../json';
import type { InspectContext, MimeBundle } from '../presenters';
import type { HeapChunk, HeapRegionWalk } from '../walk/heap-walk';
import type { HeapWalkData, WalkSVGOptions } from '../walk/walk-data';
import { walkSVG } from './charts/walk';
import { RESULT_CSS } from './html';
import { esc } from './svg';
import { heapTitle } from './walk-strip';

/** The most chunks application/json carries: a notebook stores the bundle whole. */
export const JSON_CHUNKS = 2000;

function stylize(options: InspectContext | undefined, text: string, style: Parameters<NonNullable<InspectContext['stylize']>>[1]): string {
  return typeof options?.stylize === 'function' ? options.stylize(text, style) : text;
}

/** `HeapWalk <main_arena [heap] 0x…: 1234 chunks, in use 310 (1.2 MiB), free 4 (8 KiB), tcache 9 (2 KiB), top 120 KiB; mallinfo2 agrees>`. */
export function inspectWalk(walk: HeapWalkData, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'HeapWalk', 'special');
  const t = walk.main.totals;
  const where = `main_arena [heap] ${stylize(options, hex(walk.main.start), 'number')}`;
  if (depth < 0) return `[${name} ${where}]`;
  const threads = walk.threadHeaps.length === 0 ? '' : `; ${walk.threadHeaps.length} thread-arena heaps, ${walk.threadHeaps.reduce((n, h) => n + h.totals.chunks, 0)} chunks`;
  const failed = walk.checks.filter((c) => c.exact && !c.equal).map((c) => c.mallinfo);
  const verdict = !walk.main.complete ? `walk stopped: ${walk.main.reason}`
    : failed.length === 0 ? 'mallinfo2 agrees' : `mallinfo2 differs: ${failed.join(', ')}`;
  return `${name} <${where}: ${stylize(options, String(t.chunks), 'number')} chunks, in use ${t.inUse.count} (${shortBytes(t.inUse.size)}), ` +
    `free ${t.free.count} (${shortBytes(t.free.size)}), tcache ${t.tcache.count} (${shortBytes(t.tcache.size)}), top ${shortBytes(t.top)}${threads}; ${verdict}>`;
}

function totalsRows(heap: HeapRegionWalk): string {
  const t = heap.totals;
  const row = (what: string, count: number | string, bytes: number) =>
    `<tr><td>${esc(what)}</td><td class="n">${count}</td><td class="n">${bytes}</td><td class="n">${esc(shortBytes(bytes))}</td></tr>`;
  return row('chunks', t.chunks, t.inUse.size + t.free.size + t.tcache.size + t.top) +
    row('in use (fastbin chunks included)', t.inUse.count, t.inUse.size) +
    row('free (in a bin)', t.free.count, t.free.size) +
    row('in tcache', t.tcache.count, t.tcache.size) +
    row('top', heap.top === undefined ? 0 : 1, t.top);
}

/** The SVG strip and the summary: per heap its totals, then the tcache and the mallinfo2 checks. No scripts, nothing fetched. */
export function walkHTML(walk: HeapWalkData, options: WalkSVGOptions & { style?: boolean } = {}): string {
  const parts = [
    '<section class="heapscope-result heapscope-walk">',
    options.style === false ? '' : `<style>${RESULT_CSS}</style>`,
    `<h2>${esc(`The heap, chunk by chunk: ${heapTitle(walk.main)}`)}</h2>`,
    `<figure class="chart">${walkSVG(walk, options)}</figure>`,
  ];
  for (const heap of [walk.main, ...walk.threadHeaps]) {
    parts.push(`<h3>${esc(heapTitle(heap))}</h3>`,
      `<table class="totals"><thead><tr><th></th><th class="n">chunks</th><th class="n">bytes</th><th class="n"></th></tr></thead><tbody>${totalsRows(heap)}</tbody></table>`,
      `<p class="note">${esc(heap.complete ? 'Walked to the end: the chunk sizes tile the heap exactly.' : `Walk stopped: ${heap.reason}`)}</p>`);
  }
  const t = walk.tcache;
  parts.push(`<h3>tcache</h3><p class="note">${esc(t === undefined ? `Not decoded: ${walk.tcacheReason}`
    : `This thread's tcache_perthread_struct at ${hex(t.address)}: ${t.chunks} chunks (${shortBytes(t.bytes)}) in ` +
      `${t.bins.filter((b) => b.count > 0).length} of ${t.bins.length} bins.`)}</p>`);
  parts.push(`<h3>mallinfo2()</h3><p class="note">${esc(`${walk.stable ? 'Unchanged' : 'Changed'} across the snapshot; ` +
    `${walk.singleArena ? 'main_arena is the only arena, so every line must match.' : 'other arenas exist, so only keepcost must match.'}`)}</p>`);
  const checks = walk.checks.map((c) => `<tr><td><code>${esc(c.mallinfo)}</code></td><td class="n">${c.mallinfoValue}</td>` +
    `<td>${c.equal ? '=' : '≠'}</td><td class="n">${c.walkValue}</td><td>${esc(c.walk)}${c.exact ? '' : ' (sums every arena)'}</td></tr>`).join('');
  parts.push(`<table class="checks"><thead><tr><th>mallinfo2</th><th class="n">value</th><th></th><th class="n">walk</th><th>what the walk counts</th></tr></thead><tbody>${checks}</tbody></table>`);
  parts.push('</section>');
  return parts.join('');
}

function chunkJSON(chunk: HeapChunk): Record<string, unknown> {
  return {
    address: chunk.address, size: chunk.size, state: chunk.state, prevInUse: chunk.prevInUse, nonMainArena: chunk.nonMainArena,
    ...(chunk.tcacheStruct ? { tcacheStruct: true } : {}),
    ...(chunk.allocation === undefined ? {} : { allocation: { address: chunk.allocation.address, call: chunk.allocation.call, requested: chunk.allocation.requested } }),
  };
}

/** The walk as plain JSON: every total and check, and the first `limit` chunks (across heaps) with a note when there were more. */
export function walkJSON(walk: HeapWalkData, limit = JSON_CHUNKS): unknown {
  let left = limit;
  let total = 0;
  const heaps = [walk.main, ...walk.threadHeaps].map((heap) => {
    total += heap.chunks.length;
    const shown = heap.chunks.slice(0, Math.max(0, left));
    left -= shown.length;
    const { chunks: _all, top, ...rest } = heap;
    return { ...rest, ...(top === undefined ? {} : { top: chunkJSON(top) }), chunks: shown.map(chunkJSON) };
  });
  const t = walk.tcache;
  return toJSONValue({
    main: heaps[0], threadHeaps: heaps.slice(1),
    ...(t === undefined ? { tcacheReason: walk.tcacheReason } : {
      tcache: { ...t, bins: t.bins.filter((b) => b.count > 0 || b.reason !== undefined) },
    }),
    mallinfo: walk.mallinfo, stable: walk.stable, programBreak: walk.programBreak, singleArena: walk.singleArena,
    checks: walk.checks, attempts: walk.attempts,
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
