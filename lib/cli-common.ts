// What several commands share: printing, the --json and --pid flags, the
// reading of their values, and the choices the view commands take.
import { Input, UsageError } from './command-line';
import type { VisOptions } from './allocator/vis';
import { commandLine } from './format';
import type { AttachedProcess } from './remote/attach';
import { PID_MAX } from './remote/proc';

export function write(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** An error as one line of stderr: its code first, as every error has one (Node's own messages already start with theirs). */
export function errorLine(error: unknown, what = ''): string {
  const e = error as Error & { code?: string };
  const code = typeof e.code === 'string' && !e.message.startsWith(e.code) ? `${e.code}: ` : '';
  return `heapscope: ${what === '' ? '' : `${what}: `}${code}${e.message}\n`;
}

export const JSON_FLAG = { name: 'json', help: 'print one JSON document (bigints as "0x…" strings)' };
export const PID_FLAG = { name: 'pid', value: 'pid', help: 'another running process, read without stopping it (it must use glibc\'s malloc)' };
/** The most copies of the allocator a command takes to find one that stood still. */
export const MAX_ATTEMPTS = 100;
export const ATTEMPTS_FLAG = {
  name: 'attempts', value: 'n', help: `copies of the allocator to take for one that stood still (default 5, with --pid 10; at most ${MAX_ATTEMPTS})`,
};

/** A flag's positive number of seconds, in milliseconds. */
export function seconds(input: Input, flag: string): number | undefined {
  const text = input.value(flag);
  if (text === undefined) return undefined;
  const value = /^\s*[\d.]+(e[-+]?\d+)?\s*$/i.test(text) ? Number(text) : Number.NaN;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new UsageError(`--${flag} takes a positive number of seconds, got ${JSON.stringify(text)}`, input.command);
  }
  return value * 1000;
}

/** A flag's whole number from 1 to `max` (`noun` says what it counts, for the message). */
export function countOf(input: Input, flag: string, noun: string, max: number): number | undefined {
  const text = input.value(flag);
  if (text === undefined) return undefined;
  const n = /^[1-9]\d{0,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n <= max)) throw new UsageError(`--${flag} takes a number of ${noun} from 1 to ${max}, got ${JSON.stringify(text)}`, input.command);
  return n;
}

/** The process --pid names, or undefined for this one. */
export function pidOf(input: Input): number | undefined {
  const text = input.value('pid');
  if (text === undefined) return undefined;
  const pid = /^[1-9]\d{0,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!(pid <= PID_MAX)) throw new UsageError(`--pid takes a process id (1 to ${PID_MAX}), got ${JSON.stringify(text)}`, input.command);
  return pid;
}

/** `process PID: its command line (glibc X)` and a blank line, for another process; nothing for this one. */
export function processHeader(target: AttachedProcess | undefined): string {
  return target === undefined ? '' : `process ${target.pid}: ${target.cmdline.length === 0 ? '(no command line)' : commandLine(target.cmdline)} (glibc ${target.glibc})\n\n`;
}

/** The commands that show one view of the allocator or the map, of this process or another (exec --command). */
export const VIEWS = ['arenas', 'params', 'bins', 'maps', 'walk', 'vis', 'doctor'] as const;
export type ViewName = typeof VIEWS[number];

export interface ViewChoice {
  /** The document printed instead of the terminal text, if any. */
  format?: 'json' | 'svg' | 'html';
  /** --arena, when given (bins shows main_arena's by default, walk every arena's). */
  arena?: 'main' | 'all';
  rss: boolean;
  vis: VisOptions;
  /** --attempts, when given. */
  attempts?: number;
}

/** --attempts: how many copies a snapshot may take, or undefined for the default. */
export function attemptsOf(input: Input): number | undefined {
  return countOf(input, 'attempts', 'copies', MAX_ATTEMPTS);
}

/** The choices the view flags make (--json, --svg, --html, --arena, --rss, --attempts, --count and vis's address). */
export function viewChoice(input: Input, vis: VisOptions = {}): ViewChoice {
  const format = (['json', 'svg', 'html'] as const).find((f) => input.has(f));
  return { format, arena: input.value('arena') as ViewChoice['arena'], rss: input.has('rss'), vis, attempts: attemptsOf(input) };
}
