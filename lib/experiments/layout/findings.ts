// What the layout experiment says about its rows: each object's place, then
// the textbook picture (text, data, bss, heap, mmap region, stack) checked
// against them, each finding and surprise a rule over the figures measured.
import { bytes, hex, shortBytes, withArticle } from '../../format';
import { MemoryRegion, RegionKind } from '../../maps';
import { mmapThresholdNow } from '../measure';
import { Rule, say } from '../rules';
import { imageOf, KERNEL_HALF, LARGE, LayoutRow, PlacedRegion, SMALL, Snapshot } from './measure';

/** e_type of a non-position-independent executable. */
const ET_EXEC = 2;

/** The rows by what the rules ask about. */
interface Facts extends Snapshot {
  /** Each row by its name; a name missing was not measured (an address of 0). */
  row: Partial<Record<LayoutRow['name'], LayoutRow>>;
  /** node's image: its segments, holes and bss; empty when its text lies in no ELF object. */
  node: MemoryRegion[];
  /** The highest user mapping. */
  highest: MemoryRegion;
  order: { checked: string[]; broken: [LayoutRow, LayoutRow][] };
}

function facts(snapshot: Snapshot): Facts {
  const { rows, regions } = snapshot;
  const row: Facts['row'] = {};
  for (const r of rows) row[r.name] ??= r;
  const nodeText = row['node-text'];
  return {
    ...snapshot,
    row,
    node: nodeText === undefined ? [] : imageOf(regions, nodeText.address),
    highest: regions.filter((r) => r.start < KERNEL_HALF).pop()!,
    order: textbookOrder(rows),
  };
}

function regionName(r: PlacedRegion | MemoryRegion): string {
  if (r.path === '') return 'anonymous';
  return r.path.startsWith('[') ? r.path : r.path.slice(r.path.lastIndexOf('/') + 1);
}

function where(row: LayoutRow): string {
  const r = row.region;
  if (r === undefined) return 'in no mapping';
  return `in ${/^[aeiou]/.test(r.kind) ? 'an' : 'a'} ${r.kind} region ${hex(r.start)}–${hex(r.end)} (${r.perms} ${regionName(r)}), ${shortBytes(row.offset!)} into it`;
}

/** `b` relative to `a`: "N above" / "N below". */
function apart(a: bigint, b: bigint): string {
  return b >= a ? `${shortBytes(Number(b - a))} above` : `${shortBytes(Number(a - b))} below`;
}

function isHeapKind(kind: RegionKind | undefined): boolean {
  return kind === 'heap' || kind === 'arena-heap';
}

/**
 * The plain-C picture, bottom up: text, data, bss, heap, the mmap region
 * (chunks and shared libraries), stack, end of user space. Checked on the
 * rows that were measured.
 */
function textbookOrder(rows: LayoutRow[]): { checked: string[]; broken: [LayoutRow, LayoutRow][] } {
  const tiers: LayoutRow['name'][][] = [
    ['node-text'], ['node-data'], ['node-bss'], ['heap-start', 'heap'],
    ['mmapped', 'addon-text', 'libc-malloc', 'vdso'], ['stack', 'environment'], ['user-space-end'],
  ];
  const present = tiers.map((tier) => rows.filter((r) => tier.includes(r.name))).filter((t) => t.length > 0);
  const broken: [LayoutRow, LayoutRow][] = [];
  for (let i = 1; i < present.length; i++) {
    for (const a of present[i - 1]) for (const b of present[i]) if (a.address > b.address) broken.push([a, b]);
  }
  return { checked: present.map((t) => t.map((r) => `${r.name} ${hex(r.address)}`).join(', ')), broken };
}

/** What is mapped in [from, to): "with nothing mapped in between" or the kinds of the regions there. */
function inBetween(regions: MemoryRegion[], from: bigint, to: bigint): string {
  const there = regions.filter((r) => r.start >= from && r.end <= to);
  if (there.length === 0) return 'with nothing mapped in between';
  const kinds = [...new Set(there.map((r) => r.kind))].join(', ');
  return `with ${there.length} mapping${there.length === 1 ? '' : 's'} (${kinds}) in between`;
}

