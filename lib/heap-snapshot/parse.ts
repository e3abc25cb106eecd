// Reading a snapshot back: JSON text (or the value JSON.parse made of it)
// checked field by field against the format, addresses turned back into
// bigints. Anything else is ERR_NOT_A_SNAPSHOT naming the field; a newer
// version of the format is ERR_SNAPSHOT_VERSION.
import { TOTALLED_FIELDS } from '../allocator/totals';
import { RSS_KINDS } from '../doctor/rss';
import type { RssRow } from '../doctor/types';
import { HeapscopeError } from '../errors';
import { toJSONValue } from '../json';
import { Mallinfo, MALLINFO_FIELDS } from '../stats';
import {
  Counted, FREE_PLACES, FreePlace, HeapSnapshotData, SizeClassCounts, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, SnapshotArena,
} from './types';
import { own } from '../validate';

type Json = Record<string, unknown>;

/** A value as JSON shows it, cut short. */
function shown(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

function bad(where: string, what: string, value: unknown): HeapscopeError {
  return new HeapscopeError('ERR_NOT_A_SNAPSHOT', `${where} must be ${what}, got ${shown(value)}`);
}

/**
 * `value`'s own fields on an object with no prototype: a field the file
 * lacks reads as undefined there, whatever Object.prototype holds (a diff
 * showed an `Object.prototype.outsideHeap` in every arena).
 */
function object(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(where, 'an object', value);
  return Object.assign(Object.create(null) as Json, value);
}

function array(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw bad(where, 'an array', value);
  return value;
}

function whole(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad(where, 'a whole number', value);
  return value;
}

function text(value: unknown, where: string): string {
  if (typeof value !== 'string') throw bad(where, 'a string', value);
  return value;
}

function flag(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw bad(where, 'true or false', value);
  return value;
}

function address(value: unknown, where: string): bigint {
  if (typeof value !== 'string' || !/^0x[0-9a-f]{1,16}$/.test(value)) throw bad(where, 'an address ("0x…", lowercase hex)', value);
  return BigInt(value);
}

function oneOf<T extends string>(value: unknown, choices: readonly T[], where: string): T {
  if (!choices.includes(value as T)) throw bad(where, choices.join(' or '), value);
  return value as T;
}

function counted(value: unknown, where: string): Counted {
  const o = object(value, where);
  return { count: whole(o.count, `${where}.count`), bytes: whole(o.bytes, `${where}.bytes`) };
}

function numbers<K extends string>(value: unknown, keys: readonly K[], where: string): Record<K, number> {
  const o = object(value, where);
  return Object.fromEntries(keys.map((k) => [k, whole(o[k], `${where}.${k}`)])) as Record<K, number>;
}

function sizeClass(value: unknown, where: string): SizeClassCounts {
  const o = object(value, where);
  const entry: SizeClassCounts = { min: whole(o.min, `${where}.min`), max: o.max === null ? null : whole(o.max, `${where}.max`) };
  for (const place of ['inUse', ...FREE_PLACES] as const) if (o[place] !== undefined) entry[place] = counted(o[place], `${where}.${place}`);
  return entry;
}

function arena(value: unknown, where: string): SnapshotArena {
  const o = object(value, where);
  const free = object(o.free, `${where}.free`);
  return {
    address: address(o.address, `${where}.address`),
    kind: oneOf(o.kind, ['main', 'thread'] as const, `${where}.kind`),
    heaps: whole(o.heaps, `${where}.heaps`),
    systemMem: whole(o.systemMem, `${where}.systemMem`),
    inUse: counted(o.inUse, `${where}.inUse`),
    free: Object.fromEntries(FREE_PLACES.map((p) => [p, counted(free[p], `${where}.free.${p}`)])) as Record<FreePlace, Counted>,
    top: whole(o.top, `${where}.top`),
    fenceposts: counted(o.fenceposts, `${where}.fenceposts`),
    unlisted: counted(o.unlisted, `${where}.unlisted`),
    rss: whole(o.rss, `${where}.rss`),
    ...(o.outsideHeap === undefined ? {} : { outsideHeap: whole(o.outsideHeap, `${where}.outsideHeap`) }),
    classes: array(o.classes, `${where}.classes`).map((c, i) => sizeClass(c, `${where}.classes[${i}]`)),
  };
}

function rssRow(value: unknown, where: string): RssRow {
  const o = object(value, where);
  return {
    kind: oneOf(o.kind, RSS_KINDS, `${where}.kind`),
    ...(o.arena === undefined ? {} : { arena: address(o.arena, `${where}.arena`) }),
    ...numbers(o, ['count', 'size', 'rss'], where),
  };
}

function mallinfo(value: unknown): Mallinfo {
  const source = oneOf(object(value, 'mallinfo').source, ['mallinfo2', 'mallinfo'] as const, 'mallinfo.source');
  return { source, ...numbers(value, MALLINFO_FIELDS, 'mallinfo') };
}

/**
 * A snapshot from the text of a snapshot file, or the value JSON.parse
 * made of it (or a snapshot itself). Throws ERR_NOT_A_SNAPSHOT for
 * anything that is not one, ERR_SNAPSHOT_VERSION for a newer format.
 */
export function parseHeapSnapshot(input: unknown): HeapSnapshotData {
  let value: unknown;
  try {
    value = typeof input === 'string' ? JSON.parse(input) : toJSONValue(input);
  } catch (error) {
    throw new HeapscopeError('ERR_NOT_A_SNAPSHOT', `not JSON: ${(error as Error).message}`);
  }
  const format = typeof value === 'object' && value !== null ? own(value as Json, 'format') : undefined;
  if (format !== SNAPSHOT_FORMAT) {
    throw new HeapscopeError('ERR_NOT_A_SNAPSHOT', `not a heapscope snapshot: its format is ${shown(format)}, not "${SNAPSHOT_FORMAT}"`);
  }
  const o = object(value, 'the snapshot');
  const version = whole(o.version, 'version');
  if (version > SNAPSHOT_VERSION) {
    throw new HeapscopeError('ERR_SNAPSHOT_VERSION', `the snapshot is of format version ${version}; this heapscope reads version ${SNAPSHOT_VERSION} and older`);
  }
  if (version < 1) throw bad('version', 'at least 1', version);
  const takenAt = text(o.takenAt, 'takenAt');
  if (Number.isNaN(Date.parse(takenAt))) throw bad('takenAt', 'a date (ISO 8601)', takenAt);
  const p = object(o.process, 'process');
  const params = object(o.params, 'params');
  for (const [k, v] of Object.entries(params)) if (typeof v === 'number') whole(v, `params.${k}`);
  const rss = object(o.rss, 'rss');
  const copy = object(o.copy, 'copy');
  return {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    takenAt,
    process: {
      pid: whole(p.pid, 'process.pid'), self: flag(p.self, 'process.self'),
      cmdline: array(p.cmdline, 'process.cmdline').map((a, i) => text(a, `process.cmdline[${i}]`)),
      glibc: text(p.glibc, 'process.glibc'), threads: whole(p.threads, 'process.threads'), pageSize: whole(p.pageSize, 'process.pageSize'),
    },
    params: { ...params } as unknown as HeapSnapshotData['params'],
    arenas: array(o.arenas, 'arenas').map((a, i) => arena(a, `arenas[${i}]`)),
    mmapped: numbers(o.mmapped, ['count', 'bytes', 'resident', 'nMmaps', 'mmappedMem'], 'mmapped'),
    rss: { total: whole(rss.total, 'rss.total'), rows: array(rss.rows, 'rss.rows').map((r, i) => rssRow(r, `rss.rows[${i}]`)) },
    totals: numbers(o.totals, TOTALLED_FIELDS, 'totals'),
    ...(o.mallinfo === undefined ? {} : { mallinfo: mallinfo(o.mallinfo) }),
    copy: {
      attempts: whole(copy.attempts, 'copy.attempts'), consistent: flag(copy.consistent, 'copy.consistent'),
      ...(own(copy, 'reason') === undefined ? {} : { reason: text(copy.reason, 'copy.reason') }),
    },
    incomplete: array(o.incomplete, 'incomplete').map((s, i) => text(s, `incomplete[${i}]`)),
  };
}
