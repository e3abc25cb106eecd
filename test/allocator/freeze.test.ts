// A plan's freeze: the steps up to its thaw read a child forked for them,
// this process as it was at the freeze, while its other threads go on. A
// worker that mallocs, frees and writes without pause is the other thread.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mallocParams, runPlan } from '../../lib/index';
import { inQuietChild } from '../helpers/quiet-child';
import { buildFixtures } from '../helpers/target';
import { HERE, NO_FASTBINS } from '../helpers/glibc-here';

const ROOT = path.join(__dirname, '..', '..');

// A worker that, until told to stop, mallocs and frees in its own arena and
// writes a rising count into a block of its own, whose address it posts first.
const WORKER = `
  const { parentPort, workerData: shared } = require('node:worker_threads');
  const h = require(${JSON.stringify(ROOT)});
  const block = h.malloc(64);
  parentPort.postMessage(block.address);
  const count = Buffer.alloc(8);
  for (let i = 1; Atomics.load(shared, 0) === 0; i++) {
    h.runPlan([{ op: 'malloc', size: 100 + (i % 50) * 16 }, { op: 'malloc', size: 3000 }, { op: 'free', step: 0 }]);
    count.writeBigUInt64LE(BigInt(i));
    block.write(0, count);
    Atomics.store(shared, 1, i);
  }
  block.free();
`;

// In the child: the worker started and going, with the break's room still
// there (a worker starting can map memory right at it, and a non-contiguous
// main_arena has chunks no walk reaches); `progress()` is its count as the
// main thread sees it, `stop()` ends it.
const BUSY_WORKER = `
  const { Worker } = require('node:worker_threads');
  const shared = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(${JSON.stringify(WORKER)}, { eval: true, workerData: shared });
  const block = await new Promise((resolve) => worker.once('message', resolve));
  const started = Date.now();
  while (Atomics.load(shared, 1) < 100) {
    if (Date.now() - started > 60000) throw new Error('the worker did not get going within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  needBreakRoom();
  const progress = () => Atomics.load(shared, 1);
  const stop = async () => { Atomics.store(shared, 0, 1); await new Promise((resolve) => worker.once('exit', resolve)); };
`;

// Worker source: `waiting()` lists the pids of this process's children that
// wait on their release socket (a frozen child that has measured, whose
// reads run). No backslash: this source sits in two template literals.
const WAITING_CHILDREN = `
  const fs = require('node:fs');
  const tasks = fs.readdirSync('/proc/self/task');
  const waiting = () => tasks.flatMap((t) => {
    let children = '';
    try { children = fs.readFileSync('/proc/self/task/' + t + '/children', 'utf8').trim(); } catch {}
    return children.split(' ').filter(Boolean).filter((pid) => {
      try { return fs.readFileSync('/proc/' + pid + '/wchan', 'utf8').includes('unix_stream_read'); } catch { return false; }
    });
  });
`;

