// Where do things live in a process? Real addresses of one object of each
// kind, placed in the /proc/self/maps snapshot taken while they were live.
import { binding } from '../../binding';
import { ChunkHeader } from '../../chunk';
import { HeapscopeError, native } from '../../errors';
import { bytes, hex, shortBytes, withArticle } from '../../format';
import { maps, MemoryRegion, parseMaps, RegionKind, regionOf } from '../../maps';
import { readMemory } from '../../memory';
import { PlanStep, runPlan } from '../../plan';
import { Mallinfo } from '../../stats';
import { mmapThresholdNow } from '../measure';
import { Experiment } from '../types';

/** Objects whose real address is measured. */
export type LayoutProbe =
  | 'node-text'
  | 'addon-text'
  | 'addon-rodata'
  | 'addon-data'
  | 'addon-bss'
  | 'heap'
  | 'mmapped'
  | 'libc-malloc'
  | 'vdso'
  | 'stack'
  | 'environment';

/** Starts of the regions the textbook picture draws: node's data and bss, the heap. */
export type LayoutSegment = 'node-data' | 'node-bss' | 'heap-start';

/** Where user space stops, and the kernel's page above it. */
export type LayoutBoundary = 'user-mappings-end' | 'user-space-end' | 'vsyscall';

export interface PlacedRegion {
  start: bigint;
  end: bigint;
  size: number;
  kind: RegionKind;
  perms: string;
  /** The file or bracketed name; '' for an unnamed anonymous mapping. */
  path: string;
  /** The ELF object a segment or bss belongs to. */
  object?: string;
}

export interface LayoutRow {
  name: LayoutProbe | LayoutSegment | LayoutBoundary;
  /** probe: an object's address; segment: a region's start; boundary: an edge of user space. */
  type: 'probe' | 'segment' | 'boundary';
  what: string;
  address: bigint;
  /** The region holding `address` in the snapshot; undefined in a hole. */
  region?: PlacedRegion;
  /** `address − region.start`. */
  offset?: number;
  /**
   * Bytes from the previous row's address. Undefined for the first row and
   * where the distance is past 2^53 (from user space up to vsyscall), which
   * is no size of anything in user space.
   */
  distance?: number;
  /** malloc probes: the bytes asked for and the chunk header read back. */
  request?: number;
  header?: ChunkHeader;
}

const SMALL = 64;
const LARGE = 1 << 20;
/** x86_64 user space: 47 bits with 4-level paging, 56 with 5-level. */
const USER_SPACE_ENDS = [1n << 47n, 1n << 56n];
const KERNEL_HALF = 1n << 63n;
const ET_EXEC = 2;

const WHAT: Record<LayoutRow['name'], string> = {
  'node-text': "node's code (napi_create_object)",
  'addon-text': "the addon's code (a function)",
  'addon-rodata': "the addon's string constant",
  'addon-data': "the addon's initialised global",
  'addon-bss': "the addon's zero-initialised global",
  heap: `malloc(${SMALL})`,
  mmapped: `malloc(${shortBytes(LARGE)})`,
  'libc-malloc': "libc's malloc",
  vdso: 'the vdso',
  stack: 'a local variable of the native call',
  environment: 'the environment strings',
  'node-data': "node's data segment",
  'node-bss': "node's bss",
  'heap-start': 'the start of [heap]',
  'user-mappings-end': 'the end of the highest user mapping',
  'user-space-end': 'the end of user space',
  vsyscall: 'the vsyscall page',
};

interface Snapshot {
  rows: LayoutRow[];
  regions: MemoryRegion[];
  topBefore: Mallinfo;
}

