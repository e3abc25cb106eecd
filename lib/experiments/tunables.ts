// glibc malloc tunables an experiment may be run under (GLIBC_TUNABLES in a
// child process). Names and bounds from glibc's elf/dl-tunables.list; glibc
// silently ignores an unknown name or an out-of-range value, so heapscope
// refuses them before anything runs.
import { HeapscopeError } from '../errors';
import { describe, lookup, readEntries } from '../validate';

const KNOWN: Record<string, { max: number; since: string }> = {
  'glibc.malloc.arena_max': { max: 2 ** 31 - 1, since: '2.26' },
  'glibc.malloc.arena_test': { max: 2 ** 31 - 1, since: '2.26' },
  'glibc.malloc.check': { max: 3, since: '2.26' },
  'glibc.malloc.hugetlb': { max: 2, since: '2.35' },
  'glibc.malloc.mmap_max': { max: 2 ** 31 - 1, since: '2.26' },
  'glibc.malloc.mmap_threshold': { max: 2 ** 53 - 1, since: '2.26' },
  'glibc.malloc.mxfast': { max: 160, since: '2.26' },
  'glibc.malloc.perturb': { max: 255, since: '2.26' },
  'glibc.malloc.tcache_count': { max: 65535, since: '2.26' },
  'glibc.malloc.tcache_max': { max: 2 ** 53 - 1, since: '2.26' },
  'glibc.malloc.tcache_unsorted_limit': { max: 2 ** 53 - 1, since: '2.26' },
  'glibc.malloc.top_pad': { max: 2 ** 53 - 1, since: '2.26' },
  'glibc.malloc.trim_threshold': { max: 2 ** 53 - 1, since: '2.26' },
};

export type Tunables = Record<string, number | bigint | string>;

export const KNOWN_TUNABLES = Object.keys(KNOWN);

/**
 * Checks every name and value; returns them as decimal strings. Only the
 * object's own properties count: `constructor` or `toString` is no tunable.
 */
export function checkTunables(tunables: Tunables = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of readEntries(tunables, 'tunables')) {
    const known = lookup(KNOWN, name);
    if (known === undefined) {
      throw new HeapscopeError('ERR_INVALID_TUNABLE', `unknown tunable ${JSON.stringify(name)}; known: ${KNOWN_TUNABLES.join(', ')}`);
    }
    const text = typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string' ? String(value).trim() : '';
    if (!/^\d+$/.test(text) || Number(text) > known.max) {
      const shown = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'number' || typeof value === 'bigint' ? String(value) : describe(value);
      throw new HeapscopeError('ERR_INVALID_TUNABLE', `${name} takes a whole number from 0 to ${known.max}, got ${shown}`);
    }
    out[name] = String(BigInt(text));
  }
  return out;
}

/** `a=1:b=2`, merged over what the environment already sets. */
export function tunablesEnv(tunables: Record<string, string>, inherited = process.env.GLIBC_TUNABLES): string {
  const merged = { ...parseTunablesEnv(inherited), ...tunables };
  return Object.entries(merged).map(([k, v]) => `${k}=${v}`).join(':');
}

export function parseTunablesEnv(text: string | undefined): Record<string, string> {
  // fromEntries defines each name as an own property: even `__proto__`.
  const entries: [string, string][] = [];
  for (const part of (text ?? '').split(':')) {
    const eq = part.indexOf('=');
    if (eq > 0) entries.push([part.slice(0, eq), part.slice(eq + 1)]);
  }
  return Object.fromEntries(entries);
}

/** A tunable in force in this process, as a number (undefined when not set). */
export function tunable(name: string): number | undefined {
  const value = lookup(parseTunablesEnv(process.env.GLIBC_TUNABLES), name);
  return value === undefined ? undefined : Number(value);
}
