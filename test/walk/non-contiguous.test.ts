// A process whose break cannot grow, made on purpose: the fixture maps a page
// right above the break before anything else runs, as V8's code range
// sometimes lands by itself (lib/break-room.ts). glibc then grows main_arena
// with mmap; the walk and the experiments must say so, from what they read.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shortBytes } from '../../lib/format';
import { quietCli } from '../helpers/quiet-child';
import { SYNC_CHILD } from '../helpers/sync-child';

const root = path.join(__dirname, '..', '..');
const fixture = path.join(__dirname, '..', 'fixtures', 'block-break.cjs');

interface Seen {
  blockedAt: string;
  walk: {
    complete: boolean; reason?: string; start: string; end: string; firstChunk: string; sizes: number[]; places: string[]; keepcost: number;
    mainTop?: { start: string; end: string; places: string[]; sizes: number[]; complete: boolean };
    checks: { field: string; equal: boolean; difference: number }[]; problems: string[];
  };
  arena: { noncontiguous: boolean; top: string; topSize: string; keepcost: number; consistent: boolean };
  heapStart: string;
  threshold: string[];
  free: string[];
  doctor: {
    consistent: boolean;
    arenas: { kind: string; systemMem: number; top: number; outsideHeap?: { bytes: number; top?: string } }[];
    mallinfoArena: number; findings: string[]; markdown: string; heapLines: string[]; v8Physical: number; rows: { kind: string; rss: number }[];
  };
}

function blockedChild(): Seen {
  const script = `
    const h = require(${JSON.stringify(root)});
    const { blockedAt } = require(${JSON.stringify(fixture)});
    (async () => {
      // Enough to need more than the top held when the page was mapped.
      const kept = [];
      for (let i = 0; i < 2000; i++) kept.push(h.malloc(1000));
      // A retake chases main_arena's top, which the decode's own mallocs move: glibc mmaps a new piece
      // whenever the top runs out. Of 80 such children, one in four needed 3 or 4 copies, none more.
      const w = h.walkHeap({ attempts: 20 });
      const s = h.allocatorSnapshot({ attempts: 20 });
      const main = h.arenas(s).arenas.find((a) => a.kind === 'main');
      // As many copies as the walk's: of 40 such children, the doctor's snapshot took 2 copies in 29, 3 in 9 and 4 in 2.
      const d = h.doctor({ attempts: 20 });
      const doctor = { consistent: d.snapshot.consistent, arenas: d.arenas, mallinfoArena: d.mallinfo.arena, findings: d.findings, markdown: d.toMarkdown(), v8Physical: d.v8.physical, rows: d.rss.rows,
        heapLines: require('node:fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.endsWith(' [heap]')) };
      const threshold = await h.run('mmap-threshold', { isolated: false });
      const free = await h.run('free', { isolated: false });
      process.stdout.write(JSON.stringify({
        blockedAt,
        walk: { complete: w.main.complete, reason: w.main.reason, start: w.main.start, end: w.main.end, firstChunk: w.main.firstChunk,
          sizes: w.main.chunks.map((c) => c.size), places: w.main.chunks.map((c) => c.place), keepcost: w.mallinfo.keepcost,
          mainTop: w.mainTop && { start: w.mainTop.start, end: w.mainTop.end, places: w.mainTop.chunks.map((c) => c.place),
            sizes: w.mainTop.chunks.map((c) => c.size), complete: w.mainTop.complete },
          checks: w.checks, problems: w.problems },
        arena: { noncontiguous: main.noncontiguous, top: main.top.address, topSize: main.top.size, keepcost: s.mallinfo.keepcost, consistent: s.consistent },
        heapStart: h.maps().find((r) => r.kind === 'heap').start,
        threshold: threshold.surprises,
        free: free.findings,
        doctor,
      }, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
    })();`;
  const child = spawnSync(process.execPath, ['--single-threaded', '--v8-pool-size=0', '-e', script], {
    ...SYNC_CHILD,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: `--require ${fixture}` },
  });
  expect(child.stderr).toBe('');
  return JSON.parse(child.stdout) as Seen;
}

