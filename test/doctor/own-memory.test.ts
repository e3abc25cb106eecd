// The doctor finds glibc's mmapped chunks at the starts of map lines, and the
// kernel merges neighbouring anonymous mappings made with equal flags into
// one line. heapscope maps its own memory (copies, plan scratch, the copies'
// registry) with glibc's flags, so one mapped right below a chunk hid that
// chunk and every chunk above it in the line: doctor/reservation.test.ts
// found 0 of 4 about one run in ten. heapscope now marks its memory with a
// flag glibc never sets (VM_DONTDUMP, "dd" in smaps), which the kernel does
// not merge across. And what heapscope reads before a snapshot of this
// process must not be chunks of the heap that snapshot copies.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inQuietChild } from '../helpers/quiet-child';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { buildFixtures, NO_PYTHON, PYTHON } from '../helpers/target';

// The chunk and the copy are a quiet child's.
heapRoomNotNeeded();

type Line = { start: string; end: string; dd: boolean };

describe("heapscope's own memory never shares a map line with glibc's", () => {
  it('a 40 MiB copy of a 40 MiB mmapped chunk lies in a line marked dd; the chunk still starts a line, unmarked, and the doctor finds it', () => {
    // The copy is 12 KiB short of the chunk: a length of whole 2 MiB pages
    // the kernel would place 2 MiB-aligned, seldom right below the chunk.
    const out = inQuietChild<{ chunk: string; copied: number; lines: Line[]; found: string[] }>(`
      const fs = require('node:fs');
      const { kept, steps } = h.runPlan([{ op: 'malloc', size: 40 << 20 }], { keep: true });
      const copy = h.runPlan([{ op: 'read', address: steps[0].address, length: (40 << 20) - 12288 }]).steps[0].bytes;
      const lines = [];
      let line;
      for (const text of fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
        const range = /^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0\\s*$/.exec(text);
        if (range) lines.push(line = { start: BigInt('0x' + range[1]), end: BigInt('0x' + range[2]), dd: false });
        else if (/^[0-9a-f]+-/.test(text)) line = undefined;
        else if (line && text.startsWith('VmFlags:')) line.dd = text.split(/\\s+/).includes('dd');
      }
      const found = h.doctor().mmapped.chunks.map((c) => c.address);
      const result = { chunk: steps[0].address - 16n, copied: copy.length, lines, found };
      for (const a of kept.values()) a.free();
      return result;
    `);
    const chunk = BigInt(out.chunk);
    const lines = out.lines.map((l) => ({ start: BigInt(l.start), end: BigInt(l.end), dd: l.dd }));
    const holding = lines.find((l) => l.start <= chunk && chunk < l.end);
    expect(holding).toMatchObject({ start: chunk, dd: false });
    expect(out.copied).toBe((40 << 20) - 12288);
    expect(lines.some((l) => l.dd && l.end - l.start >= BigInt(out.copied))).toBe(true);
    expect(out.found).toContain(out.chunk);
  });
});