function measure(): Snapshot {
  const steps: PlanStep[] = [
    { op: 'mallinfo' },
    { op: 'malloc', size: SMALL },
    { op: 'malloc', size: LARGE },
    { op: 'header', step: 1 },
    { op: 'header', step: 2 },
    { op: 'maps' },
  ];
  const probes = native(() => binding.addresses());
  const { steps: results } = runPlan(steps);
  // The static mappings (ELF segments, their bss) are the same now as in the
  // snapshot; maps() checks each bss against its object's program headers,
  // which text alone cannot, so its verdict corrects the snapshot's.
  const realBss = new Set(maps().filter((r) => r.kind === 'bss').map((r) => r.start));
  const snap = results[5];
  if (snap.status !== 'ok' || snap.maps === undefined) {
    throw new HeapscopeError('ERR_READ_FAILED', `the /proc/self/maps snapshot failed (${snap.status}, errno ${snap.errno ?? 0})`);
  }
  const regions = parseMaps(snap.maps);
  for (const r of regions) {
    if (r.kind === 'bss' && !realBss.has(r.start)) {
      r.kind = 'anonymous';
      delete r.object;
    }
  }

  const rows: LayoutRow[] = [];
  const add = (name: LayoutRow['name'], type: LayoutRow['type'], address: bigint, extra: Partial<LayoutRow> = {}): void => {
    if (address === 0n) return;
    rows.push({ name, type, what: WHAT[name], address, ...extra });
  };
  add('node-text', 'probe', probes.nodeFunction);
  add('addon-text', 'probe', probes.addonFunction);
  add('addon-rodata', 'probe', probes.stringConstant);
  add('addon-data', 'probe', probes.initialisedGlobal);
  add('addon-bss', 'probe', probes.zeroGlobal);
  for (const [name, index, request] of [['heap', 1, SMALL], ['mmapped', 2, LARGE]] as const) {
    const r = results[index];
    if (r.status !== 'ok') throw new HeapscopeError('ERR_ALLOC_FAILED', `malloc(${request}) failed with errno ${r.errno}`);
    add(name, 'probe', r.address!, { request, header: results[index + 2].header });
  }
  add('libc-malloc', 'probe', probes.libcMalloc);
  add('vdso', 'probe', probes.vdso);
  add('stack', 'probe', probes.stackLocal);
  add('environment', 'probe', probes.environmentString);

  const node = imageOf(regions, probes.nodeFunction);
  const nodeData = node.find((r) => r.kind === 'data');
  const nodeBss = node.find((r) => r.kind === 'bss');
  if (nodeData !== undefined) add('node-data', 'segment', nodeData.start);
  if (nodeBss !== undefined) add('node-bss', 'segment', nodeBss.start);
  const heap = regions.find((r) => r.kind === 'heap');
  if (heap !== undefined) add('heap-start', 'segment', heap.start);

  const user = regions.filter((r) => r.start < KERNEL_HALF);
  const highest = user[user.length - 1];
  add('user-mappings-end', 'boundary', highest.end);
  add('user-space-end', 'boundary', userSpaceEnd(highest.end));
  const vsyscall = regions.find((r) => r.kind === 'vsyscall');
  if (vsyscall !== undefined) add('vsyscall', 'boundary', vsyscall.start);

  rows.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  rows.forEach((row, i) => {
    const region = row.name === 'user-mappings-end' || row.name === 'user-space-end' ? undefined : regionOf(row.address, regions);
    if (region !== undefined) {
      row.region = place(region);
      row.offset = Number(row.address - region.start);
    }
    const d = i === 0 ? undefined : row.address - rows[i - 1].address;
    if (d !== undefined && d <= BigInt(Number.MAX_SAFE_INTEGER)) row.distance = Number(d);
  });
  return { rows, regions, topBefore: results[0].mallinfo! };
}

function place(r: MemoryRegion): PlacedRegion {
  return {
    start: r.start, end: r.end, size: r.size, kind: r.kind, perms: r.perms, path: r.path,
    ...(r.object === undefined ? {} : { object: r.object }),
  };
}

/** The smallest x86_64 user-space limit above `highest`. */
function userSpaceEnd(highest: bigint): bigint {
  return USER_SPACE_ENDS.find((end) => highest <= end) ?? KERNEL_HALF;
}

/** The consecutive regions of the ELF object that holds `address` (its segments, holes and bss). */
function imageOf(regions: MemoryRegion[], address: bigint): MemoryRegion[] {
  const i = regions.findIndex((r) => r.start <= address && address < r.end);
  const object = regions[i]?.object;
  if (object === undefined) return [];
  let first = i;
  let last = i;
  while (first > 0 && regions[first - 1].object === object) first--;
  while (last + 1 < regions.length && regions[last + 1].object === object) last++;
  return regions.slice(first, last + 1);
}

