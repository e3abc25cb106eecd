// The process layout diagram: the seed's picture (kernel at the top, then
// stack, the mmap region, heap, bss, data, text) drawn from the regions the
// probes landed in, at their real addresses. Regions keep their order and
// roughly their relative size; the gaps between them are compressed to a
// band labelled with the real distance.
import { COLORS, Figure, HALO, Mark } from '../../chart-model';
import { line, rect, text, zigzag } from '../../figure-build';
import { hex, shortBytes } from '../../format';
import { ResultData } from '../../result-data';
import { LayoutRow, PlacedRegion } from './index';

const W = 840;
const X = { tier: 96, address: 232, block: 240, blockWidth: 220, label: 490 };
const TOP = 40;
const GAP_BAND = 26;
const LABEL_SPACING = 13;
const KERNEL_HEIGHT = 48;
const TOP_OF_ADDRESS_SPACE = 1n << 64n;

const FILL: Partial<Record<string, string>> = {
  text: COLORS.blue,
  rodata: COLORS.teal,
  data: COLORS.green,
  bss: '#8cd17d',
  heap: COLORS.orange,
  'arena-heap': COLORS.orange,
  anonymous: COLORS.red,
  stack: COLORS.purple,
  vdso: COLORS.brown,
  kernel: '#555',
};

/** Fills light enough to need dark text. */
const DARK_TEXT = new Set(['bss', 'rodata', 'heap', 'arena-heap']);

export interface LayoutBlock {
  start: bigint;
  end: bigint;
  kind: string;
  /** What the block is: `text · node`, `[heap]`, `kernel`. */
  name: string;
  /** The part of the seed's picture it belongs to. */
  tier: string;
  probes: LayoutRow[];
}

function baseName(r: PlacedRegion): string {
  if (r.path === '') return r.object === undefined ? 'anonymous mapping' : r.object.slice(r.object.lastIndexOf('/') + 1);
  return r.path.startsWith('[') ? r.path : r.path.slice(r.path.lastIndexOf('/') + 1);
}

/** The blocks the diagram draws, low to high: each region a row points into, then the kernel's half. */
export function layoutBlocks(rows: readonly LayoutRow[]): LayoutBlock[] {
  const byStart = new Map<bigint, LayoutBlock>();
  const nodeObject = rows.find((r) => r.name === 'node-text')?.region?.object;
  for (const row of rows) {
    const r = row.region;
    if (r === undefined || row.name === 'vsyscall') continue;
    let block = byStart.get(r.start);
    if (block === undefined) {
      const name = r.kind === 'heap' || r.kind === 'stack' || r.kind === 'vdso' || r.kind === 'anonymous' ? baseName(r) : `${r.kind} · ${baseName(r)}`;
      block = { start: r.start, end: r.end, kind: r.kind, name, tier: '', probes: [] };
      byStart.set(r.start, block);
    }
    if (row.type === 'probe') block.probes.push(row);
  }
  const blocks = [...byStart.values()].sort((a, b) => (a.start < b.start ? -1 : 1));
  const heap = blocks.find((b) => b.kind === 'heap' || b.kind === 'arena-heap');
  const stack = blocks.find((b) => b.kind === 'stack');
  for (const b of blocks) {
    const region = rows.find((r) => r.region?.start === b.start)?.region;
    if (b === heap || b.kind === 'stack') b.tier = b.kind === 'stack' ? 'stack' : 'heap';
    else if (nodeObject !== undefined && region?.object === nodeObject) b.tier = `${b.kind} (node)`;
    else if (heap !== undefined && stack !== undefined && b.start > heap.start && b.start < stack.start) b.tier = 'mmap region';
    else b.tier = b.kind;
  }
  const userEnd = rows.find((r) => r.name === 'user-space-end');
  if (userEnd !== undefined) {
    const vsyscall = rows.filter((r) => r.name === 'vsyscall');
    blocks.push({ start: userEnd.address, end: TOP_OF_ADDRESS_SPACE, kind: 'kernel', name: 'kernel', tier: 'kernel', probes: vsyscall });
  }
  return blocks;
}

/** `↕ 575.5 MiB gap`: how a compressed gap is labelled. */
export function gapLabel(bytes: bigint): string {
  return `↕ ${bytes > BigInt(Number.MAX_SAFE_INTEGER) ? `${hex(bytes)} bytes` : shortBytes(Number(bytes))} gap`;
}

/** A probe's label: what it is and its address. */
export function probeLabel(row: LayoutRow): string {
  return row.name === 'vsyscall' && row.region !== undefined
    ? `[vsyscall] ${hex(row.address)} (${row.region.perms}, ${shortBytes(row.region.size)})`
    : `${row.what} ${hex(row.address)}`;
}

