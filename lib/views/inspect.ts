// REPL views (util.inspect.custom): one short line per record, addresses in
// hex, the chunk flags spelled out, so that `h.malloc(10)` at the prompt
// reads like a sentence. Colours come from inspect's own `stylize`, so they
// follow the REPL's (and NO_COLOR's) choice.
import type { InspectOptionsStylized } from 'node:util';
import type { InspectContext } from '../presenters';
import type { Allocation } from '../allocation';
import { chunkFlags, ChunkHeader } from '../chunk';
import type { ResultData } from '../result-data';
import type { ArenaInfo, BlockTotal, MallocInfo } from '../malloc-info';
import type { MemoryRegion } from '../maps';
import { hex, plural, shortBytes } from '../format';
import { environmentLine } from './environment';

export type { InspectContext } from '../presenters';

type Style = Parameters<InspectOptionsStylized['stylize']>[1];

export function stylize(options: InspectContext | undefined, text: string, style: Style): string {
  return typeof options?.stylize === 'function' ? options.stylize(text, style) : text;
}

export { chunkFlags, flagLetters } from '../chunk';

/** Bytes as a plain count below 1 KiB (`24`), with the unit beside it above (`1052656 (1.0 MiB)`). */
export function byteCount(value: number): string {
  return value < 1024 ? String(value) : `${value} (${shortBytes(value)})`;
}

/** Where a region is, in a word or two: `[heap]`, `libc.so.6`, `anonymous mapping`. */
export function regionLabel(region: Pick<MemoryRegion, 'path' | 'kind'> | undefined): string {
  if (region === undefined) return 'no mapping';
  if (region.path.startsWith('[')) return region.path;
  if (region.path !== '') return region.path.slice(region.path.lastIndexOf('/') + 1);
  return `${region.kind} mapping`;
}

/** The mapped file as /proc/self/maps names it, marked when the file was deleted. */
export function regionPath(region: Pick<MemoryRegion, 'path' | 'deleted'>): string {
  return `${region.path}${region.deleted ? ' (deleted)' : ''}`;
}

function callText(call: Allocation['call'], requested: number): string {
  switch (call) {
    case 'malloc': return `malloc(${requested})`;
    case 'calloc': return `calloc(${requested} bytes)`;
    case 'realloc': return `realloc(…, ${requested})`;
    case 'alignedAlloc': return `alignedAlloc(…, ${requested})`;
    default: return `${call}(${requested})`;
  }
}

/**
 * `Allocation <0x1b0c600 malloc(10): 24 usable, chunk 32 [P] in [heap]>`.
 * `dead` is how the handle died, if it did; a live one is read afresh.
 */
export function inspectAllocation(
  allocation: Allocation, dead: false | 'freed' | 'reallocated', depth: number, options?: InspectContext,
): string {
  const name = stylize(options, 'Allocation', 'special');
  const address = stylize(options, hex(allocation.address), 'number');
  if (depth < 0) return `[${name} ${address}]`;
  if (dead !== false) return `${name} <${address} ${dead}>`;
  let body: string;
  try {
    const chunk = allocation.chunk;
    body = `${byteCount(allocation.usableSize)} usable, chunk ${byteCount(chunk.size)} ` +
      `${stylize(options, chunkFlags(chunk), 'special')} in ${regionLabel(allocation.region)}`;
  } catch (error) {
    // Inspecting must not throw at the prompt; say what could not be read.
    body = `unreadable: ${(error as Error).message}`;
  }
  return `${name} <${address} ${callText(allocation.call, allocation.requested)}: ${body}>`;
}

/** `ChunkHeader <0x1b0c5f0 size 32 [P]>`, plus prev_size when P is clear (only then is it a size). */
export function inspectChunkHeader(header: ChunkHeader, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'ChunkHeader', 'special');
  const address = stylize(options, hex(header.address), 'number');
  if (depth < 0) return `[${name} ${address}]`;
  const prev = header.prevInUse ? '' : `, prev_size ${byteCount(Number(header.prevSize))}`;
  return `${name} <${address} size ${byteCount(header.size)} ${stylize(options, chunkFlags(header), 'special')}` +
    ` (size word ${hex(header.rawSize)})${prev}>`;
}

/** `MemoryRegion <0x55d0…000–0x55d0…000 rw-p 132 KiB heap [heap]>`. */
export function inspectRegion(region: MemoryRegion, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'MemoryRegion', 'special');
  const range = stylize(options, `${hex(region.start)}–${hex(region.end)}`, 'number');
  if (depth < 0) return `[${name} ${range}]`;
  const where = region.path === '' ? '' : ` ${regionPath(region)}`;
  const resident = region.rss === undefined ? '' : `, rss ${shortBytes(region.rss)}`;
  return `${name} <${range} ${region.perms} ${shortBytes(region.size)} ` +
    `${stylize(options, region.kind, 'special')}${where}${resident}>`;
}

