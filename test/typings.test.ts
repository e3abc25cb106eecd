// The package's published typings (dist/index.d.ts) as a TypeScript user
// meets them: `tsc --strict` in a project that imports 'heapscope' by name,
// over the README's code, the examples and the fixtures in
// test/fixtures/typings. Run after `tsc -p tsconfig.json` (npm test's pretest).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNC_CHILD } from './helpers/sync-child';
import { heapRoomNotNeeded } from './helpers/heap-room';

// The compiler runs in a child: no live heap of this process is read.
heapRoomNotNeeded();

const ROOT = path.resolve(__dirname, '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const FIXTURES = path.join(__dirname, 'fixtures', 'typings');

let work: string;

interface Diagnostic {
  file: string;
  line: number;
  code: string;
  message: string;
}

/** Runs tsc --strict over `files` (paths relative to the project) and returns its errors. */
function typecheck(name: string, files: string[]): Diagnostic[] {
  const config = path.join(work, `tsconfig.${name}.json`);
  fs.writeFileSync(config, JSON.stringify({
    compilerOptions: {
      strict: true,
      noEmit: true,
      allowJs: true,
      checkJs: true,
      target: 'ES2022',
      module: 'nodenext',
      moduleResolution: 'nodenext',
      lib: ['ES2022'],
      types: ['node'],
      skipLibCheck: false,
    },
    files,
  }));
  let output = '';
  try {
    execFileSync(process.execPath, [TSC, '-p', config, '--pretty', 'false'], { ...SYNC_CHILD, cwd: work, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    output = (error as { stdout: string }).stdout;
    if (output.trim() === '') throw error;
  }
  return [...output.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/gm)].map((m) => ({
    file: path.relative(work, path.resolve(work, m[1])), line: Number(m[2]), code: m[3], message: m[4],
  }));
}

interface Extracted {
  text: string;
  /** The README line each generated line came from (0: generated). */
  lines: number[];
}

/**
 * The README's JavaScript and TypeScript blocks. REPL transcripts (lines
 * starting with "> ") become one script run the way the REPL runs it:
 * CommonJS with top-level await, so wrapped in an async function; each
 * input ends its statement, output lines are dropped. Other blocks are
 * ES modules of their own.
 */
function readmeSources(): { file: string; source: Extracted }[] {
  const lines = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
  const repl: Extracted = { text: '(async () => {\n', lines: [0] };
  const modules: { file: string; source: Extracted }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(js|javascript|ts|typescript|mjs|cjs)\s*$/.exec(lines[i]);
    if (open === null) continue;
    const body: number[] = [];
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push(i);
    if (body.some((n) => lines[n].startsWith('> '))) {
      for (const n of body.filter((n) => lines[n].startsWith('> '))) {
        repl.text += `${lines[n].slice(2)};\n`;
        repl.lines.push(n + 1);
      }
    } else {
      const ext = open[1].startsWith('t') ? 'mts' : 'mjs';
      modules.push({
        file: `readme-${body[0] + 1}.${ext}`,
        source: { text: `${body.map((n) => lines[n]).join('\n')}\n`, lines: body.map((n) => n + 1) },
      });
    }
  }
  repl.text += '})();\n';
  repl.lines.push(0);
  return [{ file: 'readme-repl.cjs', source: repl }, ...modules];
}

let readme: { file: string; source: Extracted }[];
let examples: string[];
/** tsc's errors over the README's code, the examples and usage.mts, which must all compile. */
let compiled: Diagnostic[];
/** tsc's errors over errors.mts, which must not. */
let refused: Diagnostic[];
let errorsText: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-typings-'));
  // 'heapscope' resolves as an installed package would: through its
  // package.json's exports to dist/index.d.ts.
  fs.mkdirSync(path.join(work, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(work, 'node_modules', 'heapscope'));
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(work, 'node_modules', '@types'));
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'user', private: true, type: 'module' }));

  readme = readmeSources();
  for (const { file, source } of readme) fs.writeFileSync(path.join(work, file), source.text);
  examples = fs.readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.mjs'));
  for (const f of examples) fs.copyFileSync(path.join(ROOT, 'examples', f), path.join(work, f));
  fs.copyFileSync(path.join(FIXTURES, 'usage.mts'), path.join(work, 'usage.mts'));
  // The README's notebook cell runs in Deno's kernel: the little of Deno it uses.
  fs.copyFileSync(path.join(FIXTURES, 'deno.d.ts'), path.join(work, 'deno.d.ts'));
  errorsText = fs.readFileSync(path.join(FIXTURES, 'errors.mts'), 'utf8');
  fs.writeFileSync(path.join(work, 'errors.mts'), errorsText);

  // Two programs, so that the errors expected in one cannot hide others.
  compiled = typecheck('compiled', [...readme.map((r) => r.file), ...examples, 'usage.mts', 'deno.d.ts']);
  refused = typecheck('refused', ['errors.mts']);
}, 120_000);

afterAll(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
});

describe('the published typings', () => {
  it('type-check the README\'s code under --strict', () => {
    expect(readme[0].source.lines.length).toBeGreaterThan(10);
    const errors = compiled.filter((d) => readme.some((r) => r.file === d.file)).map((d) => {
      const source = readme.find((r) => r.file === d.file)!.source;
      return `README.md:${source.lines[d.line - 1] || '?'}: ${d.code} ${d.message}`;
    });
    expect(errors).toEqual([]);
  });

  it('type-check every example under --strict', () => {
    expect(examples.length).toBeGreaterThan(5);
    const errors = compiled.filter((d) => examples.includes(d.file)).map((d) => `examples/${d.file}:${d.line}: ${d.code} ${d.message}`);
    expect(errors).toEqual([]);
  });

  it('give run() and experiment() the rows of the experiment named, and export the row types', () => {
    const errors = compiled.filter((d) => d.file === 'usage.mts').map((d) => `usage.mts:${d.line}: ${d.code} ${d.message}`);
    expect(errors).toEqual([]);
    // Nothing outside the files given failed (the typings themselves, under skipLibCheck: false).
    const known = new Set([...readme.map((r) => r.file), ...examples, 'usage.mts']);
    expect(compiled.filter((d) => !known.has(d.file))).toEqual([]);
  });

  it('refuse what must not compile: each line marked "// error TSnnnn" fails with that code, and nothing else', () => {
    const expected = errorsText.split('\n').flatMap((line, i) => {
      const m = /\/\/ error (TS\d+)/.exec(line);
      return m === null ? [] : [`errors.mts:${i + 1}: ${m[1]}`];
    });
    expect(expected.length).toBeGreaterThan(0);
    expect(refused.map((d) => `${d.file}:${d.line}: ${d.code}`)).toEqual(expected);
    // A misspelt name is refused for being none of the experiments' names, which the message lists.
    expect(refused[0].message).toContain('"chunk-sizess"');
    expect(refused[0].message).toContain('"chunk-sizes"');
  });
});
