import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { LayoutRow } from '../../lib/experiments/layout';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { hex, shortBytes } from '../../lib/format';
import { maps } from '../../lib/maps';
import { readMemory } from '../../lib/memory';
import { mmappedChunkSize } from '../../lib/size-classes';
import { pageSize } from '../../lib/stats';
import { MMAPPED_TAIL } from '../helpers/glibc-here';

const PROBES = [
  'node-text', 'addon-text', 'addon-rodata', 'addon-data', 'addon-bss', 'heap', 'mmapped', 'libc-malloc', 'vdso', 'stack', 'environment',
] as const;

function row(result: ExperimentResult<LayoutRow>, name: LayoutRow['name']): LayoutRow {
  const found = result.rows.find((r) => r.name === name);
  expect(found, name).toBeDefined();
  return found!;
}

/** Checks that hold wherever it ran. */
function checkRows(result: ExperimentResult<LayoutRow>): void {
  const rows = result.rows;
  for (let i = 1; i < rows.length; i++) {
    expect(rows[i].address).toBeGreaterThanOrEqual(rows[i - 1].address);
    const d = rows[i].address - rows[i - 1].address;
    if (d <= BigInt(Number.MAX_SAFE_INTEGER)) expect(rows[i].distance).toBe(Number(d));
    else expect(rows[i].distance).toBeUndefined();
  }
  expect(rows[0].distance).toBeUndefined();
  for (const r of rows) {
    if (r.region === undefined) continue;
    expect(r.address).toBeGreaterThanOrEqual(r.region.start);
    expect(r.address).toBeLessThan(r.region.end);
    expect(r.offset).toBe(Number(r.address - r.region.start));
  }

  for (const name of PROBES) {
    const r = row(result, name);
    expect(r.type).toBe('probe');
    expect(r.region, `${name} lies in a mapping`).toBeDefined();
  }
  const addon = row(result, 'addon-text').region!;
  for (const name of ['node-text', 'addon-text', 'libc-malloc'] as const) {
    const r = row(result, name).region!;
    expect(r.kind).toBe('text');
    expect(r.perms[2]).toBe('x');
  }
  expect(addon.path).toMatch(/\.node$/);
  expect(row(result, 'libc-malloc').region!.path).toMatch(/libc[.-]/);
  for (const name of ['addon-data', 'addon-bss'] as const) {
    const r = row(result, name).region!;
    expect(r.perms[1]).toBe('w');
    expect(['data', 'bss']).toContain(r.kind);
    expect(r.object).toBe(addon.object);
  }
  const rodata = row(result, 'addon-rodata').region!;
  expect(rodata.perms[1]).toBe('-');
  expect(rodata.perms[2]).toBe('-');
  expect(rodata.object).toBe(addon.object);

  const heap = row(result, 'heap');
  expect(heap.region!.kind).toBe('heap');
  expect(heap.header!.isMmapped).toBe(false);
  const mmapped = row(result, 'mmapped');
  if (mmapped.header!.isMmapped) {
    expect(mmapped.region!.kind).not.toBe('heap');
    expect(mmapped.header!.size).toBe(mmappedChunkSize(mmapped.request!, pageSize(), MMAPPED_TAIL));
    expect(mmapped.header!.address % BigInt(pageSize())).toBe(0n);
  } else {
    expect(result.surprises.some((s) => s.startsWith('malloc(1 MiB) was not mmapped in this run'))).toBe(true);
  }
  expect(row(result, 'stack').region!.kind).toBe('stack');
  expect(row(result, 'environment').region!.kind).toBe('stack');
  const vdso = row(result, 'vdso');
  expect(vdso.region!.kind).toBe('vdso');
  expect(vdso.address).toBe(vdso.region!.start);

  // Every probe found its line in the findings, placed as the row says.
  for (const name of PROBES) {
    const r = row(result, name);
    expect(result.findings).toContain(
      `${r.what}: ${hex(r.address)}, in ${/^[aeiou]/.test(r.region!.kind) ? 'an' : 'a'} ${r.region!.kind} region ` +
        `${hex(r.region!.start)}–${hex(r.region!.end)} (${r.region!.perms} ${r.region!.path === '' ? 'anonymous' : r.region!.path.startsWith('[') ? r.region!.path : r.region!.path.split('/').pop()}), ` +
        `${shortBytes(r.offset!)} into it.`,
    );
  }
}