describe('a frozen copy', () => {
  it('reads the same bytes and mallinfo2() from the freeze to the thaw, while another thread goes on changing both', () => {
    const seen = inQuietChild<{
      frozen: { same: boolean; mallinfoSame: boolean; moved: number; pid: number; reaped: boolean }[]; live: { same: boolean; mallinfoSame: boolean }[];
    }>(`${BUSY_WORKER}
      const read = { op: 'read', address: block, length: 8 };
      // Enough reading between two looks for the worker to go round many times.
      const filler = Array.from({ length: 5000 }, () => ({ op: 'read', address: block, length: 8 }));
      const look = (frozen) => {
        const before = progress();
        const plan = [...(frozen ? [{ op: 'freeze' }] : []), { op: 'mallinfo' }, read, ...filler, read, { op: 'mallinfo' }, ...(frozen ? [{ op: 'thaw' }] : [])];
        const s = runPlanOf(plan);
        const at = frozen ? 1 : 0;
        const last = plan.length - (frozen ? 2 : 1);
        return {
          same: s[at + 1].bytes.equals(s[last - 1].bytes),
          mallinfoSame: JSON.stringify(s[at].mallinfo) === JSON.stringify(s[last].mallinfo),
          moved: progress() - before,
          ...(frozen ? { pid: s[0].pid, reaped: !require('node:fs').existsSync('/proc/' + s[0].pid) } : {}),
        };
      };
      const runPlanOf = (plan) => h.runPlan(plan).steps;
      const frozen = Array.from({ length: 8 }, () => look(true));
      const live = Array.from({ length: 8 }, () => look(false));
      await stop();
      return { frozen, live };`);
    for (const f of seen.frozen) {
      expect(f.same).toBe(true);
      expect(f.mallinfoSame).toBe(true);
      expect(f.pid).toBeGreaterThan(0);
      expect(f.reaped).toBe(true);
    }
    // The worker went on meanwhile, and read live the same steps see it move: the freeze is what held them still.
    expect(seen.frozen.some((f) => f.moved > 0)).toBe(true);
    expect(seen.live.some((l) => !l.same || !l.mallinfoSame)).toBe(true);
  });

  it("makes walkHeap()'s snapshot one instant's: consistent, every mallinfo2() field equal to the walk's, while a worker mallocs", () => {
    const seen = inQuietChild<{ walks: { frozen: boolean; consistent: boolean; inconsistency?: string; unequal: string[]; problems: string[]; attempts: number }[] }>(`${BUSY_WORKER}
      const walks = [];
      for (let i = 0; i < 5; i++) {
        const s = h.allocatorSnapshot();
        const w = h.walkHeap();
        walks.push({ frozen: s.frozen, consistent: w.consistent, inconsistency: w.inconsistency, unequal: w.checks.filter((c) => !c.equal).map((c) => c.field), problems: w.problems, attempts: w.attempts });
      }
      await stop();
      return { walks };`);
    for (const w of seen.walks) {
      expect(w.frozen).toBe(true);
      expect(w.consistent, w.inconsistency).toBe(true);
      expect(w.unequal, w.problems.join('; ')).toEqual([]);
    }
  });

  it("holds none of this process's descriptors but its own two ends (the pipe it answers on, the socket it is released through), and signals none of its handlers", () => {
    // A worker lists the frozen child's descriptors while the main thread's plan holds it.
    const seen = inQuietChild<{ fds: string[]; found: boolean }>(`
      const { Worker } = require('node:worker_threads');
      const fs = require('node:fs');
      const opened = [fs.openSync(__filename === '[eval]' ? '/proc/self/status' : __filename, 'r'), fs.openSync('/dev/null', 'w')];
      const shared = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(\`${WAITING_CHILDREN}
        const { workerData: shared, parentPort } = require('node:worker_threads');
        let fds = null;
        while (fds === null && Atomics.load(shared, 0) === 0) {
          // Once it waits on its release socket, the child has closed what it closes.
          for (const pid of waiting()) {
            try {
              const status = fs.readFileSync('/proc/' + pid + '/status', 'utf8').split(String.fromCharCode(10));
              const blocked = BigInt('0x' + status.find((line) => line.startsWith('SigBlk:')).slice('SigBlk:'.length).trim());
              const listed = fs.readdirSync('/proc/' + pid + '/fd').map((fd) => fd + ' ' + fs.readlinkSync('/proc/' + pid + '/fd/' + fd));
              // Still waiting after the listing: it was of the live child, not of one released and ending (a zombie lists none).
              if (!fs.readFileSync('/proc/' + pid + '/wchan', 'utf8').includes('unix_stream_read')) continue;
              fds = listed;
              fds.push(...[2, 10, 15, 17].filter((sig) => (blocked & (1n << BigInt(sig - 1))) === 0n).map((sig) => 'signal ' + sig + ' not blocked'));
            } catch {}
          }
        }
        parentPort.postMessage(fds);
      \`, { eval: true, workerData: shared });
      await new Promise((resolve) => worker.once('online', resolve));
      // Enough steps that the worker finds the child frozen: a runPlan of these took 28–30 ms here; of 20,000, 4 ms, and now
      // and then the worker missed the child in all 50 tries.
      const reads = Array.from({ length: 200000 }, () => ({ op: 'break' }));
      let fds = null;
      const got = new Promise((resolve) => worker.once('message', resolve));
      for (let i = 0; i < 50 && fds === null; i++) {
        h.runPlan([{ op: 'freeze' }, ...reads, { op: 'thaw' }]);
        await new Promise((resolve) => setTimeout(resolve, 5));
        fds = await Promise.race([got, new Promise((resolve) => setTimeout(() => resolve(null), 1))]);
      }
      Atomics.store(shared, 0, 1);
      opened.forEach((fd) => fs.closeSync(fd));
      return { fds: fds ?? [], found: fds !== null };`);
    expect(seen.found).toBe(true);
    // A pipe's end and a socket's, and SIGINT, SIGUSR1, SIGTERM and SIGCHLD blocked (nothing else listed).
    expect(seen.fds).toHaveLength(2);
    expect(seen.fds.map((fd) => fd.replace(/^\d+ (\w+):\[\d+\]$/, '$1')).sort()).toEqual(['pipe', 'socket']);
  });

  it("reads the child's pages without taking a copy of each: a 64 MiB block read from it stays shared with this process to the thaw", () => {
    // process_vm_readv pins what it reads, and the kernel first gives the
    // child a page of its own for every page it still shares with this
    // process: a third copy of the heap until the thaw. /proc/PID/mem does
    // not. A worker watches the frozen child's smaps_rollup while the main
    // thread's plan reads the block and then holds the freeze with small
    // reads: a page the child was given of its own no longer counts as
    // shared (it came out as Private_Clean, not Private_Dirty, where seen).
    const seen = inQuietChild<{ samples: number; minShared: number; same: boolean }>(`
      const { Worker } = require('node:worker_threads');
      const block = h.malloc(64 << 20);
      block.fill(0x5a);
      const shared = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(\`${WAITING_CHILDREN}
        const { workerData: shared, parentPort } = require('node:worker_threads');
        const kB = (text, field) => Number(text.split(field + ':')[1].trim().split(' ')[0]) * 1024;
        let samples = 0, minShared = Infinity;
        while (Atomics.load(shared, 0) === 0) {
          for (const pid of waiting()) {
            try {
              const rollup = fs.readFileSync('/proc/' + pid + '/smaps_rollup', 'utf8');
              samples++;
              minShared = Math.min(minShared, kB(rollup, 'Shared_Dirty'));
            } catch {}
          }
        }
        parentPort.postMessage({ samples, minShared });
      \`, { eval: true, workerData: shared });
      await new Promise((resolve) => worker.once('online', resolve));
      needBreakRoom();
      const whole = { op: 'read', address: block.address, length: 64 << 20, anonymous: true };
      const hold = Array.from({ length: 20000 }, () => ({ op: 'read', address: block.address, length: 8, anonymous: true }));
      const got = new Promise((resolve) => worker.once('message', resolve));
      const steps = h.runPlan([{ op: 'freeze' }, whole, ...hold, { op: 'thaw' }]).steps;
      const same = steps[1].status === 'ok' && steps[1].bytes.every((b) => b === 0x5a);
      Atomics.store(shared, 0, 1);
      const seen = await got;
      block.free();
      return { ...seen, same };`);
    expect(seen.same).toBe(true);
    // Most samples fall after the whole read (~20 ms of a freeze held ~150 ms more); read through
    // process_vm_readv, the child's shared memory fell from 74 MiB to 10 after it.
    expect(seen.samples).toBeGreaterThanOrEqual(10);
    expect(seen.minShared).toBeGreaterThanOrEqual(64 * 2 ** 20);
  });

  it("gives each arena its attached_threads and next_free as this process has them, which glibc's fork rewrites in the child", () => {
    // A worker mallocs in an arena of its own, then blocks: one thread attached to it, none to main_arena but this one.
    const seen = inQuietChild<{ frozen: boolean; threads: Record<string, string>; workerArena: string }>(`
      const { Worker } = require('node:worker_threads');
      const gate = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(${JSON.stringify(`
        const { parentPort, workerData: gate } = require('node:worker_threads');
        const h = require(${JSON.stringify(ROOT)});
        const a = h.malloc(300);
        parentPort.postMessage(a.address);
        Atomics.wait(gate, 0, 0);
        a.free();
      `)}, { eval: true, workerData: gate });
      const block = await new Promise((resolve) => worker.once('message', resolve));
      const snapshot = h.allocatorSnapshot();
      const { arenas } = h.arenas(snapshot);
      const mine = arenas.find((a) => a.kind === 'thread' && a.memory.some((m) => m.start <= block && block < m.end));
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await new Promise((resolve) => worker.once('exit', resolve));
      return { frozen: snapshot.frozen, threads: Object.fromEntries(arenas.map((a) => [a.kind + ' ' + a.address, String(a.attachedThreads)])), workerArena: mine === undefined ? 'none' : 'thread ' + mine.address };`);
    expect(seen.frozen).toBe(true);
    expect(seen.workerArena).not.toBe('none');
    // In the child glibc counts only the forking thread (this one, in main_arena), and 0 for the worker's arena.
    expect(seen.threads[seen.workerArena]).toBe('1');
    expect(Object.entries(seen.threads).find(([k]) => k.startsWith('main'))?.[1]).toBe('1');
  });

  it("copies a thread arena's heap whole though it grows between each map's read and the freeze", () => {
    // With no top pad, the worker's heap is made writable a page or so at a
    // time, a malloc every millisecond: the map read before each copy shows
    // a heap that has grown by the freeze (the plan's 20,000 steps before it
    // take a few milliseconds), in the retakes too. A retake after that
    // gives the thread heaps room in their reservations.
    const seen = inQuietChild<{ copies: { consistent: boolean; reason?: string; attempts: number }[]; mallocs: number }>(`
      const { Worker } = require('node:worker_threads');
      const shared = new Int32Array(new SharedArrayBuffer(8));
      const worker = new Worker(${JSON.stringify(`
        const { parentPort, workerData: shared } = require('node:worker_threads');
        const h = require(${JSON.stringify(ROOT)});
        const kept = [];
        const pause = new Int32Array(new SharedArrayBuffer(4));
        parentPort.postMessage(0);
        while (Atomics.load(shared, 0) === 0) {
          kept.push(h.malloc(4000));
          Atomics.store(shared, 1, kept.length);
          Atomics.wait(pause, 0, 0, 1);
        }
        for (const a of kept) a.free();
      `)}, { eval: true, workerData: shared });
      await new Promise((resolve) => worker.once('message', resolve));
      while (Atomics.load(shared, 1) < 5) await new Promise((resolve) => setTimeout(resolve, 1));
      needBreakRoom();
      const before = Array.from({ length: 20000 }, () => ({ op: 'break' }));
      const copies = [];
      for (let i = 0; i < 6; i++) {
        const s = h.allocatorSnapshot({ before });
        copies.push({ consistent: s.consistent, reason: s.reason, attempts: s.attempts });
      }
      const mallocs = Atomics.load(shared, 1);
      Atomics.store(shared, 0, 1);
      await new Promise((resolve) => worker.once('exit', resolve));
      return { copies, mallocs };`, { GLIBC_TUNABLES: 'glibc.malloc.top_pad=0' });
    expect(seen.mallocs).toBeGreaterThan(20);
    for (const c of seen.copies) expect(c.consistent, `${c.reason} (${c.attempts} attempts)`).toBe(true);
  });

  it('decodes main_arena as this process has it, in the arena list and where it was located, when a worker shares it', () => {
    // One arena for every thread: the worker attaches to main_arena, which the
    // child of the freeze counts as attached to the forking thread alone.
    const seen = inQuietChild<{ frozen: boolean; arenas: number; listed: string; located: string }>(`
      const { Worker } = require('node:worker_threads');
      const { decodeAllocator } = require(${JSON.stringify(path.join(ROOT, 'dist', 'allocator', 'state'))});
      const gate = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(${JSON.stringify(`
        const { parentPort, workerData: gate } = require('node:worker_threads');
        const h = require(${JSON.stringify(ROOT)});
        const a = h.malloc(300);
        parentPort.postMessage(0);
        Atomics.wait(gate, 0, 0);
        a.free();
      `)}, { eval: true, workerData: gate });
      await new Promise((resolve) => worker.once('message', resolve));
      const snapshot = h.allocatorSnapshot();
      const state = decodeAllocator(snapshot.image);
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await new Promise((resolve) => worker.once('exit', resolve));
      return { frozen: snapshot.frozen, arenas: state.arenas.arenas.length, listed: String(state.arenas.arenas[0].attachedThreads),
        located: String(state.globals.mainArena.value.attachedThreads) };`, { GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' });
    expect(seen.frozen).toBe(true);
    expect(seen.arenas).toBe(1);
    expect(Number(seen.listed)).toBeGreaterThan(1);
    expect(seen.located).toBe(seen.listed);
  });

  it('refuses any step but read, mallinfo and break between a freeze and its thaw, and a thaw without a freeze', () => {
    const refused = (plan: Parameters<typeof runPlan>[0]) => {
      try {
        runPlan(plan);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    expect(refused([{ op: 'freeze' }, { op: 'malloc', size: 8 }])).toMatchObject({ code: 'ERR_INVALID_PLAN', message: 'step 1: only read, mallinfo and break steps run between a freeze and its thaw, not malloc' });
    expect(refused([{ op: 'thaw' }])).toMatchObject({ code: 'ERR_INVALID_PLAN', message: 'step 0: a thaw without a freeze' });
    expect(refused([{ op: 'freeze' }, { op: 'freeze' }])).toMatchObject({ code: 'ERR_INVALID_PLAN' });
    for (const maxFast of [161, -1, 1.5]) expect(refused([{ op: 'freeze', maxFast }]), String(maxFast)).toMatchObject({ name: 'RangeError' });
    for (const maxFast of ['64', null]) expect(refused([{ op: 'freeze', maxFast } as never]), String(maxFast)).toMatchObject({ name: 'TypeError' });
    // A plan may end frozen: its child is reaped all the same.
    const [freeze] = runPlan([{ op: 'freeze' }, { op: 'break' }]).steps;
    expect(freeze.status).toBe('ok');
    expect(existsSync(`/proc/${freeze.pid}`)).toBe(false);
  });

  it("sets a fastbin limit in its child alone, read where gdb's test finds global_max_fast (test/allocator/gdb-state)", ({ skip }) => {
    if (NO_FASTBINS !== undefined) skip(`${NO_FASTBINS}, and no global_max_fast`);
    const { address, value } = mallocParams().globalMaxFast as { address: bigint; value: number };
    const read = { op: 'read' as const, address, length: 8 };
    const steps = runPlan([read, { op: 'freeze', maxFast: 32 }, read, { op: 'thaw' }, { op: 'freeze', maxFast: 40 }, read, { op: 'thaw' }, read]).steps;
    const word = (i: number) => Number(steps[i].bytes!.readBigUInt64LE(0));
    expect(steps[1].status).toBe('ok');
    // set_max_fast rounds (40 + SIZE_SZ) down to a multiple of 16.
    expect([word(0), word(2), word(5), word(7)]).toEqual([value, 32, 48, value]);
  });
});

// The child reads the break, says so, then measures mallinfo2(), which takes
// each arena's lock in turn and walks its free lists; the plan copies
// [heap] meanwhile, and waits for the measure before anything else.
describe("a frozen child's measure", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'heapscope-freeze-'));
  // Preloaded: a forked child's mallinfo2() ends it, or (HEAPSCOPE_TEST_STOP_CHILD) stops it.
  const shim = path.join(dir, 'measure-ends-child.so');
  beforeAll(() => {
    const { noCompiler } = buildFixtures(dir, ['measure-ends-child'], { shared: true });
    if (noCompiler !== undefined) throw new Error(noCompiler);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Many chunks in main_arena's fastbins: mallinfo2() takes a while over them.
  const FASTBIN_HEAP = `
    const blocks = h.runPlan(Array.from({ length: 400000 }, () => ({ op: 'malloc', size: 24 })), { keep: true }).kept;
    let i = 0;
    for (const b of blocks.values()) if (i++ % 2 === 0) b.free();
    const main = h.arenas(h.allocatorSnapshot()).arenas.find((a) => a.kind === 'main').address;
    const heap = h.maps().find((r) => r.kind === 'heap');
  `;

  it('writes nothing in [heap], and no read of an arena is made while the child holds its lock', () => {
    const seen = inQuietChild<{ same: boolean[]; mutexes: number[]; frozen: boolean[] }>(`${FASTBIN_HEAP}
      const same = [], mutexes = [], frozen = [];
      for (let k = 0; k < 10; k++) {
        const steps = h.runPlan([
          { op: 'freeze' },
          { op: 'read', address: heap.start, length: 1 << 20, toBreak: true },
          { op: 'read', address: main, length: 4 },
          { op: 'read', address: heap.start, length: 1 << 20, toBreak: true },
          { op: 'thaw' },
        ]).steps;
        frozen.push(steps[0].status === 'ok');
        same.push(steps[1].bytes.equals(steps[3].bytes));
        mutexes.push(steps[2].bytes.readInt32LE(0));
      }
      return { same, mutexes, frozen };`);
    expect(seen.frozen.every(Boolean)).toBe(true);
    // Read as the child began measuring and again after: the same bytes.
    expect(seen.same.every(Boolean)).toBe(true);
    // main_arena's mutex as the fork left it, never held by the measure.
    expect(seen.mutexes).toEqual(seen.mutexes.map(() => 0));
  });

  // Before it measures, the child reads a byte of each resident page of the
  // first read up to the break ([heap]) in order, so that mallinfo2()
  // follows its lists through pages already mapped; a page never touched
  // must stay so, in the child's pagemap this process reads.
  it("pages in only what was resident: a [heap] grown by 40 MiB nobody wrote reads as many untouched pages frozen as live", () => {
    const seen = inQuietChild<{ frozen: boolean; untouched: number[]; absentInBlock: number; heapPages: number }>(`
      // Every malloc from [heap], with no pad: the block grows [heap] by 40 MiB that nothing writes.
      h.mallopt('M_MMAP_MAX', 0);
      h.mallopt('M_TOP_PAD', 0);
      const block = h.malloc(40 << 20);
      const heap = h.maps().find((r) => r.kind === 'heap');
      const whole = { op: 'read', address: heap.start, length: 1 << 30, toBreak: true, anonymous: true };
      const inBlock = { op: 'pagemap', address: block.address, length: 40 << 20 };
      // Not up to the break: it waits for the child's measure, and so for its reads before it.
      const measured = { op: 'read', address: heap.start, length: Number(h.programBreak() - heap.start), anonymous: true };
      const steps = h.runPlan([inBlock, whole, { op: 'freeze' }, whole, measured, { op: 'thaw' }, whole]).steps;
      block.free();
      return {
        frozen: steps[2].status === 'ok',
        untouched: [1, 3, 4, 6].map((k) => steps[k].untouchedPages),
        absentInBlock: steps[0].totalPages - steps[0].residentPages,
        heapPages: steps[1].bytes.length / 4096,
      };`);
    expect(seen.frozen).toBe(true);
    // Most of the block is new room nobody wrote (it may start in free space [heap] had).
    expect(seen.absentInBlock).toBeGreaterThan(10000);
    expect(seen.untouched[0]).toBeGreaterThanOrEqual(seen.absentInBlock);
    expect(seen.untouched[0]).toBeLessThan(seen.heapPages);
    // Live, frozen while the child reads and measures, frozen once it has, live after the thaw: nothing touched the block between.
    expect(seen.untouched).toEqual(seen.untouched.map(() => seen.untouched[0]));
  });

  it('pages in no page it may not read: a resident page of [heap] made PROT_NONE leaves the freeze whole', () => {
    const seen = inQuietChild<{ freeze: string; mallinfo: string; read: string; readErrno?: number }>(`
      const koffi = require('koffi');
      const mprotect = koffi.load('libc.so.6').func('int mprotect(void *, size_t, int)');
      h.mallopt('M_MMAP_MAX', 0);
      const block = h.malloc(1 << 16);
      block.fill(0x5a);
      const page = (block.address + 4095n) & ~4095n;
      if (mprotect(page, 4096, 0) !== 0) throw new Error('mprotect refused');
      const heap = h.maps().find((r) => r.kind === 'heap');
      const steps = h.runPlan([
        { op: 'freeze' },
        { op: 'read', address: heap.start, length: 1 << 30, toBreak: true },
        { op: 'mallinfo' },
        { op: 'thaw' },
      ]).steps;
      mprotect(page, 4096, 3);
      block.free();
      return { freeze: steps[0].status, mallinfo: steps[2].status, read: steps[1].status, readErrno: steps[1].errno };`);
    // Read through that page, the child would have ended before it measured, and the freeze been undone.
    expect(seen.freeze).toBe('ok');
    expect(seen.mallinfo).toBe('ok');
    // The copy itself meets the page it may not read.
    expect(seen.read).toBe('failed');
    expect(seen.readErrno).toBe(14);
  });

  it("undoes the freeze when the child ends before it measured: the steps to the thaw read this process instead", () => {
    const seen = inQuietChild<{ steps: { status: string; errno?: number; fields: string[] }[]; children: number; snapshot: { frozen: boolean; unfrozen?: string } }>(`${FASTBIN_HEAP}
      const plan = [
        { op: 'freeze' }, { op: 'mallinfo' }, { op: 'break' },
        { op: 'read', address: heap.start, length: 4096, toBreak: true },
        { op: 'read', address: main, length: 16 },
        { op: 'mallinfo' }, { op: 'thaw' },
      ];
      const { steps } = h.runPlan(plan);
      const children = require('node:fs').readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8').trim().split(' ').filter(Boolean).length;
      const s = h.allocatorSnapshot();
      return {
        steps: steps.map((r) => ({ status: r.status, errno: r.errno, fields: Object.keys(r).filter((k) => r[k] !== undefined).sort() })),
        children, snapshot: { frozen: s.frozen, unfrozen: s.unfrozen },
      };`, { LD_PRELOAD: shim });
    // ECHILD: the child's end of the pipe closed before its second byte.
    expect(seen.steps[0]).toMatchObject({ status: 'failed', errno: 10 });
    for (const i of [1, 2, 3, 4, 5]) expect(seen.steps[i].status, String(i)).toBe('ok');
    expect(seen.steps[1].fields).toContain('mallinfo');
    expect(seen.steps[5].fields).toContain('mallinfo');
    expect(seen.steps[2].fields).toContain('programBreak');
    expect(seen.children).toBe(0);
    expect(seen.snapshot.frozen).toBe(false);
    expect(seen.snapshot.unfrozen).toMatch(/errno 10: .*ended before it measured/);
  });

  // The pieces are handed over with a byte each on the child's socket, which
  // the child reads only when it has no piece to take: a child stopped before
  // it measured (test/fixtures/measure-ends-child.c, told to stop it) never
  // does, and a socket full of them made the plan wait on it for good.
  it("costs the freeze, after the measure's 10 s, never the plan: a [heap] of 1,000 runs of present pages is read, and the steps run again live", () => {
    const seen = inQuietChild<{ statuses: string[]; errno?: number; untouched: number; same: boolean }>(`
      // 1,000 chunks of 64 KiB, each written on its first page alone (its header): as many runs of present pages.
      const blocks = h.runPlan(Array.from({ length: 1000 }, () => ({ op: 'malloc', size: 65536 - 16 })), { keep: true }).kept;
      const heap = h.maps().find((r) => r.kind === 'heap');
      const whole = { op: 'read', address: heap.start, length: Number(heap.end - heap.start) + (16 << 20), toBreak: true, anonymous: true };
      // Not up to the break: it waits for the child's measure.
      const one = { op: 'read', address: blocks.get(0).address, length: 8 };
      const steps = h.runPlan([{ op: 'freeze' }, whole, one, { op: 'thaw' }, whole]).steps;
      return {
        statuses: steps.map((s) => s.status), errno: steps[0].errno, untouched: steps[1].untouchedPages,
        same: steps[1].bytes.equals(steps[4].bytes),
      };
    `, { LD_PRELOAD: shim, HEAPSCOPE_TEST_STOP_CHILD: '1' });
    // ETIMEDOUT: the child never measured; the steps up to the thaw ran again reading this process.
    expect(seen.statuses).toEqual(['failed', 'ok', 'ok', 'ok', 'ok']);
    expect(seen.errno).toBe(110);
    expect(seen.untouched).toBeGreaterThan(1000 * 14);
    expect(seen.same).toBe(true);
  }, 60_000);
});

// A read's runs of present pages are pieces: the child, once it has
// measured, writes them into this process from the first on, and this
// process copies them from the last down (native/freeze.cc). Where the
// child may not write here (Yama's ptrace_scope 1; here a seccomp filter
// that refuses process_vm_writev), this process copies what it could not.
describe("a frozen child's copies", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'heapscope-copies-'));
  let programs: Record<string, string> = {};
  let noCompiler: string | undefined;
  beforeAll(() => ({ programs, noCompiler } = buildFixtures(dir, ['deny-writev'])));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // 8 MB of blocks, each filled with a byte of its own; then, in one native
  // call: the process's first freeze, a read of one block (not up to the
  // break: the child measures before it, so it takes [heap]'s pieces from
  // the first on), [heap] read from the child, the thaw, and [heap] read
  // live. Nothing runs between the two reads. Then a walk: where the child
  // was refused, its freeze hands the child nothing.
  const BODY = `
    const blocks = h.runPlan(Array.from({ length: 40000 }, () => ({ op: 'malloc', size: 200 })), { keep: true }).kept;
    let i = 0;
    for (const b of blocks.values()) b.fill(i++ % 251);
    const heap = h.maps().find((r) => r.kind === 'heap');
    const whole = { op: 'read', address: heap.start, length: Number(heap.end - heap.start) + (16 << 20), toBreak: true, anonymous: true };
    const one = { op: 'read', address: blocks.get(0).address, length: 8 };
    const steps = h.runPlan([{ op: 'freeze' }, one, whole, { op: 'thaw' }, whole]).steps;
    const w = h.walkHeap();
    const seccomp = require('node:fs').readFileSync('/proc/self/status', 'utf8').split(String.fromCharCode(10)).find((l) => l.startsWith('Seccomp:'));
    return {
      statuses: steps.map((s) => s.status), same: steps[2].bytes.equals(steps[4].bytes), length: steps[2].bytes.length,
      seccomp: seccomp.split(':')[1].trim(), consistent: w.consistent, unequal: w.checks.filter((c) => !c.equal).map((c) => c.field),
    };`;

  for (const denied of [false, true]) {
    it(
      denied
        ? 'copies every piece itself where the child may not write into it: the same bytes as a live read right after'
        : "copies [heap] as it stood at the freeze: the same bytes as a live read right after, with nothing run between",
      ({ skip }) => {
        if (denied && noCompiler !== undefined) skip(noCompiler);
        const seen = inQuietChild<{ statuses: string[]; same: boolean; length: number; seccomp: string; consistent: boolean; unequal: string[] }>(
          BODY, {}, denied ? [programs['deny-writev']] : [],
        );
        expect(seen.statuses).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
        expect(seen.length).toBeGreaterThan(8_000_000);
        expect(seen.same).toBe(true);
        // deny-writev checked the refusal before it ran node (it exits 2 otherwise); its filter holds there.
        expect(seen.seccomp).toBe(denied ? '2' : '0');
        expect(seen.consistent).toBe(true);
        expect(seen.unequal).toEqual([]);
      },
    );
  }
});

