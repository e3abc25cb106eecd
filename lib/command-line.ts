// Commands described as data (name, arguments, flags, examples), the
// parsing of one command's arguments against its entry, and the help texts
// made from the same entries. The commands themselves are in cli.ts.
import { parseArgs } from 'node:util';

export interface Flag {
  /** The long name, without dashes. */
  name: string;
  /** What the value stands for (`file`, `name=value`); a flag without one is a switch. */
  value?: string;
  /** The values it takes, when there are few. */
  choices?: readonly string[];
  repeatable?: boolean;
  required?: boolean;
  help: string;
}

export interface Positionals {
  /** As the usage line shows them: `<name...>`, `[command]`. */
  usage: string;
  min: number;
  max: number;
  help: string;
  /** The message when fewer than `min` are given. */
  missing?: string;
}

export interface Command {
  name: string;
  summary: string;
  args?: Positionals;
  flags: readonly Flag[];
  /** Flags of which at most one may be given. */
  exclusive?: readonly (readonly string[])[];
  examples: readonly string[];
  run(input: Input): void | Promise<void>;
}

/** A command's arguments, checked against its entry. */
export class Input {
  constructor(
    readonly command: Command,
    readonly args: readonly string[],
    private readonly given: ReadonlyMap<string, readonly (string | true)[]>,
  ) {}

  /** Whether a flag was given. */
  has(flag: string): boolean {
    return this.given.has(flag);
  }

  /** A value flag's value. */
  value(flag: string): string | undefined {
    const values = this.given.get(flag);
    return values === undefined ? undefined : (values[0] as string);
  }

  /** A repeatable flag's values, in order. */
  values(flag: string): string[] {
    return (this.given.get(flag) ?? []) as string[];
  }
}

/** Bad usage: exit 2 with the message and the usage line of `command` (or the global usage). */
export class UsageError extends Error {
  constructor(message: string, readonly command?: Command) {
    super(message);
    this.name = 'UsageError';
  }
}

const HELP: Flag = { name: 'help', help: 'this text' };

function quote(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(' ');
}

function flagUsage(flag: Flag): string {
  const value = flag.choices !== undefined ? flag.choices.join('|') : flag.value;
  return `--${flag.name}${value === undefined ? '' : ` <${value}>`}`;
}

/**
 * Parses a command's arguments (everything after its name). `--help` or
 * `-h` anywhere returns 'help'; anything the entry does not allow is a
 * UsageError naming it.
 */
export function parseCommand(command: Command, argv: readonly string[], all: readonly Command[]): Input | 'help' {
  // Not strict: unknown flags and missing values come back as tokens, and
  // the messages below name them plainly.
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(command.flags.map((f) => [f.name, { type: f.value === undefined && f.choices === undefined ? 'boolean' : 'string' }])),
    allowPositionals: true,
    strict: false,
    tokens: true,
  } as const);
  if (tokens.some((t) => t.kind === 'option' && (t.name === 'help' || t.name === 'h') && t.value === undefined)) return 'help';
  const fail = (message: string) => new UsageError(message, command);
  const args: string[] = [];
  const given = new Map<string, (string | true)[]>();
  for (const token of tokens) {
    if (token.kind === 'positional') args.push(token.value);
    if (token.kind !== 'option') continue;
    const flag = command.flags.find((f) => f.name === token.name && token.rawName === `--${f.name}`);
    if (flag === undefined) {
      const others = all.filter((c) => c !== command && c.flags.some((f) => `--${f.name}` === token.rawName)).map((c) => c.name);
      const after = command.args?.usage.startsWith('-- ') ? '; options for the program go after --' : '';
      throw fail(`${command.name} does not take ${token.rawName}${others.length > 0 ? ` (${others.join(', ')} ${others.length > 1 ? 'do' : 'does'})` : ''}${after}`);
    }
    let value: string | true = true;
    if (flag.value === undefined && flag.choices === undefined) {
      if (token.value !== undefined) throw fail(`${token.rawName} takes no value, got ${token.rawName}=${token.value}`);
    } else {
      // `--out --json` would take "--json" as the file: a value that looks
      // like a flag has to be given as --out=--json.
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-'))) {
        throw fail(`${token.rawName} needs a value: ${flagUsage(flag)}`);
      }
      if (flag.choices !== undefined && !flag.choices.includes(token.value)) {
        throw fail(`${token.rawName} takes ${flag.choices.join(' or ')}, got ${JSON.stringify(token.value)}`);
      }
      value = token.value;
    }
    const values = given.get(flag.name) ?? [];
    if (values.length > 0 && !flag.repeatable) throw fail(`${token.rawName} given twice`);
    given.set(flag.name, [...values, value]);
  }
  for (const group of command.exclusive ?? []) {
    const set = group.filter((name) => given.has(name));
    if (set.length > 1) throw fail(`${set.map((n) => `--${n}`).join(' and ')} exclude each other`);
  }
  for (const flag of command.flags) {
    if (flag.required && !given.has(flag.name)) throw fail(`${command.name} needs ${flagUsage(flag)}`);
  }
  const { min, max } = command.args ?? { min: 0, max: 0 };
  if (args.length > max) {
    throw fail(max === 0
      ? `${command.name} takes no arguments, got ${quote(args)}`
      : `${command.name} takes at most ${max} argument${max === 1 ? '' : 's'}, got ${quote(args)}`);
  }
  if (args.length < min) throw fail(command.args?.missing ?? `${command.name} needs ${command.args!.usage}`);
  return new Input(command, args, given);
}

/**
 * `report --out <file>`: the name, the arguments and the flags it cannot do
 * without; `options` goes before arguments that follow `--`.
 */
function synopsis(command: Command, options = ''): string {
  const required = command.flags.filter((f) => f.required).map(flagUsage);
  const args = command.args === undefined ? [] : [command.args.usage];
  return command.args?.usage.startsWith('-- ')
    ? [command.name, ...required, ...(options === '' ? [] : [options]), ...args].join(' ')
    : [command.name, ...args, ...required, ...(options === '' ? [] : [options])].join(' ');
}

/** `usage: heapscope run <name...> [options]`. */
export function usageLine(command: Command): string {
  return `usage: heapscope ${synopsis(command, command.flags.some((f) => !f.required) ? '[options]' : '')}`;
}

function columns(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`);
}

/** What `heapscope <command> --help` prints. */
export function commandHelp(command: Command): string {
  const lines = [usageLine(command), '', command.summary];
  if (command.args !== undefined) lines.push('', 'arguments:', ...columns([[command.args.usage, command.args.help]]));
  lines.push(
    '',
    'options:',
    ...columns([
      ...command.flags.map((f) => [flagUsage(f), f.help + (f.repeatable ? ' (repeatable)' : '')] as const),
      ['-h, --help', HELP.help],
    ]),
  );
  lines.push('', command.examples.length === 1 ? 'example:' : 'examples:', ...command.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

/** What `heapscope --help` prints. */
export function globalHelp(commands: readonly Command[]): string {
  return [
    'usage: heapscope <command> [options]',
    '',
    'commands:',
    ...columns(commands.map((c) => [synopsis(c), c.summary] as const)),
    '',
    'options:',
    ...columns([
      ['-h, --help', 'this text; after a command, that command\'s options and an example'],
      ['-V, --version', 'the version of heapscope'],
    ]),
    '',
    'exit status: 0 done, 1 an experiment, the system or reading a process failed, 2 bad usage.',
  ].join('\n');
}