/**
 * An experiment result, short: its question, how many findings, surprises
 * and rows it has and where they are, and where it ran. At depth 0 (nested,
 * or asked for) one line; below that, the name only.
 */
export function inspectResult(result: ResultData, depth: number, options?: InspectContext): string {
  const name = `${stylize(options, 'ExperimentResult', 'special')} ${result.name}`;
  if (depth < 0) return `[${name}]`;
  const rows = `${stylize(options, String(result.rows.length), 'number')} ${result.rows.length === 1 ? 'row' : 'rows'}`;
  if (depth === 0) {
    return `${name} <${plural(result.findings.length, 'finding')}, ${plural(result.surprises.length, 'surprise')}, ${rows}>`;
  }
  const hint = (text: string) => stylize(options, text, 'undefined');
  return [
    `${name}: ${result.question}`,
    `  ${plural(result.findings.length, 'finding')} ${hint('(.findings)')}, ${plural(result.surprises.length, 'surprise')} ${hint('(.surprises)')}, ` +
      `${rows} ${hint('(.rows)')}; all of it as text: ${hint('.toMarkdown()')}`,
    `  ${environmentLine(result)}`,
  ].join('\n');
}

function blocks(total: BlockTotal): string {
  return total.count === 0 ? 'none' : `${plural(total.count, 'chunk')} (${shortBytes(total.size)})`;
}

/** What one arena holds, in a line: `#0 main_arena: 2.9 MiB from the system; free: 34 chunks (160 KiB) in bins and top, none in fastbins`. */
function arenaLine(arena: ArenaInfo): string {
  const which = arena.nr === 0 ? 'main_arena' : `thread arena${arena.subheaps === undefined ? '' : `, ${plural(arena.subheaps, 'heap')}`}`;
  const max = arena.systemMax === arena.systemCurrent ? '' : ` (max ${shortBytes(arena.systemMax)})`;
  return `#${arena.nr} ${which}: ${shortBytes(arena.systemCurrent)} from the system${max}; ` +
    `free: ${blocks(arena.rest)} in bins and top${arena.fast === undefined ? '' : `, ${blocks(arena.fast)} in fastbins`}`;
}

/** `ArenaInfo <#1 thread arena, 1 heap: 132 KiB from the system; free: …; 3 bins with chunks (.sizes)>`. */
export function inspectArena(arena: ArenaInfo, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'ArenaInfo', 'special');
  if (depth < 0) return `[${name} #${arena.nr}]`;
  return `${name} <${arenaLine(arena)}; ${plural(arena.sizes.length, 'bin')} with chunks ${stylize(options, '(.sizes)', 'undefined')}>`;
}

/** Arenas listed one a line; more than this are counted. */
const ARENA_LINES = 8;

/**
 * glibc's malloc_info, short: what the process holds from the system and
 * what lies free, in all and per arena, with where the details are
 * (`.arenas[n].sizes`, `.totals`, `.raw`, the XML).
 */
export function inspectMallocInfo(info: MallocInfo, depth: number, options?: InspectContext): string {
  const name = stylize(options, 'MallocInfo', 'special');
  if (depth < 0) return `[${name} ${plural(info.arenas.length, 'arena')}]`;
  const t = info.totals;
  const max = t.systemMax === t.systemCurrent ? '' : ` (max ${shortBytes(t.systemMax)})`;
  const head = `${name} <${plural(info.arenas.length, 'arena')}, ${shortBytes(t.systemCurrent)} from the system${max}, ` +
    `${shortBytes(t.mmap.size)} in ${plural(t.mmap.count, 'mmapped chunk')}`;
  if (depth === 0) return `${head}>`;
  const hint = (text: string) => stylize(options, text, 'undefined');
  const lines = [
    head,
    `  free in all: ${blocks(t.rest)} in bins and tops${t.fast === undefined ? '' : `, ${blocks(t.fast)} in fastbins`}`,
    ...info.arenas.slice(0, ARENA_LINES).map((a) => `  ${arenaLine(a)}`),
  ];
  if (info.arenas.length > ARENA_LINES) lines.push(`  … ${plural(info.arenas.length - ARENA_LINES, 'more arena')}`);
  lines.push(`  ${hint('.arenas[n].sizes')}: each arena's bins; ${hint('.totals')}; ${hint('.raw')}: glibc's XML>`);
  return lines.join('\n');
}
