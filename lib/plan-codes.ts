// The plan executor's wire format: op codes, words per step in and out, and
// result statuses, as native/plan.cc reads and writes them. Apart from plan.ts
// so that a record module can run a one-step plan through the binding
// without importing the plan API (maps/index.ts reads /proc/self/maps so).
export const OP_CODES = {
  malloc: 1n, calloc: 2n, realloc: 3n, alignedAlloc: 4n, free: 5n, break: 6n, header: 7n,
  usableSize: 8n, mallinfo: 9n, trim: 10n, touch: 11n, resident: 12n, maps: 13n, statm: 14n, read: 15n, freeze: 16n, thaw: 17n,
  pagemap: 18n,
} as const;
export const IN_WORDS = 4;
/**
 * The words of each op's record, by op code (native/plan.cc has the same
 * table): the records are written one after another, each a head word and
 * then its op's fields. The head word holds the status in bits 0 to 7, the
 * op in 8 to 15, a read's anonymous flag in bit 16 and errno in 32 to 63.
 * The fields, after the head: an allocating step's pointer; break: the
 * break; header: the size word, prev_size, the chunk's address; usableSize,
 * trim (1 when memory was released), freeze (the child's pid): the value;
 * mallinfo: its ten fields, then 2 when they came from mallinfo2 (1 from
 * mallinfo); resident and pagemap: resident pages, total pages; statm:
 * resident set, total size (pages); read: the pages left zero, then why
 * pagemap could not be read (errno, or 0).
 */
export const RECORD_WORDS: readonly number[] = [0, 2, 2, 2, 2, 1, 2, 4, 2, 12, 2, 1, 3, 1, 3, 3, 2, 1, 3];
/** By the head word's low byte. */
export const STATUS = ['ok', 'failed', 'skipped', 'truncated'] as const;