describe("the doctor's reads before its snapshot take nothing from malloc", () => {
  it("the mmapped chunks' headers are read into memory the addon mapped: malloc's in-use bytes stay the same across the reads", () => {
    // A Buffer for each 16-byte header took ~400 bytes of malloc's (the
    // block and the Buffer's own records), in use in the heap the snapshot
    // then copied: ~20 KB for 48 regions.
    const dist = path.join(__dirname, '..', '..', 'dist', 'doctor');
    const out = inQuietChild<{ grew: number[]; regions: number }>(`
      const { readBeforeSnapshot } = require(${JSON.stringify(path.join(dist, 'diagnose'))});
      const { openPagemap } = require(${JSON.stringify(path.join(dist, 'residency'))});
      const regions = h.maps();
      const layout = require(${JSON.stringify(path.join(dist, '..', 'allocator', 'layouts'))}).layoutFor(h.glibcVersion());
      const grew = [];
      for (let round = 0; round < 8; round++) {
        const pagemap = openPagemap('self', h.pageSize(), (e) => e);
        const before = h.mallinfo2().uordblks;
        readBeforeSnapshot(process.pid, layout, regions, h.pageSize(), pagemap);
        grew.push(h.mallinfo2().uordblks - before);
        pagemap.close();
      }
      return { grew: grew.slice(3), regions: regions.filter((r) => r.kind === 'anonymous' && r.perms === 'rw-p').length };
    `);
    expect(out.regions).toBeGreaterThan(20);
    // V8's own mallocs (its compilers, a collection's frees) move the figure by hundreds of bytes either way.
    const sorted = [...out.grew].sort((a, b) => a - b);
    expect(sorted[2]).toBeLessThan(4096);
  });
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-own-memory-'));
let shim = '';
let noCompiler: string | undefined;
beforeAll(() => {
  const built = buildFixtures(dir, ['large-mallocs'], { shared: true });
  shim = built.programs['large-mallocs'];
  noCompiler = built.noCompiler;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Debian's python3 holding 200,000 blocks of glibc's malloc (ctypes), ready once it prints. */
const PYTHON_HEAP = "import ctypes, os, sys; m = ctypes.CDLL('libc.so.6').malloc; m.restype = ctypes.c_void_p; " +
  "kept = [m(40) for _ in range(200000)]; os.write(1, b'ready\\n'); sys.stdin.read()";

interface Around {
  /** mp_.mmap_threshold before and after the call, each read after a full collection. */
  before: string;
  after: string;
  noDyn: number;
  /** Requests to malloc, calloc and realloc of 128 KiB or more during the call, and the largest (test/fixtures/large-mallocs.c). */
  large: number;
  largest: number;
}

/**
 * What `call` asked of malloc, and glibc's mmap threshold around it, in a
 * fresh quiet child (after `setup`) with large-mallocs.so preloaded and
 * without V8's JIT: its optimizing compiler's working memory, from malloc
 * and given back, moves the threshold in any node that compiles hot code
 * (in a quiet child with it, from 148 KiB to 500 KiB while heapscope did
 * nothing but read it). The threshold moves only where such a block was
 * mapped on its own, not where malloc served it from the top chunk or a
 * free chunk: the requests are counted whatever the heap held.
 */
function around(setup: string, call: string): Around {
  return inQuietChild(`
    require('node:v8').setFlagsFromString('--expose-gc');
    const gc = require('node:vm').runInNewContext('gc');
    const shim = require('koffi').load(${JSON.stringify(shim)});
    const watch = shim.func('void large_watch(int)');
    const read = () => { gc(); return h.mallocParams().values; };
    ${setup}
    const before = read();
    watch(1);
    ${call}
    watch(0);
    const after = read();
    return { before: String(before.mmapThreshold), after: String(after.mmapThreshold), noDyn: before.noDynThreshold,
      large: Number(shim.func('size_t large_count()')()), largest: Number(shim.func('size_t large_largest()')()) };
  `, { LD_PRELOAD: shim, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --jitless` });
}

// glibc maps a block at or above the threshold on its own, and freeing it
// raises the threshold to its size: each of heapscope's arrays from 128 KiB
// on that came from malloc moved the figure doctor() and mallocParams()
// report, whenever the heap had no free chunk to serve it. Each case failed
// before its fix.
describe("heapscope's own working memory takes nothing from malloc from 128 KiB on", () => {
  const keep = (n: number) => `for (let k = 0; k < ${n / 1000}; k++) for (const a of h.runPlan(Array.from({ length: 1000 }, () => ({ op: 'malloc', size: 40 })), { keep: true }).kept.values()) handles.push(a);`;
  it.for([
    // The addon's live set and the handles' table, grown past 128 KiB: from malloc, 20,000 live blocks left the threshold at 260 KiB.
    ['60,000 live handles', 'const handles = [];', keep(60000)],
    // Its words, 32 bytes a step: 316 KiB.
    ['a plan of 10,000 steps', '', "h.runPlan(Array.from({ length: 10000 }, (_, i) => (i < 5000 ? { op: 'malloc', size: 32 } : { op: 'free', step: i - 5000 })));"],
    // fs.readFileSync of /proc/self/smaps: 236 KiB in a node. 400 more map lines (pages mapped side by side, read-only and
    // read-write in turn, so that none merge) make this child's smaps as long.
    ['maps({ rss: true }) of a map of 400 more lines',
      "const mmap = require('koffi').load('libc.so.6').func('void *mmap(void *, size_t, int, int, int, intptr_t)'); for (let i = 0; i < 400; i++) mmap(null, 4096, i % 2 === 0 ? 1 : 3, 0x22, -1, 0);",
      "if (h.maps({ rss: true }).length < 400) throw new Error('the map has too few lines');"],
    ['doctor()', '', 'h.doctor();'],
    // Another process read: a header copy's blocks of chunk headers (3 MiB each) and its window (1 MiB), the libc file read
    // for its banner (1.9 MB) and the target's smaps. The target holds 200,000 blocks of its own malloc's, for several blocks.
    ['attach(pid): doctor(), walk(), heapSnapshot(), maps({ rss: true }) of another process',
      `const target = require('node:child_process').spawn(${JSON.stringify(PYTHON)}, ['-c', ${JSON.stringify(PYTHON_HEAP)}], { stdio: ['pipe', 'pipe', 'inherit'] });
       await new Promise((resolve) => target.stdout.once('data', resolve));`,
      'const t = h.attach(target.pid); t.doctor(); t.walk(); t.heapSnapshot(); t.maps({ rss: true }); target.kill();'],
    // A Buffer of the read's length from Node's allocator: 1 MiB left the threshold at 1 MiB + 4 KiB once collected.
    ['readMemory() and read() of 1 MiB of a block', "const block = h.malloc(4 << 20); block.fill(1);",
      'h.readMemory(block.address, 1 << 20); block.read(1 << 20, 1 << 20);'],
    ['heapSnapshot()', '', 'h.heapSnapshot();'],
    // The answer of an experiment's child, read from its pipe: joined by Buffer.concat, 266 KB for free's.
    ["run('free') in a child of its own", '', "await h.run('free');"],
    // 300,000 blocks of the program's own, so that the handles are few among the chunks: the walk looks each one up, and
    // took their addresses less 16 into a second array (160 KiB).
    ['a walk with 20,000 live handles among 300,000 chunks, its chunks read',
      "const cMalloc = require('koffi').load('libc.so.6').func('void *malloc(size_t)'); for (let i = 0; i < 300000; i++) cMalloc(24); const handles = []; " + keep(20000),
      'if (h.walkHeap({ attempts: 20 }).main.chunks.length < 300000) throw new Error("the walk met too few chunks");'],
  ] as const)('%s', ([, setup, call], { skip }) => {
    if (noCompiler !== undefined) skip(noCompiler);
    if (setup.includes(PYTHON) && NO_PYTHON !== undefined) skip(NO_PYTHON);
    const t = around(setup, call);
    expect({ large: t.large, largest: t.largest }).toEqual({ large: 0, largest: 0 });
    expect(t.noDyn).toBe(0);
    expect(t.after).toBe(t.before);
  });
});
