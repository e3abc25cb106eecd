import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { experiments } from '../lib/experiments/run';
import { QUIET_NODE_FLAGS } from '../lib/quiet-node';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { SYNC_CHILD } from './helpers/sync-child';
import { hostLibraries, nodeAgainLine } from './helpers/foreign-env';

// Every command runs in a node of its own, whose room the command checks itself.
heapRoomNotNeeded();

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const VERSION: string = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
const COMMANDS = ['list', 'run', 'tour', 'maps', 'report', 'walk', 'arenas', 'params', 'bins', 'vis', 'doctor', 'snapshot', 'diff', 'watch', 'exec', 'help'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// In a directory of its own: a report written by mistake lands there.
function cli(...args: string[]) {
  const child = spawnSync(process.execPath, [CLI, ...args], { ...SYNC_CHILD, encoding: 'utf8', cwd: tmp });
  return { code: child.status, stdout: child.stdout, stderr: child.stderr };
}

/** Runs the CLI and closes the reading end of its stdout after the first bytes, as `| head -c` does. */
function cliUntilStdoutCloses(...args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

const SCRIPT = ['/usr/bin/script', '/bin/script'].find((file) => fs.existsSync(file));
const NODE = nodeAgainLine();

/** Runs a shell command line under a pseudo-terminal (util-linux `script`); returns what the terminal showed. */
function onTerminal(command: string) {
  const child = spawnSync(SCRIPT!, ['-qefc', command, '/dev/null'], { ...SYNC_CHILD, encoding: 'utf8', cwd: tmp, env: hostLibraries() });
  return { code: child.status, screen: child.stdout };
}

function sh(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

describe('heapscope CLI', () => {
  it('list names every experiment with its question', () => {
    const { code, stdout } = cli('list');
    expect(code).toBe(0);
    for (const e of experiments()) expect(stdout).toContain(`${e.name}`);
    expect(stdout.trim().split('\n')).toHaveLength(experiments().length);
  });

  it('run --json prints one JSON document with bigints as hex strings', () => {
    const { code, stdout } = cli('run', 'chunk-sizes', '--json');
    expect(code).toBe(0);
    const doc = JSON.parse(stdout);
    expect(doc.name).toBe('chunk-sizes');
    expect(doc.environment.isolated).toBe(true);
    expect(doc.rows[10].address).toMatch(/^0x[0-9a-f]+$/);
    expect(doc.rows[10].chunkSize).toBe(32);
    expect(doc.findings.length).toBeGreaterThan(0);
  });

  it('run with several experiments runs each in a quiet child of its own and prints them in the order given, whichever ends first', () => {
    const names = ['paging', 'layout', 'tcache', 'chunk-sizes', 'paging'];
    const { code, stdout } = cli('run', ...names, '--json');
    expect(code).toBe(0);
    const docs = JSON.parse(stdout) as { name: string; environment: { isolated: boolean; pid: number; execArgv: string[] } }[];
    expect(docs.map((d) => d.name)).toEqual(names);
    expect(new Set(docs.map((d) => d.environment.pid)).size).toBe(names.length);
    for (const d of docs) {
      expect(d.environment.isolated).toBe(true);
      expect(d.environment.execArgv).toEqual([...QUIET_NODE_FLAGS]);
    }
  });

  it('run passes --tunable to the child', () => {
    const { code, stdout } = cli('run', 'chunk-sizes', '--json', '--tunable', 'glibc.malloc.tcache_count=0');
    expect(code).toBe(0);
    expect(JSON.parse(stdout).environment.tunables).toEqual({ 'glibc.malloc.tcache_count': '0' });
  });

  it('run prints a readable story', () => {
    const { code, stdout } = cli('run', 'chunk-sizes', '--in-process');
    expect(code).toBe(0);
    expect(stdout).toContain('== chunk-sizes: malloc(n): how many bytes do you really get?');
    expect(stdout).toContain('this process');
    expect(stdout).toMatch(/- malloc\(10\) returned a \d+-byte chunk/);
    // The experiment's one table, fitted to a pipe's 80 columns, and under it how many rows and where the rest are.
    expect(stdout).toContain('\nChunk size per request, runs of equal chunk size on one line\nrequests    chunk   usable  slack  rule says  flags         address\n');
    expect(stdout.replace(/\s+/g, ' ')).toMatch(
      /20 of \d+ rows \(a row per run of consecutive requests that got the same chunk size\) of the \d+ measured\. Every row measured: heapscope run chunk-sizes --json/);
  });

  it.each([
    [[]],
    [['frobnicate']],
    [['run']],
    [['run', 'no-such-experiment']],
    [['run', 'chunk-sizes', '--tunable', 'glibc.malloc.nope=1']],
    [['run', 'chunk-sizes', '--tunable', 'novalue']],
    [['run', 'chunk-sizes', '--isolated', '--in-process']],
    [['run', 'chunk-sizes', '--bogus']],
  ])('exits 2 with a usage message on bad usage: %j', (args) => {
    const { code, stderr, stdout } = cli(...args);
    expect(code).toBe(2);
    expect(stderr).toContain('usage: heapscope');
    expect(stdout).toBe('');
  });

  it('help exits 0', () => {
    expect(cli('help').code).toBe(0);
    expect(cli('--help').stdout).toContain('usage: heapscope');
  });

  it('maps prints the classified map, and --json parses', () => {
    const text = cli('maps');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/ heap +\[heap\]/);
    const { stdout } = cli('maps', '--json', '--rss');
    const regions = JSON.parse(stdout);
    expect(regions.some((r: { kind: string }) => r.kind === 'stack')).toBe(true);
    expect(regions.every((r: { rss?: number }) => typeof r.rss === 'number')).toBe(true);
  });

  it('vis prints chunks without colour when piped, with colour when forced (never with NO_COLOR); --json is the data', () => {
    const piped = cli('vis', '--count', '3');
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);
    expect(piped.stdout).not.toMatch(/\x1b\[/);
    expect(piped.stdout).toMatch(/^Chunks 1–3 of \d+ in main_arena's \[heap\] 0x[0-9a-f]+–0x[0-9a-f]+\n/);
    expect(piped.stdout).toMatch(/\n0x[0-9a-f]+ {2}0x[0-9a-f]+ \[P\] {2}/);
    expect(piped.stdout).toMatch(/\n {2}0x[0-9a-f]+ {2}0x[0-9a-f]{16} {2}0x[0-9a-f]{16} {2}.{16}\n/);
    const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [CLI, 'vis', '--count', '2'], { ...SYNC_CHILD, encoding: 'utf8', cwd: tmp, env: { ...process.env, ...env } }).stdout;
    expect(run({ FORCE_COLOR: '1', NO_COLOR: '' })).toMatch(/\x1b\[3\dm/);
    expect(run({ FORCE_COLOR: '1', NO_COLOR: '1' })).not.toMatch(/\x1b\[/);
    const doc = JSON.parse(cli('vis', '--count', '2', '--json').stdout);
    expect(doc.chunks).toHaveLength(2);
    expect(doc.chunks[0].address).toMatch(/^0x[0-9a-f]+$/);
    expect(doc.chunks[0].lines[0].words[1]).toMatch(/^0x[0-9a-f]+$/);
    expect(doc.region.kind).toBe('heap');
    expect(cli('vis', '--count', '1', '--svg').stdout).toMatch(/^<svg /);
    expect(cli('vis', '--count', '1', '--html').stdout).toMatch(/^<section class="heapscope-result heapscope-vis">/);
  });

  it('vis of an address in no heap exits 1 with ERR_NOT_IN_HEAP', () => {
    const { code, stdout, stderr } = cli('vis', '0x1000');
    expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
    expect(stderr).toMatch(/^heapscope: ERR_NOT_IN_HEAP: 0x1000 is in no arena's heap \(the heaps are main_arena's \[heap\] 0x/);
  });

  it('exits 1 with the reason when an experiment fails', () => {
    // A child killed by a signal is a failure of the experiment, not of usage.
    const child = spawnSync(process.execPath, ['-e', `
      const cp = require('node:child_process');
      const spawn = cp.spawn;
      cp.spawn = (cmd, args, opts) => spawn(cmd, ['-e', 'process.kill(process.pid, "SIGKILL")'], opts);
      require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'cli.js'))}).main(['run', 'chunk-sizes'])
        .then((code) => { process.exitCode = code; });`], { ...SYNC_CHILD, encoding: 'utf8' });
    expect(child.status).toBe(1);
    expect(child.stderr).toMatch(/ERR_EXPERIMENT_FAILED: experiment chunk-sizes failed in its child process: killed by SIGKILL/);
  });

  it('lets a NODE_OPTIONS --require module write to stdout without breaking a run', () => {
    const log = path.join(tmp, 'banner-pids');
    const child = spawnSync(process.execPath, [CLI, 'run', 'free', '--json'], {
      ...SYNC_CHILD,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--require ${path.join(__dirname, 'fixtures', 'banner', 'stdout.cjs')}`, BANNER_LOG: log },
    });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    // The CLI process itself prints the banner first; the JSON follows it.
    const json = JSON.parse(child.stdout.slice(child.stdout.indexOf('{')));
    expect(json.name).toBe('free');
    // Then each child the run started: a child whose break could not grow (about one start in a
    // hundred) refused the run and loaded the module too, before the one that ran it.
    const refused = json.environment.refusedChildren?.length ?? 0;
    const pids = fs.readFileSync(log, 'utf8').trim().split('\n').map(Number);
    expect(pids.length).toBe(2 + refused);
    expect([pids[0], pids[pids.length - 1]]).toEqual([child.pid, json.environment.pid]);
  });

  it('run --timeout kills an experiment that runs too long: exit 1 and the coded error', () => {
    const { code, stderr, stdout } = cli('run', 'free', '--timeout', '0.001');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^heapscope: ERR_EXPERIMENT_TIMEOUT: experiment free did not finish within 1 ms: its child process \d+ was killed/);
  });

  it('run of several goes on past one that failed, says which, and exits 1 (with --json it stops at the first)', () => {
    const { code, stderr, stdout } = cli('run', 'layout', 'chunk-sizes', '--timeout', '0.001');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^heapscope: layout: ERR_EXPERIMENT_TIMEOUT: experiment layout did not finish within 1 ms/);
    expect(lines[1]).toMatch(/^heapscope: chunk-sizes: ERR_EXPERIMENT_TIMEOUT: experiment chunk-sizes did not finish within 1 ms/);
    expect(lines[2]).toBe('heapscope: ERR_EXPERIMENT_FAILED: 2 of 2 experiments did not give a result (layout, chunk-sizes): their errors are above');
    const json = cli('run', 'layout', 'chunk-sizes', '--timeout', '0.001', '--json');
    expect(json.code).toBe(1);
    expect(json.stderr).toMatch(/^heapscope: ERR_EXPERIMENT_TIMEOUT: experiment layout did not finish within 1 ms: [^\n]*\n$/);
  });
});

describe('a closed pipe', () => {
  it.each([
    [['tour']],
    [['run', 'chunk-sizes', '--json']],
  ])('ends %j quietly: exit 0, nothing on stderr', async (args) => {
    const { code, signal, stderr } = await cliUntilStdoutCloses(...args);
    expect(stderr).toBe('');
    expect(signal).toBe(null);
    expect(code).toBe(0);
  });
});

describe('per-command help, --version and usage errors', () => {
  it.each(COMMANDS)('%s --help prints its usage, its options and an example', (command) => {
    const { code, stdout, stderr } = cli(command, '--help');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^usage: heapscope ${command}\\b`));
    expect(stdout).toContain('-h, --help');
    expect(stdout).toMatch(new RegExp(`\\nexamples?:\\n {2}heapscope ${command}\\b`));
    expect(cli('help', command).stdout).toBe(stdout);
  });

  it('-h is --help', () => {
    expect(cli('walk', '-h').stdout).toBe(cli('walk', '--help').stdout);
  });

  it('run --help lists run\'s flags, and only those', () => {
    const { stdout } = cli('run', '--help');
    for (const flag of ['--json', '--isolated', '--in-process', '--tunable <name=value>', '--timeout <seconds>']) expect(stdout).toContain(flag);
    expect(stdout).not.toContain('--out');
    expect(stdout).not.toContain('--svg');
  });

  it('the global help names every command', () => {
    const { code, stdout } = cli('--help');
    expect(code).toBe(0);
    for (const command of COMMANDS) expect(stdout).toMatch(new RegExp(`\\n {2}${command}\\b`));
    expect(stdout).toContain('-V, --version');
    expect(cli('help').stdout).toBe(stdout);
  });

  it.each(['--version', '-V'])('%s prints the version from package.json', (flag) => {
    const { code, stdout, stderr } = cli(flag);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it.each([
    [['run', 'chunk-sizes', '--html'], 'run does not take --html (walk, vis, diff, exec do)'],
    [['tour', '--html'], 'tour does not take --html (walk, vis, diff, exec do)'],
    [['maps', '--svg'], 'maps does not take --svg (walk, vis, exec do)'],
    [['list', '--json'], 'list does not take --json'],
    [['list', 'extra'], 'list takes no arguments, got "extra"'],
    [['tour', 'free'], 'tour takes no arguments, got "free"'],
    [['maps', 'a', 'b'], 'maps takes no arguments, got "a" "b"'],
    [['run', 'chunk-sizes', '-x'], 'run does not take -x'],
    [['run', 'chunk-sizes', '--bogus'], 'run does not take --bogus'],
    [['run', 'chunk-sizes', '--json=yes'], '--json takes no value, got --json=yes'],
    [['run', 'chunk-sizes', '--tunable'], '--tunable needs a value: --tunable <name=value>'],
    [['run', 'chunk-sizes', '--timeout', '--json'], '--timeout needs a value: --timeout <seconds>'],
    [['run', 'chunk-sizes', '--timeout', '0'], '--timeout takes a positive number of seconds, got "0"'],
    [['run', 'chunk-sizes', '--timeout', 'soon'], '--timeout takes a positive number of seconds, got "soon"'],
    [['run', 'chunk-sizes', '--in-process', '--tunable', 'glibc.malloc.tcache_count=0'], '--in-process and --tunable exclude each other'],
    [['tour', '--in-process', '--timeout', '5'], '--in-process and --timeout exclude each other'],
    [['run', 'chunk-sizes', 'nope'], 'no experiment named "nope"; try one of: layout,'],
    [['report'], 'report needs --out <file>'],
    [['report', '--out', 'a.html', '--out', 'b.html'], '--out given twice'],
    [['walk', '--arena', 'some'], '--arena takes main or all, got "some"'],
    [['walk', '--svg', '--html'], '--svg and --html exclude each other'],
    [['help', 'frobnicate'], 'no command named "frobnicate"'],
    [['help', 'run', 'tour'], 'help takes at most 1 argument, got "run" "tour"'],
    [['--version', 'run'], '--version takes no arguments, got "run"'],
    [['--json', 'run'], 'the command comes first, got --json'],
    [['bins', '--pid', 'abc'], '--pid takes a process id (1 to 4194304), got "abc"'],
    [['arenas', '--pid', '0'], '--pid takes a process id (1 to 4194304), got "0"'],
    [['params', '--pid', '1.5'], '--pid takes a process id (1 to 4194304), got "1.5"'],
    [['maps', '--pid', '4194305'], '--pid takes a process id (1 to 4194304), got "4194305"'],
    [['maps', '--pid', '0x10'], '--pid takes a process id (1 to 4194304), got "0x10"'],
    [['bins', '--pid=', '--json'], '--pid takes a process id (1 to 4194304), got ""'],
    [['bins', '--pid'], '--pid needs a value: --pid <pid>'],
    [['arenas', '--pid', '-3'], '--pid needs a value: --pid <pid>'],
    [['arenas', '--pid', '1', '--pid', '2'], '--pid given twice'],
    [['vis', 'zz'], 'the address is hexadecimal, 0x and at most 16 digits, got "zz"'],
    [['vis', '4096'], 'the address is hexadecimal, 0x and at most 16 digits, got "4096"'],
    [['vis', '0x10000000000000000'], 'the address is hexadecimal, 0x and at most 16 digits, got "0x10000000000000000"'],
    [['vis', '0x1', '0x2'], 'vis takes at most 1 argument, got "0x1" "0x2"'],
    [['vis', '--count', '0'], '--count takes a number of chunks from 1 to 1000, got "0"'],
    [['vis', '--count', '1001'], '--count takes a number of chunks from 1 to 1000, got "1001"'],
    [['vis', '--count', 'ten'], '--count takes a number of chunks from 1 to 1000, got "ten"'],
    [['vis', '--svg', '--json'], '--json and --svg exclude each other'],
    [['vis', '--pid', 'abc'], '--pid takes a process id (1 to 4194304), got "abc"'],
    [['walk', '--pid=-3'], '--pid takes a process id (1 to 4194304), got "-3"'],
    [['list', '--pid', '1'], 'list does not take --pid (maps, walk, arenas, params, bins, vis, doctor, snapshot, watch do)'],
    [['exec'], 'exec needs a program to start'],
    [['exec', 'python3', '-c', '1'], 'exec does not take -c; options for the program go after --'],
    [['exec', '--command', 'tour', '--', 'true'], '--command takes arenas or params or bins or maps or walk or vis or doctor, got "tour"'],
    [['exec', '--arena', 'all', '--', 'true'], '--arena goes with --command bins or walk'],
    [['exec', '--command', 'bins', '--rss', '--', 'true'], '--rss goes with --command maps'],
    [['exec', '--command', 'walk', '--count', '3', '--', 'true'], '--count goes with --command vis'],
    [['exec', '--command', 'doctor', '--svg', '--', 'true'], '--svg goes with --command walk or vis'],
    [['exec', '--html', '--', 'true'], '--html goes with --command walk or vis'],
    [['exec', '--command', 'walk', '--svg', '--json', '--', 'true'], '--json and --svg exclude each other'],
    [['exec', '--command', 'vis', '--count', '1001', '--', 'true'], '--count takes a number of chunks from 1 to 1000, got "1001"'],
    [['exec', '--ready', 'up', '--after', '1', '--', 'true'], '--ready and --after exclude each other'],
    [['exec', '--after', 'soon', '--', 'true'], '--after takes a positive number of seconds, got "soon"'],
    [['exec', '--after', '1e9', '--', 'true'], '--after takes at most 2147483 seconds (24 days), got 1e9'],
  ])('%j is a usage error: %s', (args, message) => {
    const { code, stdout, stderr } = cli(...args);
    expect(stdout).toBe('');
    expect(code).toBe(2);
    const [first, second] = stderr.split('\n');
    expect(first.startsWith(`heapscope: ${message}`)).toBe(true);
    expect(second).toMatch(/^usage: heapscope/);
    // No half-quoted words: quotes pair up.
    expect(first.split('"').length % 2).toBe(1);
    expect(first).not.toContain("'");
  });

  it('checks every experiment name and tunable before running any', () => {
    const log = path.join(tmp, 'check-first-pids');
    const child = spawnSync(process.execPath, [CLI, 'run', 'chunk-sizes', 'nope'], {
      ...SYNC_CHILD,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--require ${path.join(__dirname, 'fixtures', 'banner', 'pid.cjs')}`, BANNER_LOG: log },
    });
    expect(child.status).toBe(2);
    expect(fs.readFileSync(log, 'utf8').trim().split('\n').map(Number)).toEqual([child.pid]);
  });
});

describe('report', () => {
  // The pids of every node process the CLI started: with a bad destination, none.
  function report(out: string) {
    const log = path.join(tmp, `report-pids-${path.basename(out)}`);
    fs.rmSync(log, { force: true });
    const child = spawnSync(process.execPath, [CLI, 'report', '--out', out], {
      ...SYNC_CHILD,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--require ${path.join(__dirname, 'fixtures', 'banner', 'pid.cjs')}`, BANNER_LOG: log },
    });
    const pids = fs.readFileSync(log, 'utf8').trim().split('\n').map(Number);
    return { code: child.status, stdout: child.stdout, stderr: child.stderr, children: pids.filter((pid) => pid !== child.pid) };
  }

  it('fails before running anything when the directory does not exist', () => {
    const out = path.join(tmp, 'no-such-dir', 'r.html');
    expect(report(out)).toEqual({
      code: 1,
      stdout: '',
      stderr: `heapscope: ENOENT: cannot write the report to ${out}: there is no directory ${path.dirname(out)}\n`,
      children: [],
    });
  });

  it('fails before running anything when the path goes through a file or names a directory', () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, '');
    expect(report(path.join(file, 'r.html'))).toMatchObject({ code: 1, stderr: `heapscope: ENOTDIR: cannot write the report to ${path.join(file, 'r.html')}: ${file} is not a directory\n`, children: [] });
    expect(report(tmp)).toMatchObject({ code: 1, stderr: `heapscope: EISDIR: cannot write the report to ${tmp}: it is a directory\n`, children: [] });
  });

  it.skipIf(process.getuid?.() === 0)('fails before running anything when the directory is not writable (skipped as root, who may write anywhere)', () => {
    const dir = path.join(tmp, 'read-only');
    fs.mkdirSync(dir, { mode: 0o555 });
    const out = path.join(dir, 'r.html');
    expect(report(out)).toMatchObject({ code: 1, stderr: `heapscope: EACCES: cannot write the report to ${out}: ${dir} is not writable\n`, children: [] });
  });
});

describe('progress', () => {
  // A 1 ms timeout stops each command at its first experiment, after the
  // moment its progress line would have been drawn.
  it.each(['tour', 'report'])('%s says nothing but its error on a stderr that is not a terminal', (command) => {
    const { code, stdout, stderr } = cli(command, ...(command === 'report' ? ['--out', 'quiet.html'] : ['--json']), '--timeout', '0.001');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^heapscope: ERR_EXPERIMENT_TIMEOUT: experiment layout did not finish within 1 ms: [^\r\n]*\n$/);
  });

  // The progress line is drawn with \r and erased by overwriting it with spaces.
  function progressLines(screen: string, command: string): string[] {
    return [...screen.matchAll(new RegExp(`\\r(heapscope ${command}: [^\\r\\n]*)(?=\\r)`, 'g'))].map((m) => m[1].trimEnd());
  }

  function expected(command: string): string[] {
    const names = experiments().map((e) => e.name);
    return names.map((name, i) => `heapscope ${command}: running ${name} (${i + 1} of ${names.length})`);
  }

  it.skipIf(SCRIPT === undefined)('tour shows which experiment is running, n of 9, and erases it before each story', () => {
    const { code, screen } = onTerminal(`${NODE} ${sh(CLI)} tour`);
    expect(code).toBe(0);
    expect(progressLines(screen, 'tour')).toEqual(expected('tour'));
    // Every story starts on a clean line: after the erasing spaces and \r
    // comes the story's heading (bold on a terminal).
    for (const e of experiments()) expect(screen).toMatch(new RegExp(`\\r {20,}\\r(\x1b\\[[0-9;]*m)*== ${e.name}: `));
  });

  it.skipIf(SCRIPT === undefined)('report shows its progress on stderr and erases it before saying what it wrote', () => {
    // stdout to a file: what reaches the terminal is stderr alone.
    const { code, screen } = onTerminal(`${NODE} ${sh(CLI)} report --out report.html > said.txt`);
    expect(code).toBe(0);
    expect(progressLines(screen, 'report')).toEqual(expected('report'));
    // Erased: the screen ends on spaces drawn over the last line.
    expect(screen).toMatch(/\r {20,}\r$/);
    expect(fs.readFileSync(path.join(tmp, 'said.txt'), 'utf8')).toBe('heapscope: wrote report.html\n');
    expect(fs.readFileSync(path.join(tmp, 'report.html'), 'utf8')).toContain('<title>heapscope report</title>');
  });

  it.skipIf(SCRIPT === undefined)('a failing tour erases its progress line before the error', () => {
    const { code, screen } = onTerminal(`${NODE} ${sh(CLI)} tour --json --timeout 0.001`);
    expect(code).toBe(1);
    expect(progressLines(screen, 'tour')).toEqual(expected('tour').slice(0, 1));
    expect(screen).toMatch(/\r {20,}\rheapscope: ERR_EXPERIMENT_TIMEOUT: experiment layout did not finish/);
  });
});