// An experiment's child, whose V8 runs single-threaded, copies the allocator
// with no freeze (bins' frames): nothing else there mallocs during the plan.
describe('a copy planned live', () => {
  it('reads this process with no freeze, and finds what a frozen copy right after it finds', () => {
    const take = JSON.stringify(path.join(ROOT, 'dist', 'allocator', 'take-snapshot'));
    const seen = inQuietChild<{
      ops: string[]; live: { frozen: boolean; unfrozen?: string; reason?: string }; frozen: { frozen: boolean; reason?: string };
      sameHeap: boolean; heapBytes: number; mallinfo: string[];
    }>(`
      const t = require(${take});
      const blocks = h.runPlan(Array.from({ length: 2000 }, (_, i) => ({ op: 'malloc', size: 24 + (i % 40) * 16 })), { keep: true }).kept;
      let i = 0;
      for (const b of blocks.values()) if (i++ % 3 === 0) b.free();
      const steps = [];
      const live = t.planCopy(steps, t.copySources(), true);
      const liveOps = steps.map((s) => s.op);
      const frozen = t.planCopy(steps, t.copySources());
      const { steps: results } = h.runPlan(steps);
      const a = t.copiedSnapshot(live, results), b = t.copiedSnapshot(frozen, results);
      const heapOf = (f) => f.snapshot.image.memory.ranges.find((r) => r.label === '[heap]').bytes;
      const fields = (f) => Object.entries(f.snapshot.mallinfo).map(([k, v]) => k + '=' + v);
      return {
        ops: liveOps, live: { frozen: a.snapshot.frozen, unfrozen: a.snapshot.unfrozen, reason: a.reason }, frozen: { frozen: b.snapshot.frozen, reason: b.reason },
        sameHeap: heapOf(a).equals(heapOf(b)), heapBytes: heapOf(a).length, mallinfo: [fields(a).join(' '), fields(b).join(' ')],
      };`);
    expect(seen.ops).not.toContain('freeze');
    expect(seen.ops).not.toContain('thaw');
    expect(seen.live.frozen).toBe(false);
    expect(seen.live.unfrozen).toMatch(/^its plan asked for no freeze/);
    expect(seen.live.reason).toBeUndefined();
    expect(seen.frozen).toEqual({ frozen: true });
    expect(seen.heapBytes).toBeGreaterThan(0);
    expect(seen.sameHeap).toBe(true);
    expect(seen.mallinfo[0]).toBe(seen.mallinfo[1]);
  });
});
