// The import graph of lib/: every import, export-from and require of a
// relative path in lib/**/*.ts, type-only imports included (a layer that
// names another's types depends on it). Also a command: prints the cycles
// and layer violations it finds.
import fs from 'node:fs';
import path from 'node:path';

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?['"]([^'"]+)['"]|\brequire\(\s*['"]([^'"]+)['"]\s*\)|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function files(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const full = path.join(dir, d.name);
    return d.isDirectory() ? files(full) : d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [full] : [];
  });
}

function withoutComments(source) {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts'), base]) {
    if (candidate.endsWith('.ts') && fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`${from}: cannot resolve ${spec}`);
}

/** Edges as [from, to], paths relative to root with forward slashes (lib/views/html.ts). */
export function importGraph(root) {
  const rel = (p) => path.relative(root, p).split(path.sep).join('/');
  const edges = [];
  for (const file of files(path.join(root, 'lib'))) {
    const source = withoutComments(fs.readFileSync(file, 'utf8'));
    for (const m of source.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec.startsWith('.')) continue;
      edges.push([rel(file), rel(resolve(file, spec))]);
    }
  }
  const seen = new Set();
  return edges.filter(([a, b]) => !seen.has(`${a} ${b}`) && seen.add(`${a} ${b}`));
}

/** Files in import cycles, as strongly connected components of two or more files (or a file importing itself). */
export function cycles(edges) {
  const next = new Map();
  for (const [a, b] of edges) {
    if (!next.has(a)) next.set(a, []);
    if (!next.has(b)) next.set(b, []);
    next.get(a).push(b);
  }
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || next.get(v).includes(v)) out.push(component.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/**
 * The layers, lowest first: records (the binding and the typed data read
 * through it), experiments, views, entry points. A file may import its own
 * layer and the ones below it.
 */
export const ENTRY_POINTS = ['lib/index.ts', 'lib/main.ts', 'lib/cli.ts', 'lib/cli-common.ts', 'lib/cli-run.ts', 'lib/cli-snapshot.ts', 'lib/cli-views.ts', 'lib/command-line.ts', 'lib/present.ts', 'lib/progress.ts', 'lib/report.ts'];
const RANK = { records: 0, experiments: 1, views: 2, entry: 3 };

export function layerOf(file) {
  if (ENTRY_POINTS.includes(file)) return 'entry';
  if (file.startsWith('lib/views/')) return 'views';
  if (file.startsWith('lib/experiments/')) return 'experiments';
  return 'records';
}

/** Edges that point up the layers, plus every view → experiment edge. */
export function layerViolations(edges) {
  return edges.filter(([a, b]) => RANK[layerOf(b)] > RANK[layerOf(a)] || (layerOf(a) === 'views' && layerOf(b) === 'experiments'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const edges = importGraph(root);
  for (const c of cycles(edges)) console.log(`cycle: ${c.join(' ')}`);
  for (const [a, b] of layerViolations(edges)) console.log(`layer: ${a} -> ${b}`);
}