/** The addon's text, data and bss rows, when all three were measured. */
function addon({ row }: Facts): { text: LayoutRow; data: LayoutRow; bss: LayoutRow } | undefined {
  const { 'addon-text': text, 'addon-data': data, 'addon-bss': bss } = row;
  return text !== undefined && data !== undefined && bss !== undefined ? { text, data, bss } : undefined;
}

/** Where [heap] starts against the end of node's image, when both are known. */
function heapAfterImage({ node, row }: Facts): { heapStart: LayoutRow; last: MemoryRegion; gap: bigint } | undefined {
  const heapStart = row['heap-start'];
  if (node.length === 0 || heapStart === undefined) return undefined;
  const last = node[node.length - 1];
  return { heapStart, last, gap: heapStart.address - last.end };
}

const FINDINGS: Rule<Facts>[] = [
  // Each probed object: its address and the region it lies in.
  ({ rows }) => rows.filter((r) => r.type === 'probe').map((row) => `${row.what}: ${hex(row.address)}, ${where(row)}.`),

  // Every row low to high, with the distance to the next.
  ({ rows }) =>
    'Low to high, with the distance to the next: ' +
    rows.map((r, i) => {
      const next = rows[i + 1];
      const gap = next === undefined ? '' : next.distance === undefined ? ' → (the kernel half) →' : ` →${shortBytes(next.distance)}→`;
      return `${r.name} ${hex(r.address)}${gap}`;
    }).join(' ') + '.',

  // If both were measured: where the heap probe lies against node's text.
  ({ row: { 'node-text': nodeText, heap } }) => nodeText !== undefined && heap !== undefined
    ? `The heap probe (${hex(heap.address)}) lies ${apart(nodeText.address, heap.address)} node's text (${hex(nodeText.address)}).`
    : undefined,

  // If [heap] starts right where node's image ends (a surprise when not).
  (f) => {
    const h = heapAfterImage(f);
    return h !== undefined && h.gap === 0n
      ? `[heap] starts at ${hex(h.heapStart.address)}, exactly where node's image ends (its ${h.last.kind} region ${hex(h.last.start)}–${hex(h.last.end)}).`
      : undefined;
  },

  // If node's ELF header was read and says position-independent (a surprise when ET_EXEC).
  ({ node, nodeElfType }) => node.length > 0 && nodeElfType !== ET_EXEC && nodeElfType !== undefined
    ? `node's executable is position-independent (ELF e_type ${nodeElfType}): its image was mapped at ${hex(node[0].start)}.`
    : undefined,

  // If the addon's text, data and bss were measured: how far apart they sit.
  (f) => {
    const a = addon(f);
    if (a === undefined) return undefined;
    const { text, data, bss } = a;
    const rodata = f.row['addon-rodata'];
    return `The addon's data and bss sit right after its text: its initialised global is ${shortBytes(Number(data.address - text.address))} ` +
      `above its function and its zero global ${shortBytes(Number(bss.address - text.address))} above, ` +
      `${inBetween(f.regions, text.region!.end, data.region!.start)}` +
      (rodata === undefined ? '.' : `; the string constant is ${shortBytes(Number(rodata.address - text.address))} above the function.`);
  },

  // If the addon's zero-initialised global lies in its own bss region (a surprise when in its data).
  (f) => {
    const bss = addon(f)?.bss;
    return bss?.region?.kind === 'bss'
      ? `The addon's zero-initialised global landed in its own anonymous bss region ${hex(bss.region.start)}–${hex(bss.region.end)}.`
      : undefined;
  },

  // If malloc(1 MiB) was mmapped: its chunk and where it lies (a surprise when not).
  ({ row: { mmapped, heap } }) => {
    const h = mmapped?.header;
    if (mmapped === undefined || h === undefined || !h.isMmapped) return undefined;
    return `malloc(${shortBytes(LARGE)}) got a chunk of its own: the M bit is set in its header (size ${hex(h.rawSize)}, ${withArticle(bytes(h.size))} chunk), ` +
      `at ${hex(mmapped.address)}` +
      (heap !== undefined ? `, ${apart(heap.address, mmapped.address)} the heap probe` : '') + `, ${where(mmapped)}.`;
  },

  // If the local variable lies in a region: that region against the end of user space.
  ({ row: { stack, 'user-space-end': userEnd } }) => {
    if (stack?.region === undefined) return undefined;
    const top = stack.region.end;
    return `The stack region ${hex(stack.region.start)}–${hex(top)} (${shortBytes(stack.region.size)}) ends ` +
      `${shortBytes(Number(userEnd!.address - top))} below the end of user space (${hex(userEnd!.address)}); ` +
      `the native call's local variable is ${shortBytes(Number(top - stack.address))} below its top.`;
  },

  // If the environment strings are on the stack: how far from its end and from the local variable (a surprise when not).
  ({ row: { environment: env, stack } }) => env !== undefined && env.region?.kind === 'stack' && stack !== undefined
    ? `The environment strings (${hex(env.address)}) are at the top of the stack: ${shortBytes(Number(env.region.end - env.address))} ` +
      `below its end and ${apart(stack.address, env.address)} the native call's local variable.`
    : undefined,

  // Where user mappings end against the end of user space, and [vsyscall] above it if listed.
  ({ highest, row: { 'user-mappings-end': mapsEnd, 'user-space-end': userEnd, vsyscall } }) =>
    `The highest user mapping (${regionName(highest)}, ${highest.perms}) ends at ${hex(mapsEnd!.address)}, ` +
    `${shortBytes(Number(userEnd!.address - mapsEnd!.address))} below ${hex(userEnd!.address)}, where x86_64 user space ends; ` +
    'everything above belongs to the kernel' +
    (vsyscall?.region !== undefined
      ? `, and the only mapping /proc/self/maps lists up there is [vsyscall] at ${hex(vsyscall.address)} (${vsyscall.region.perms}, ${shortBytes(vsyscall.region.size)}), a page the kernel provides.`
      : '; maps lists no [vsyscall] page on this kernel.'),

  // If the vdso was found: what lies below it, and libc's malloc.
  ({ rows, row: { vdso, 'libc-malloc': libc } }) => {
    if (vdso === undefined) return undefined;
    const below = rows[rows.indexOf(vdso) - 1];
    return `The vdso (${hex(vdso.address)}) is mapped by the kernel among the shared libraries: ` +
      `${shortBytes(vdso.distance ?? 0)} above ${below?.what ?? 'nothing'}` +
      (libc !== undefined && below !== libc ? `, ${apart(libc.address, vdso.address)} libc's malloc.` : '.');
  },

  // If the textbook order holds for every pair of tiers measured (each pair out of order is a surprise).
  ({ order }) => order.broken.length === 0 ? `Low to high, the textbook order holds for ${order.checked.join(' < ')}.` : undefined,
];