/** e_type of the ELF header mapped at `base`, or undefined when there is none. */
function elfType(base: bigint): number | undefined {
  try {
    const header = readMemory(base, 18);
    return header.readUInt32BE(0) === 0x7f454c46 ? header.readUInt16LE(16) : undefined;
  } catch {
    return undefined;
  }
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

export const layout: Experiment<LayoutRow, 'layout'> = {
  name: 'layout',
  question: 'Where do things live in a process?',
  // The 1 MiB probe is mmapped and freed, which raises the dynamic mmap threshold.
  isolatedByDefault: true,
  run() {
    const { rows, regions, topBefore } = measure();
    const findings: string[] = [];
    const surprises: string[] = [];
    const get = (name: LayoutRow['name']) => rows.find((r) => r.name === name);

    for (const row of rows.filter((r) => r.type === 'probe')) {
      findings.push(`${row.what}: ${hex(row.address)}, ${where(row)}.`);
    }
    findings.push(
      'Low to high, with the distance to the next: ' +
        rows.map((r, i) => {
          const next = rows[i + 1];
          const gap = next === undefined ? '' : next.distance === undefined ? ' → (the kernel half) →' : ` →${shortBytes(next.distance)}→`;
          return `${r.name} ${hex(r.address)}${gap}`;
        }).join(' ') + '.',
    );

    const nodeText = get('node-text');
    const heapProbe = get('heap');
    const heapStart = get('heap-start');
    const node = nodeText === undefined ? [] : imageOf(regions, nodeText.address);
    if (nodeText !== undefined && heapProbe !== undefined) {
      findings.push(
        `The heap probe (${hex(heapProbe.address)}) lies ${apart(nodeText.address, heapProbe.address)} node's text (${hex(nodeText.address)}).`,
      );
    }
    if (node.length > 0 && heapStart !== undefined) {
      const imageEnd = node[node.length - 1].end;
      const last = node[node.length - 1];
      const gap = heapStart.address - imageEnd;
      if (gap === 0n) {
        findings.push(`[heap] starts at ${hex(heapStart.address)}, exactly where node's image ends (its ${last.kind} region ${hex(last.start)}–${hex(last.end)}).`);
      } else {
        surprises.push(
          `[heap] does not start right after node's bss as the textbook picture draws it: it starts at ${hex(heapStart.address)}, ` +
            `${apart(imageEnd, heapStart.address)} the end of node's image at ${hex(imageEnd)} (its ${last.kind} region), ` +
            `${inBetween(regions, imageEnd, heapStart.address)}.`,
        );
      }
    }
    const libcRow = get('libc-malloc');
    if (node.length > 0) {
      const base = node[0].start;
      const type = elfType(base);
      if (type === ET_EXEC) {
        surprises.push(
          `node's executable is not position-independent: the ELF header mapped at ${hex(base)} says ET_EXEC, so node sits at ` +
            `its fixed link address ${hex(base)}` +
            (libcRow !== undefined ? `, ${apart(libcRow.address, base)} libc's malloc (${hex(libcRow.address)}).` : '.'),
        );
      } else if (type !== undefined) {
        findings.push(`node's executable is position-independent (ELF e_type ${type}): its image was mapped at ${hex(base)}.`);
      }
    }

    // The addon: a shared library, in the mmap region.
    const text = get('addon-text');
    const data = get('addon-data');
    const bss = get('addon-bss');
    const rodata = get('addon-rodata');
    if (text !== undefined && data !== undefined && bss !== undefined) {
      findings.push(
        `The addon's data and bss sit right after its text: its initialised global is ${shortBytes(Number(data.address - text.address))} ` +
          `above its function and its zero global ${shortBytes(Number(bss.address - text.address))} above, ` +
          `${inBetween(regions, text.region!.end, data.region!.start)}` +
          (rodata === undefined ? '.' : `; the string constant is ${shortBytes(Number(rodata.address - text.address))} above the function.`),
      );
      const object = text.region?.object;
      const ownBss = regions.find((r) => r.kind === 'bss' && r.object === object);
      if (bss.region?.kind === 'data') {
        surprises.push(
          `The addon's zero-initialised global (${hex(bss.address)}) landed inside its file-backed data mapping ` +
            `${hex(bss.region.start)}–${hex(bss.region.end)} (${bss.region.perms}), ${shortBytes(Number(bss.address - data.address))} above the initialised one, ` +
            (ownBss === undefined
              ? 'not in a separate bss region: the addon has no anonymous bss mapping at all.'
              : `not in its anonymous bss region at ${hex(ownBss.start)}.`),
        );
      } else if (bss.region?.kind === 'bss') {
        findings.push(`The addon's zero-initialised global landed in its own anonymous bss region ${hex(bss.region.start)}–${hex(bss.region.end)}.`);
      }
      const mmapped = get('mmapped');
      if (nodeText !== undefined && text.address > nodeText.address) {
        const stack = get('stack');
        surprises.push(
          `The addon's text, data and bss are not next to node's at the bottom of the picture: the addon is a shared library ` +
            `(${regionName(text.region!)}), mapped ${apart(nodeText.address, text.address)} node's text` +
            (heapProbe !== undefined && stack !== undefined
              ? `, between the heap (${hex(heapProbe.address)}) and the stack (${hex(stack.address)})`
              : '') +
            (mmapped !== undefined ? `, ${apart(mmapped.address, text.address)} the ${shortBytes(LARGE)} mmapped chunk.` : '.'),
        );
      }
    }

    const libc = get('libc-malloc');
    if (libc !== undefined && libc.region !== undefined) {
      if (!/libc[.-]/.test(regionName(libc.region))) {
        surprises.push(
          `The address of libc's malloc as dlsym reported it (${hex(libc.address)}) lies in ${regionName(libc.region)}, not in libc: ` +
            `${withArticle(libc.region.kind)} region ${hex(libc.region.start)}–${hex(libc.region.end)}.`,
        );
      }
    }

    // The two mallocs.
    const mmapped = get('mmapped');
    if (heapProbe !== undefined && !isHeapKind(heapProbe.region?.kind)) {
      surprises.push(`malloc(${SMALL}) at ${hex(heapProbe.address)} is not in [heap] but ${where(heapProbe)}.`);
    }
    if (mmapped !== undefined && mmapped.header !== undefined) {
      const h = mmapped.header;
      if (h.isMmapped) {
        findings.push(
          `malloc(${shortBytes(LARGE)}) got a chunk of its own: the M bit is set in its header (size ${hex(h.rawSize)}, ${withArticle(bytes(h.size))} chunk), ` +
            `at ${hex(mmapped.address)}` +
            (heapProbe !== undefined ? `, ${apart(heapProbe.address, mmapped.address)} the heap probe` : '') + `, ${where(mmapped)}.`,
        );
      } else {
        surprises.push(
          `malloc(${shortBytes(LARGE)}) was not mmapped in this run: its M bit is clear and it lies ${where(mmapped)}. ` +
            `main_arena's top chunk held ${bytes(topBefore.keepcost)} just before` +
            (topBefore.keepcost >= h.size
              ? `, enough for it: malloc only weighs mmap against brk when the top chunk is too small.`
              : `, too little for it; ${mmapThresholdNow()}.`),
        );
      }
    }

    // Stack, environment, kernel.
    const stack = get('stack');
    const env = get('environment');
    const userEnd = get('user-space-end')!;
    const mapsEnd = get('user-mappings-end')!;
    if (stack?.region !== undefined) {
      const top = stack.region.end;
      findings.push(
        `The stack region ${hex(stack.region.start)}–${hex(top)} (${shortBytes(stack.region.size)}) ends ` +
          `${shortBytes(Number(userEnd.address - top))} below the end of user space (${hex(userEnd.address)}); ` +
          `the native call's local variable is ${shortBytes(Number(top - stack.address))} below its top.`,
      );
      if (stack.region.kind !== 'stack') surprises.push(`The native call's local variable is not in [stack] but ${where(stack)}.`);
    }
    if (env !== undefined) {
      if (env.region?.kind === 'stack' && stack !== undefined) {
        findings.push(
          `The environment strings (${hex(env.address)}) are at the top of the stack: ${shortBytes(Number(env.region.end - env.address))} ` +
            `below its end and ${apart(stack.address, env.address)} the native call's local variable.`,
        );
      } else {
        surprises.push(`The first environment string (${hex(env.address)}) is not on the stack but ${where(env)}.`);
      }
    }
    const highest = regions.filter((r) => r.start < KERNEL_HALF).pop()!;
    const vsyscall = get('vsyscall');
    findings.push(
      `The highest user mapping (${regionName(highest)}, ${highest.perms}) ends at ${hex(mapsEnd.address)}, ` +
        `${shortBytes(Number(userEnd.address - mapsEnd.address))} below ${hex(userEnd.address)}, where x86_64 user space ends; ` +
        'everything above belongs to the kernel' +
        (vsyscall?.region !== undefined
          ? `, and the only mapping /proc/self/maps lists up there is [vsyscall] at ${hex(vsyscall.address)} (${vsyscall.region.perms}, ${shortBytes(vsyscall.region.size)}), a page the kernel provides.`
          : '; maps lists no [vsyscall] page on this kernel.'),
    );
    const vdso = get('vdso');
    if (vdso !== undefined) {
      const i = rows.indexOf(vdso);
      const below = rows[i - 1];
      findings.push(
        `The vdso (${hex(vdso.address)}) is mapped by the kernel among the shared libraries: ` +
          `${shortBytes(vdso.distance ?? 0)} above ${below?.what ?? 'nothing'}` +
          (libc !== undefined && below !== libc ? `, ${apart(libc.address, vdso.address)} libc's malloc.` : '.'),
      );
    }

    const order = textbookOrder(rows);
    if (order.broken.length === 0) {
      findings.push(`Low to high, the textbook order holds for ${order.checked.join(' < ')}.`);
    } else {
      for (const [a, b] of order.broken) {
        surprises.push(`The textbook order puts ${a.what} below ${b.what}, but here it is above: ${hex(a.address)} > ${hex(b.address)}.`);
      }
    }
    return { rows, findings, surprises };
  },
};

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
