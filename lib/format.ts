// Number formatting shared by findings, the CLI and the views.
import { typeError } from './errors';
import { describe } from './validate';

/** `0x` + lowercase hex. */
export function hex(value: bigint | number): string {
  if (typeof value !== 'bigint' && typeof value !== 'number') throw typeError(`hex takes a bigint or a number, got ${describe(value)}`);
  return `0x${value.toString(16)}`;
}

/** Bytes for a reader: exact below 1 KiB, else KiB/MiB/GiB with up to 1 decimal plus the exact count. */
export function bytes(value: bigint | number): string {
  const n = Number(value);
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(n);
  if (abs < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = abs / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  const text = Number.isInteger(scaled) ? String(scaled) : scaled.toFixed(1);
  return `${sign}${text} ${units[unit]} (${n} B)`;
}

/** Bytes, short: `24 B`, `128 KiB`, `1.5 MiB`. */
export function shortBytes(value: bigint | number): string {
  return bytes(value).replace(/ \(.*\)$/, '');
}

/** A change in bytes, short, with its sign: `+132 KiB`, `−4 KiB` (a minus sign, U+2212), `0`. */
export function signedBytes(delta: number): string {
  return delta > 0 ? `+${shortBytes(delta)}` : delta < 0 ? `−${shortBytes(-delta)}` : '0';
}

/** From `lo` to `hi`: `24–40`, or `24` when they are one number. */
export function span(lo: number, hi: number): string {
  return lo === hi ? `${lo}` : `${lo}–${hi}`;
}

/** The range some numbers cover: `24–40`, or `24` when they are all one number. */
export function rangeOf(values: readonly number[]): string {
  return span(Math.min(...values), Math.max(...values));
}

/**
 * The phrase after "a" or "an", chosen by how its leading number is said:
 * `an 8-byte`, `an 11-byte`, `an 18-byte`, `an 80-byte`, `an 8 KiB`, `an 800`,
 * `an 18000` (eighteen thousand); but `a 16-byte`, `a 180`, `a 1800` (one
 * thousand eight hundred). Words take "an" before a vowel letter. `capital`
 * starts a sentence: `An 80-byte`.
 */
export function withArticle(phrase: string | number | bigint, capital = false): string {
  const text = String(phrase);
  const an = startsWithVowelSound(text);
  return `${capital ? (an ? 'An' : 'A') : an ? 'an' : 'a'} ${text}`;
}

function startsWithVowelSound(text: string): boolean {
  const number = /^\d[\d,]*/.exec(text);
  if (number === null) return /^[aeiou]/i.test(text);
  const digits = number[0].replace(/,/g, '');
  // Said in groups of three from the left: the first group is what is heard first.
  const lead = digits.slice(0, digits.length % 3 || 3);
  return lead.startsWith('8') || lead === '11' || lead === '18';
}

/** `1 chunk`, `2 chunks`: a count and its noun. */
export function plural(n: number | bigint, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 || n === 1n ? one : many}`;
}

/** `text` with its first letter in upper case: a reason made a sentence of its own. */
export function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Arguments as a shell would take them back: `python3 -c 'print(1)'`. An
 * argument with anything unusual goes in single quotes, one with control
 * characters in $'…' with them escaped, so that none reaches a terminal.
 */
export function commandLine(args: readonly string[]): string {
  return args.map((a) => {
    if (/^[\w@%+=:,./-]+$/.test(a)) return a;
    if (!/[\x00-\x1f\x7f-\x9f]/.test(a)) return `'${a.replace(/'/g, `'\\''`)}'`;
    return `$'${a.replace(/[\\']/g, '\\$&').replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
      const code = c.charCodeAt(0);
      return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    })}'`;
  }).join(' ');
}