const SURPRISES: Rule<Facts>[] = [
  // If [heap] does not start where node's image ends: how far off, and what lies between.
  (f) => {
    const h = heapAfterImage(f);
    if (h === undefined || h.gap === 0n) return undefined;
    const imageEnd = h.last.end;
    return `[heap] does not start right after node's bss as the textbook picture draws it: it starts at ${hex(h.heapStart.address)}, ` +
      `${apart(imageEnd, h.heapStart.address)} the end of node's image at ${hex(imageEnd)} (its ${h.last.kind} region), ` +
      `${inBetween(f.regions, imageEnd, h.heapStart.address)}.`;
  },

  // If main_arena's first sbrk began further into [heap] than its start: something else moved the break first.
  ({ row: { 'heap-start': start }, sbrkBase }) => {
    if (start?.region === undefined || sbrkBase === undefined || sbrkBase <= start.address || sbrkBase >= start.region.end) return undefined;
    return `[heap] does not start with malloc's memory: main_arena's first sbrk began at ${hex(sbrkBase)} (mp_.sbrk_base), ` +
      `${shortBytes(Number(sbrkBase - start.address))} into [heap] (${hex(start.address)}). Something other than malloc moved the program break ` +
      'before malloc first did (sbrk or brk: what glibc calls a foreign sbrk), and those bytes are not malloc\'s.';
  },

  // If node's ELF header says ET_EXEC: node sits at its fixed link address.
  ({ node, nodeElfType, row: { 'libc-malloc': libc } }) => {
    if (node.length === 0 || nodeElfType !== ET_EXEC) return undefined;
    const base = node[0].start;
    return `node's executable is not position-independent: the ELF header mapped at ${hex(base)} says ET_EXEC, so node sits at ` +
      `its fixed link address ${hex(base)}` +
      (libc !== undefined ? `, ${apart(libc.address, base)} libc's malloc (${hex(libc.address)}).` : '.');
  },

  // If the addon's zero-initialised global landed in its file-backed data mapping.
  (f) => {
    const a = addon(f);
    if (a === undefined || a.bss.region?.kind !== 'data') return undefined;
    const { bss, data, text } = a;
    const ownBss = f.regions.find((r) => r.kind === 'bss' && r.object === text.region?.object);
    return `The addon's zero-initialised global (${hex(bss.address)}) landed inside its file-backed data mapping ` +
      `${hex(bss.region!.start)}–${hex(bss.region!.end)} (${bss.region!.perms}), ${shortBytes(Number(bss.address - data.address))} above the initialised one, ` +
      (ownBss === undefined
        ? 'not in a separate bss region: the addon has no anonymous bss mapping at all.'
        : `not in its anonymous bss region at ${hex(ownBss.start)}.`);
  },

  // If the addon lies above node's text: it is a shared library in the mmap region, not beside node.
  (f) => {
    const a = addon(f);
    const { 'node-text': nodeText, heap, stack, mmapped } = f.row;
    if (a === undefined || nodeText === undefined || !(a.text.address > nodeText.address)) return undefined;
    const { text } = a;
    return `The addon's text, data and bss are not next to node's at the bottom of the picture: the addon is a shared library ` +
      `(${regionName(text.region!)}), mapped ${apart(nodeText.address, text.address)} node's text` +
      (heap !== undefined && stack !== undefined
        ? `, between the heap (${hex(heap.address)}) and the stack (${hex(stack.address)})`
        : '') +
      (mmapped !== undefined ? `, ${apart(mmapped.address, text.address)} the ${shortBytes(LARGE)} mmapped chunk.` : '.');
  },

  // If the address dlsym gave for malloc lies outside libc.
  ({ row: { 'libc-malloc': libc } }) => libc?.region !== undefined && !/libc[.-]/.test(regionName(libc.region))
    ? `The address of libc's malloc as dlsym reported it (${hex(libc.address)}) lies in ${regionName(libc.region)}, not in libc: ` +
      `${withArticle(libc.region.kind)} region ${hex(libc.region.start)}–${hex(libc.region.end)}.`
    : undefined,

  // If malloc(64) is not in a heap.
  ({ row: { heap } }) => heap !== undefined && !isHeapKind(heap.region?.kind)
    ? `malloc(${SMALL}) at ${hex(heap.address)} is not in [heap] but ${where(heap)}.`
    : undefined,

  // If malloc(1 MiB) was not mmapped: whether the top chunk could hold it, or else
  // mp_'s threshold, read now (only then: it costs a snapshot).
  ({ row: { mmapped }, topBefore }) => {
    const h = mmapped?.header;
    if (mmapped === undefined || h === undefined || h.isMmapped) return undefined;
    return `malloc(${shortBytes(LARGE)}) was not mmapped in this run: its M bit is clear and it lies ${where(mmapped)}. ` +
      `main_arena's top chunk held ${bytes(topBefore.keepcost)} just before` +
      (topBefore.keepcost >= h.size
        ? `, enough for it: malloc only weighs mmap against brk when the top chunk is too small.`
        : `, too little for it; ${mmapThresholdNow()}.`);
  },

  // If the local variable lies in a region that is not [stack].
  ({ row: { stack } }) => stack?.region !== undefined && stack.region.kind !== 'stack'
    ? `The native call's local variable is not in [stack] but ${where(stack)}.`
    : undefined,

  // If the environment strings are not on the stack.
  ({ row: { environment: env, stack } }) => env !== undefined && !(env.region?.kind === 'stack' && stack !== undefined)
    ? `The first environment string (${hex(env.address)}) is not on the stack but ${where(env)}.`
    : undefined,

  // Each pair of rows out of the textbook order.
  ({ order }) => order.broken.map(([a, b]) => `The textbook order puts ${a.what} below ${b.what}, but here it is above: ${hex(a.address)} > ${hex(b.address)}.`),
];

export function describeRows(snapshot: Snapshot): { findings: string[]; surprises: string[] } {
  const f = facts(snapshot);
  return { findings: say(FINDINGS, f), surprises: say(SURPRISES, f) };
}