/** Taller for bigger regions, within bounds, so that a page and 26 MiB both stay readable. */
function heightOf(b: LayoutBlock): number {
  if (b.kind === 'kernel') return KERNEL_HEIGHT;
  const size = Number(b.end - b.start);
  return Math.min(60, 20 + 4 * Math.log2(Math.max(size, 4096) / 4096));
}

export function layoutChart(result: ResultData<LayoutRow>): Figure | undefined {
  const blocks = layoutBlocks(result.rows);
  if (blocks.length === 0) return undefined;
  const marks: Mark[] = [];
  const labels: { want: number; text: string; fromY: number }[] = [];
  const tiers: { tier: string; top: number; bottom: number }[] = [];
  let y = TOP;
  // Highest address first: the kernel at the top of the picture.
  for (let i = blocks.length - 1; i >= 0; i--) {
    const b = blocks[i];
    const h = heightOf(b);
    const top = y;
    const bottom = y + h;
    const below = blocks[i - 1];
    const above = blocks[i + 1];
    marks.push(
      rect(X.block, top, X.blockWidth, h, { fill: FILL[b.kind] ?? COLORS.grey, stroke: '#fff', class: `block ${b.kind}` }),
      text(X.block + X.blockWidth / 2, top + h / 2 + 4, b.kind === 'kernel' ? 'kernel: no user access' : `${b.name} · ${shortBytes(Number(b.end - b.start))}`, {
        'text-anchor': 'middle', fill: DARK_TEXT.has(b.kind) ? '#222' : '#fff', 'font-weight': 'bold', class: 'block-label',
      }),
      text(X.address, bottom + 3, hex(b.start), { 'text-anchor': 'end', class: 'address' }),
    );
    if (above === undefined || above.start !== b.end) {
      if (b.kind !== 'kernel') marks.push(text(X.address, top + 8, hex(b.end), { 'text-anchor': 'end', class: 'address' }));
    }
    for (const p of b.probes) {
      const at = b.kind === 'kernel' ? top + 8 : bottom - Number(p.address - b.start) / Number(b.end - b.start) * h;
      marks.push(line(X.block + X.blockWidth - 14, at, X.block + X.blockWidth, at, { stroke: '#111', 'stroke-width': 2 }));
      labels.push({ want: at, text: probeLabel(p), fromY: at });
    }
    const tier = tiers[tiers.length - 1];
    if (tier !== undefined && tier.tier === b.tier) tier.bottom = bottom;
    else tiers.push({ tier: b.tier, top, bottom });
    y = bottom;
    if (below !== undefined && below.end < b.start) {
      // The band stands for every byte between the two regions, whatever is mapped there.
      const mid = y + GAP_BAND / 2;
      marks.push(
        zigzag(X.block, X.block + X.blockWidth, mid, { stroke: '#999', 'stroke-dasharray': '3 2' }),
        text(X.block + X.blockWidth / 2, mid + 4, gapLabel(b.start - below.end), { 'text-anchor': 'middle', class: 'gap-label', fill: '#444', ...HALO }),
      );
      y += GAP_BAND;
    }
  }
  for (const t of tiers) {
    marks.push(
      line(X.tier + 4, t.top + 2, X.tier + 4, t.bottom - 2, { stroke: '#666' }),
      line(X.tier + 4, t.top + 2, X.tier + 9, t.top + 2, { stroke: '#666' }),
      line(X.tier + 4, t.bottom - 2, X.tier + 9, t.bottom - 2, { stroke: '#666' }),
      text(X.tier, (t.top + t.bottom) / 2 + 4, t.tier, { 'text-anchor': 'end', 'font-weight': 'bold', class: 'tier' }),
    );
  }
  // Probe labels: wanted at their marker's height, pushed apart downwards where they would overlap.
  let next = -Infinity;
  for (const l of labels.sort((a, b) => a.want - b.want)) {
    const ly = Math.max(l.want, next);
    next = ly + LABEL_SPACING;
    marks.push(
      line(X.block + X.blockWidth, l.fromY, X.label - 6, ly - 4, { stroke: '#999' }),
      text(X.label, ly, l.text, { class: 'probe-label' }),
    );
  }
  const height = Math.max(y, next) + 28;
  marks.push(
    text(X.block, 18, 'high addresses', { fill: '#555' }),
    text(X.block, height - 10, 'low addresses (gaps not to scale, block heights grow with log(size))', { fill: '#555' }),
  );
  return { width: W, height, title: `${result.question} The regions the probes landed in, at their real addresses`, marks };
}