describe('main_arena when brk() fails', () => {
  const seen = blockedChild();
  const blocked = /^brk\(\) could not grow the heap \(the program break 0x[0-9a-f]+ can grow only 0 B, up to an anonymous mapping at 0x[0-9a-f]+–0x[0-9a-f]+ \([-r][-w][-x][ps]\)\), so main_arena is non-contiguous \(its NONCONTIGUOUS_BIT is set\)/;

  it('is non-contiguous, and its top chunk lies outside [heap]', () => {
    expect(seen.arena.noncontiguous).toBe(true);
    const top = BigInt(seen.arena.top);
    expect(top < BigInt(seen.heapStart) || top >= BigInt(seen.walk.end)).toBe(true);
    // From one snapshot, which copied the region holding the top: its size is mallinfo2's keepcost.
    expect(seen.arena.consistent).toBe(true);
    expect(Number(seen.arena.topSize)).toBe(seen.arena.keepcost);
  });

  it('walks [heap] exactly to the double fencepost at the break and says where the rest is', () => {
    const { walk } = seen;
    expect(BigInt(walk.end)).toBe(BigInt(seen.blockedAt));
    const tiled = walk.sizes.reduce((a, b) => a + b, 0);
    expect(BigInt(walk.firstChunk) + BigInt(tiled)).toBe(BigInt(walk.end));
    expect(walk.sizes.slice(-2)).toEqual([16, 16]);
    expect(walk.places.slice(-2)).toEqual(['fencepost', 'fencepost']);
    expect(walk.places).not.toContain('top');
    expect(walk.complete).toBe(false);
    expect(walk.reason).toMatch(new RegExp(
      `^\\[heap\\] ends at the break in glibc's double fencepost \\(0x${(BigInt(walk.end) - 32n).toString(16)}\\): brk\\(\\) failed once and main_arena went non-contiguous, ` +
        `so its top chunk \\(${walk.keepcost} bytes, mallinfo2's keepcost\\) at 0x${BigInt(walk.mainTop!.start).toString(16)} lies in memory glibc took with mmap \\(walked as main_arena's top region\\)`,
    ));
  });

  it("walks main_arena's top where the snapshot copied it: one top chunk of keepcost's size, outside [heap]", () => {
    const { mainTop, keepcost } = seen.walk;
    expect(mainTop).toBeDefined();
    const top = BigInt(mainTop!.start);
    expect(top < BigInt(seen.heapStart) || top >= BigInt(seen.walk.end)).toBe(true);
    expect(mainTop).toMatchObject({ places: ['top'], sizes: [keepcost], complete: true });
    expect(BigInt(mainTop!.end) - BigInt(mainTop!.start)).toBe(BigInt(keepcost));
    // keepcost is the top's alone; what the walk cannot see (chunks glibc carved from that mapping
    // before the top) differs only where the lists lead into it, and the walk says so.
    expect(seen.walk.checks.find((c) => c.field === 'keepcost')).toMatchObject({ equal: true, difference: 0 });
    if (seen.walk.checks.some((c) => !c.equal)) {
      expect(seen.walk.problems.some((p) => / lie in main_arena's memory outside \[heap\] \(it is non-contiguous\)| is outside the copied memory$/.test(p))).toBe(true);
    }
  });

  it("has doctor say how much of main_arena's memory lies outside [heap], which its resident-memory table cannot tell from other anonymous memory", () => {
    const { doctor } = seen;
    expect(doctor.consistent).toBe(true);
    // The break cannot move: [heap] is the same line now as at the snapshot.
    expect(doctor.heapLines).toHaveLength(1);
    const [from, to] = doctor.heapLines[0].split(' ')[0].split('-').map((x) => BigInt(`0x${x}`));
    const heapSize = Number(to - from);
    // Each arena's system_mem from the decode adds up to glibc's own mallinfo2().arena of the snapshot's native call.
    expect(doctor.arenas.reduce((n, a) => n + a.systemMem, 0)).toBe(doctor.mallinfoArena);
    const main = doctor.arenas.find((a) => a.kind === 'main')!;
    expect(doctor.arenas.filter((a) => a.outsideHeap !== undefined)).toEqual([main]);
    expect(main.outsideHeap!.bytes).toBe(main.systemMem - heapSize);
    expect(main.outsideHeap!.bytes).toBeGreaterThan(0);
    const top = BigInt(main.outsideHeap!.top!);
    expect(top < from || top >= to).toBe(true);
    expect(doctor.findings[0]).toMatch(/ of it is \[heap\] and the thread arenas' heaps and /);
    expect(doctor.findings[1]).toBe(`main_arena is not contiguous (its NONCONTIGUOUS_BIT is set: sbrk failed and glibc took memory with mmap): it holds ${shortBytes(main.systemMem)} ` +
      `from the system (system_mem) and [heap] is ${shortBytes(heapSize)}, so at least ${shortBytes(main.systemMem - heapSize)} of it, its top chunk (${shortBytes(main.top)} at 0x${top.toString(16)}) among them, ` +
      'lies in anonymous memory that glibc lists nowhere: the resident-memory table counts that with other anonymous memory, not with the arenas.');
    // V8's estimate and the table's other anonymous memory side by side (in a fresh node V8's was the larger).
    const other = doctor.rows.find((r) => r.kind === 'other-anonymous')!.rss;
    expect(doctor.findings).toContain(`V8 counts ${shortBytes(doctor.v8Physical)} of its heap spaces as physical memory (v8.getHeapSpaceStatistics(), ` +
      `physical_space_size: its own estimate, not the kernel's count); V8 maps its heap outside malloc's arenas, and the table's other anonymous memory, ` +
      `where such mappings count, holds ${shortBytes(other)} resident in all.`);
    expect(doctor.markdown).toContain(`main_arena's rss counts [heap] only: at least ${shortBytes(main.systemMem - heapSize)} of its memory lies outside it (see the findings).`);
  });

  it('mmap-threshold says no probe grew the break, and why', () => {
    const said = seen.threshold.filter((s) => s.startsWith('No probe grew the break: '));
    expect(said).toHaveLength(1);
    expect(said[0].slice('No probe grew the break: '.length)).toMatch(blocked);
    expect(seen.threshold).not.toContain('No probe reached the kernel, so this run could not locate the threshold it started with.');
  });

  it('free says the break never came down, and why', () => {
    const said = seen.free.find((f) => f.startsWith('The break never moved down while they were freed'));
    expect(said).toBeDefined();
    expect(said!.split(': ').slice(2).join(': ')).toMatch(blocked);
  });
});

describe('a quiet child whose break cannot grow', () => {
  it('is refused before its command runs: a heapscope command line that measures its own heap runs in one that can grow', () => {
    // Such a child's walk ends [heap] at a fencepost and cannot see what glibc carved from mmap'd memory,
    // so its checks need not agree with mallinfo2(): test/walk/views.test.ts and cli-walk.test.ts expect them to.
    expect(() => quietCli(['walk', '--html'], { ...process.env, NODE_OPTIONS: `--require ${fixture}` }))
      .toThrow(/^5 quiet children in a row had a break that could not grow 256 MiB \(room: 0, 0, 0, 0, 0 bytes\)$/);
  });
});
