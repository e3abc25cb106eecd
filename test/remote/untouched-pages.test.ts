// Looking at another process leaves its pages never touched alone: a python
// whose [heap] grew by 40 MiB nobody wrote keeps them out of memory through
// attach(pid).arenas() and heapscope doctor --pid (on a kernel where a plain
// read would fault them in), and the copy that left them zero equals one
// that read them.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attach } from '../../lib/index';
import { openPagemap } from '../../lib/doctor/residency';
import { readRanges } from '../../lib/remote/read-ranges';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { SYNC_CHILD } from '../helpers/sync-child';
import { NO_PYTHON, PYTHON } from '../helpers/target';

// The heaps read are other processes': this process's own room does not matter.
heapRoomNotNeeded();

const TARGET = path.join(__dirname, '..', 'fixtures', 'untouched-heap.py');
const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const PAGE = 4096n;
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** Starts the target; resolves with its pid and the 40 MiB block's address once it blocks on stdin. */
function startTarget(): Promise<{ pid: number; block: bigint }> {
  const child = spawn(PYTHON, [TARGET], { stdio: ['pipe', 'pipe', 'inherit'], env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } });
  children.push(child);
  return new Promise((resolve, reject) => {
    let seen = '';
    child.once('exit', (code) => reject(new Error(`${TARGET} exited (${code}) after printing ${JSON.stringify(seen)}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const line = /^(\d+) (\d+)\n/.exec(seen);
      if (line !== null) resolve({ pid: Number(line[1]), block: BigInt(line[2]) });
    });
  });
}

/** The whole pages of the target's 40 MiB block. */
function blockPages(block: bigint): { start: bigint; end: bigint; pages: number } {
  const start = (block + PAGE - 1n) & ~(PAGE - 1n);
  const end = (block + (40n << 20n)) & ~(PAGE - 1n);
  return { start, end, pages: Number((end - start) / PAGE) };
}

/** Starts a target, reads its block with one plain process_vm_readv and says how many of its pages that left resident. */
async function plainReadOfBlock(): Promise<{ resident: number; pages: number }> {
  const { pid, block } = await startTarget();
  const { start, end, pages } = blockPages(block);
  const pagemap = openPagemap(pid, Number(PAGE), (e) => e);
  try {
    const [read] = readRanges(pid, [{ address: start, length: end - start }]);
    expect(read.errno).toBe(0);
    return { resident: pagemap.pages(start, end).reduce((n, p) => n + p, 0), pages };
  } finally {
    pagemap.close();
  }
}

/** Resident pages of [heap], from smaps (it walks the page tables: exact). */
function heapRss(pid: number): number {
  const lines = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  const at = lines.findIndex((l) => l.endsWith('[heap]'));
  return Number(/^Rss:\s+(\d+) kB/.exec(lines.slice(at + 1).find((l) => l.startsWith('Rss:'))!)![1]) / 4;
}

describe('looking at another process leaves its pages never touched alone', () => {
  it('attach(pid).arenas() and doctor --pid leave the 40 MiB of [heap] nobody wrote out of memory', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    // A control target first: where a plain read of never-written memory maps the shared zero page (which
    // RSS does not count) rather than a page of its own, as some kernels do, no copy could make these pages
    // resident, and nothing below could fail.
    const control = await plainReadOfBlock();
    if (control.resident < control.pages / 2) {
      skip(`a plain read of a second target's 40 MiB block made ${control.resident} of its ${control.pages} pages resident ` +
        '(this kernel maps the shared zero page for it): there is nothing a copy could make resident to tell apart');
    }
    const { pid, block } = await startTarget();
    const pagemap = openPagemap(pid, Number(PAGE), (e) => e);
    try {
      const { start, end, pages } = blockPages(block);
      const present = () => pagemap.pages(start, end).reduce((n, p) => n + p, 0);
      const blockBefore = present();
      const heapBefore = heapRss(pid);
      expect(blockBefore).toBeLessThan(pages / 10);

      const target = attach(pid);
      const snapshot = target.snapshot();
      const arenas = target.arenas(snapshot);
      expect(snapshot.consistent).toBe(true);
      expect(snapshot.madeResident).toBeUndefined();
      expect(arenas.arenas.find((a) => a.kind === 'main')!.systemMem).toBeGreaterThan(40 << 20);
      // Exact: the target is blocked in read(), nothing of it runs; the control's plain read made its pages resident.
      expect(present()).toBe(blockBefore);
      expect(heapRss(pid)).toBe(heapBefore);

      const doctor = spawnSync(process.execPath, [CLI, 'doctor', '--pid', String(pid), '--json'], { ...SYNC_CHILD, encoding: 'utf8' });
      expect(doctor.status, doctor.stderr).toBe(0);
      expect(JSON.parse(doctor.stdout).snapshot.consistent).toBe(true);
      expect(present()).toBe(blockBefore);
      expect(heapRss(pid)).toBe(heapBefore);
    } finally {
      pagemap.close();
    }
  });

  it('the copy that left those pages zero equals a plain read of [heap]', async ({ skip }) => {
    if (NO_PYTHON !== undefined) skip(NO_PYTHON);
    const { pid } = await startTarget();
    const snapshot = attach(pid).snapshot();
    expect(snapshot.consistent).toBe(true);
    expect(snapshot.madeResident).toBeUndefined();
    const heap = snapshot.maps.find((r) => r.kind === 'heap')!;
    expect(heap.size).toBeGreaterThan(40 << 20);
    const [read] = readRanges(pid, [{ address: heap.start, length: BigInt(heap.size) }]);
    expect(read.errno).toBe(0);
    expect(Buffer.compare(snapshot.image.memory.read(heap.start, heap.size), read.bytes)).toBe(0);
  });
});