describe('layout', () => {
  let result: ExperimentResult<LayoutRow>;
  beforeAll(async () => {
    result = (await run('layout')) as ExperimentResult<LayoutRow>;
  });

  it('ran in a fresh child by default and says so', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
    expect(result.question).toMatch(/Where/);
  });

  it('places every probe in a region of a consistent kind, rows low to high with their distances', () => {
    checkRows(result);
    expect(row(result, 'mmapped').header!.isMmapped).toBe(true);
  });

  it('user space ends above every mapping; vsyscall, where present, is the kernel page above it', () => {
    const end = row(result, 'user-space-end');
    const highest = row(result, 'user-mappings-end');
    expect(end.type).toBe('boundary');
    expect(highest.address).toBeLessThanOrEqual(end.address);
    if (highest.address <= 0x800000000000n) expect(end.address).toBe(0x800000000000n);
    for (const r of result.rows.filter((x) => x.type !== 'boundary')) expect(r.address).toBeLessThan(highest.address);
    const vsyscall = result.rows.find((r) => r.name === 'vsyscall');
    if (vsyscall !== undefined) {
      expect(vsyscall.region!.kind).toBe('vsyscall');
      expect(vsyscall.address).toBeGreaterThan(end.address);
      expect(result.rows.at(-1)).toBe(vsyscall);
      expect(result.findings.some((f) => f.includes(`[vsyscall] at ${hex(vsyscall.address)}`))).toBe(true);
    }
    expect(result.findings.some((f) =>
      f.includes(`ends at ${hex(highest.address)}, ${shortBytes(Number(end.address - highest.address))} below ${hex(end.address)}`),
    )).toBe(true);
  });

  it('computes the distances it states', () => {
    const node = row(result, 'node-text');
    const heap = row(result, 'heap');
    expect(result.findings).toContain(
      `The heap probe (${hex(heap.address)}) lies ${shortBytes(Number(heap.address - node.address))} above node's text (${hex(node.address)}).`,
    );
    const text = row(result, 'addon-text');
    const data = row(result, 'addon-data');
    expect(result.findings.some((f) =>
      f.startsWith(`The addon's data and bss sit right after its text: its initialised global is ${shortBytes(Number(data.address - text.address))} above`),
    )).toBe(true);
    const stack = row(result, 'stack');
    const env = row(result, 'environment');
    expect(env.address).toBeGreaterThan(stack.address);
    expect(result.findings.some((f) => f.includes(`${shortBytes(Number(env.region!.end - env.address))} below its end`))).toBe(true);
  });

  it("says where the addon's zero global landed, as the rows show", () => {
    const bss = row(result, 'addon-bss');
    if (bss.region!.kind === 'data') {
      expect(result.surprises.some((s) => s.includes('landed inside its file-backed data mapping'))).toBe(true);
    } else {
      expect(result.findings.some((f) => f.includes('landed in its own anonymous bss region'))).toBe(true);
    }
  });

  it("reports node's own ELF type the way the running executable has it", () => {
    // The child runs the same node binary as this process: read its ELF header here.
    const image = maps().find((r) => r.path === fs.realpathSync(process.execPath) && r.offset === 0);
    expect(image).toBeDefined();
    const type = readMemory(image!.start, 18).readUInt16LE(16);
    const notPie = result.surprises.some((s) => s.startsWith("node's executable is not position-independent"));
    expect(notPie).toBe(type === 2);
    // Non-PIE or not, node's image sits below the heap.
    expect(row(result, 'node-text').address).toBeLessThan(row(result, 'heap').address);
  });

  it('heap start versus the end of node\'s image: a gap is a surprise, none is a finding', () => {
    const start = row(result, 'heap-start');
    const gapSurprise = result.surprises.some((s) => s.startsWith("[heap] does not start right after node's bss"));
    const adjacent = result.findings.some((f) => f.startsWith(`[heap] starts at ${hex(start.address)}, exactly where node's image ends`));
    expect(gapSurprise !== adjacent).toBe(true);
  });

  it('with the threshold fixed above 1 MiB, says the large block came from the heap and reads why from mp_', async () => {
    const raised = (await run('layout', { tunables: { 'glibc.malloc.mmap_threshold': 32 * 1024 * 1024 } })) as ExperimentResult<LayoutRow>;
    const said = raised.surprises.find((s) => s.startsWith('malloc(1 MiB) was not mmapped in this run'));
    expect(said).toBeDefined();
    // Either the top chunk held it, or glibc's own threshold (read back, fixed by the tunable) was above it.
    expect(said!.endsWith('malloc only weighs mmap against brk when the top chunk is too small.') ||
      said!.endsWith('mp_.mmap_threshold, read after the run, is 33554432 bytes, fixed by a setting (mp_.no_dyn_threshold is 1: a tunable, MALLOC_MMAP_THRESHOLD_ or mallopt set it).')).toBe(true);
  });

  it('runs in this process too', async () => {
    const here = (await run('layout', { isolated: false })) as ExperimentResult<LayoutRow>;
    expect(here.environment.isolated).toBe(false);
    expect(here.environment.pid).toBe(process.pid);
    checkRows(here);
  });
});
