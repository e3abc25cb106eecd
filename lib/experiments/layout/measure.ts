// The layout experiment's measurement: the real address of one object of
// each kind, placed in the /proc/self/maps snapshot taken while they were
// live, with the starts of node's segments and [heap] and the edges of user
// space.
import { binding } from '../../binding';
import { ChunkHeader } from '../../chunk';
import { HeapscopeError, native } from '../../errors';
import { shortBytes } from '../../format';
import { maps, MemoryRegion, parseMaps, RegionKind, regionOf } from '../../maps';
import { readMemory } from '../../memory';
import { PlanStep, runPlan } from '../../plan';
import { Mallinfo } from '../../stats';
import { mallocPar } from '../measure';

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

export const SMALL = 64;
export const LARGE = 1 << 20;
/** x86_64 user space: 47 bits with 4-level paging, 56 with 5-level. */
const USER_SPACE_ENDS = [1n << 47n, 1n << 56n];
export const KERNEL_HALF = 1n << 63n;

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

/** What a run measured: the rows, every region of the snapshot, main_arena's top before the mallocs, node's ELF type. */
export interface Snapshot {
  rows: LayoutRow[];
  regions: MemoryRegion[];
  topBefore: Mallinfo;
  /** e_type of the ELF header at the start of node's image; undefined when none was found or read. */
  nodeElfType?: number;
  /** mp_.sbrk_base, where main_arena's first sbrk began (it never moves once set); undefined without [heap] or where mp_ cannot be read. */
  sbrkBase?: bigint;
}

export function measure(): Snapshot {
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
  // node's ELF header says whether its image is position-independent or sits at its link address.
  const nodeElfType = node.length > 0 ? elfType(node[0].start) : undefined;
  const sbrkBase = heap === undefined ? undefined : sbrkBaseNow();
  return { rows, regions, topBefore: results[0].mallinfo!, nodeElfType, ...(sbrkBase === undefined ? {} : { sbrkBase }) };
}

/** mp_.sbrk_base as glibc holds it, or undefined where mp_ cannot be located or its layout is unknown. */
function sbrkBaseNow(): bigint | undefined {
  try {
    return mallocPar().sbrkBase;
  } catch (error) {
    if (error instanceof HeapscopeError) return undefined;
    throw error;
  }
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
export function imageOf(regions: MemoryRegion[], address: bigint): MemoryRegion[] {
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
