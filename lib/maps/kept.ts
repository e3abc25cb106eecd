// What parseMaps keeps of the last text it parsed, and how a later text
// finds the lines it shares with it and the kinds those lines keep.
import { defineOwn } from '../validate';
import { classify, executableFile, reservedTail } from './classify';
import { MemoryRegion, RegionKind } from './region';

/**
 * A line's region as parsed, never handed out and never changed, so a later
 * text with the same line copies it: its `name` is an own property always
 * (undefined for none), so a copy reads it without asking whether it is.
 */
export type Line = Omit<MemoryRegion, 'name' | 'kind' | 'object'> & { name: string | undefined };

/**
 * A maps text, where each of its lines ends (past its '\n'), each line as
 * parsed, and the kind (and `object`) classify() gave it.
 */
export interface Kept { text: string; ends: number[]; parsed: Line[]; kinds: RegionKind[]; objects: (string | undefined)[] }

/** Where line `i` of a kept text starts. */
export const lineStart = (before: Kept, i: number): number => (i === 0 ? 0 : before.ends[i - 1]);

/**
 * How many whole lines `text` starts with that `before` starts with too.
 * Found by halving, each step comparing the two texts' starts as strings:
 * one comparison of a few kilobytes cost about what comparing two lines
 * did, and a text that changed in one place shares all but a line or two.
 */
export function sharedHead(text: string, before: Kept): number {
  let lo = 0;
  let hi = before.ends.length;
  while (lo < hi) {
    const k = (lo + hi + 1) >>> 1;
    // The first `lo` lines are shared: only the lines after them are compared.
    const from = lineStart(before, lo);
    const to = before.ends[k - 1];
    if (to <= text.length && text.slice(from, to) === before.text.slice(from, to)) lo = k;
    else hi = k - 1;
  }
  return lo;
}

/**
 * How many whole lines `text` ends with that `before` ends with too, of
 * its lines after the `head` shared at the start (each text's line is
 * counted once). A tail of `before`'s lines is whole lines in `text` too
 * when the character before it there is a '\n' (or the shared head's end).
 */
export function sharedTail(text: string, before: Kept, head: number): number {
  const from = lineStart(before, head);
  const count = before.ends.length;
  let lo = 0;
  let hi = count - head;
  while (lo < hi) {
    const k = (lo + hi + 1) >>> 1;
    // The last `lo` lines are shared: only the lines before them are compared.
    const length = before.text.length - lineStart(before, count - k);
    const shared = before.text.length - lineStart(before, count - lo);
    const at = text.length - length;
    if (
      at >= from && (at === from || text.charCodeAt(at - 1) === 10) &&
      text.slice(at, text.length - shared) === before.text.slice(before.text.length - length, before.text.length - shared)
    ) lo = k;
    else hi = k - 1;
  }
  return lo;
}

/** Keeps the kinds (and objects) of `regions` from `from` up to `to`. */
export function record(regions: MemoryRegion[], kept: Kept, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const r = regions[i];
    kept.kinds.push(r.kind);
    kept.objects.push(Object.hasOwn(r, 'object') ? r.object : undefined);
  }
}

/**
 * Classifies a text whose first `head` and last `tail` lines `before` had
 * too. A shared line gets the kind `before`'s got, where nothing its kind
 * depends on can have changed (classify()): the lines between, the line
 * after them (its neighbour below changed: a bss), and an arena heap's first
 * line and reserved tail that meet them, are classified afresh; `kept`
 * gets every kind. False, with nothing done, when a line between, in either
 * text, maps a file executable (the kind of that file's every mapping may
 * change): the caller classifies every line.
 */
export function classifyAround(regions: MemoryRegion[], before: Kept, head: number, tail: number, kept: Kept): boolean {
  const end = regions.length - tail;
  const shift = before.parsed.length - regions.length;
  for (let i = head; i < end; i++) if (executableFile(regions[i])) return false;
  for (let k = head; k < end + shift; k++) if (executableFile(before.parsed[k])) return false;
  let from = head;
  while (from > 0 && reservedTail(regions[from - 1])) from--;
  if (from > 0) from--;
  let to = end < regions.length ? end + 1 : end;
  while (to < regions.length && reservedTail(regions[to])) to++;
  const reuse = (i: number, k: number): void => {
    const r = regions[i];
    r.kind = before.kinds[k];
    const object = before.objects[k];
    if (object !== undefined) defineOwn(r, 'object', object);
  };
  for (let i = 0; i < from; i++) reuse(i, i);
  for (let i = to; i < regions.length; i++) reuse(i, i + shift);
  classify(regions, from, to);
  kept.kinds = before.kinds.slice(0, from);
  kept.objects = before.objects.slice(0, from);
  record(regions, kept, from, to);
  for (let k = to + shift; k < before.kinds.length; k++) {
    kept.kinds.push(before.kinds[k]);
    kept.objects.push(before.objects[k]);
  }
  return true;
}
