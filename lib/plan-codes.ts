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
export const OUT_WORDS = 16;
export const STATUS = ['ok', 'failed', 'skipped', 'truncated'] as const;
