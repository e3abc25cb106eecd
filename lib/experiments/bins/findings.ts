// What the bins experiment says about its rows: a rule per stage, each
// comparing what the stage's copy decoded with what glibc's rules predict
// from the parameters read in the same plan (mp_ and global_max_fast). A
// stage as predicted is a finding; one that is not is a surprise saying
// what was seen.
import { hex } from '../../format';
import { binIndex, csize2tidx, smallbinIndex, tcacheIndex } from '../../size-classes';
import { own } from '../../validate';
import { Rule, say } from '../rules';
import { BinsRow, ChunkPlace, FrameParams, Measured, nameRange, BinsStage } from './measure';

/** The rows, by what the rules ask of them. */
interface Facts {
  rows: BinsRow[];
  params?: FrameParams;
  /** Each test chunk's size, from its header at the start. */
  sizes: Map<string, number>;
  measured: Measured;
}

/**
 * Where glibc's free puts a chunk of `size` whose tcache bin holds `held`
 * (glibc 2.26 on, no neighbour free); `freedSmall`, where this release puts
 * one in small-bin range that neither takes (the small bin from 2.41).
 */
export function predictedFree(size: number, held: number, p: FrameParams, freedSmall: Measured['freedSmall'] = 'unsorted'): 'tcache' | 'fastbin' | 'unsorted' | 'smallbin' {
  const index = tcacheIndex(size);
  if (index !== undefined && index < p.tcacheBins && held < p.tcacheCount) return 'tcache';
  if (p.globalMaxFast !== undefined && size <= p.globalMaxFast) return 'fastbin';
  return freedSmall === 'smallbin' && smallbinIndex(size) !== undefined ? 'smallbin' : 'unsorted';
}

const ordinal = (n: number): string => `${n}${n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;

function where(p: ChunkPlace): string {
  if (p.place === 'merged') return `part of ${p.within}'s chunk (${hex(p.size)}, ${p.withinPlace}${p.withinBin === undefined ? '' : ` ${p.withinBin}`})`;
  const bin = p.bin === undefined ? '' : ` ${p.bin}`;
  return p.place === 'unsorted' ? 'the unsorted bin' : p.place === 'top' ? 'top' : `${p.place}${bin}`;
}

/** How many chunks tcache bin `index` held in a row's copy. */
const tcacheHeld = (row: BinsRow | undefined, index: number | undefined): number =>
  index === undefined ? 0 : (row?.bins.find((b) => b.kind === 'tcache' && b.index === index)?.ours.length ?? 0) +
    (row?.bins.find((b) => b.kind === 'tcache' && b.index === index)?.others ?? 0);

interface StageFacts extends Facts {
  row: BinsRow;
  before: BinsRow;
  p: FrameParams;
}

/** The finding or surprise of one stage: `expected` says whether it went as glibc's rules predict. */
interface Said { expected: boolean; text: string }

/** Whether the run's glibc has fastbins: a recorded run without the field is of 2.36, which has. */
const hasFastbins = (measured: Measured): boolean => own(measured, 'fastbins') ?? true;

/** What the run read of global_max_fast, in words. */
const maxFastText = (p: FrameParams, measured: Measured): string =>
  !hasFastbins(measured) ? 'no global_max_fast (glibc 2.43 dropped the fastbins)' : `global_max_fast ${p.globalMaxFast === undefined ? 'not read' : hex(p.globalMaxFast)}`;

/** A free of chunks that each went where predictedFree says, given the tcache bin before. */
function frees({ row, before, sizes, p, measured }: StageFacts): Said {
  const size = sizes.get(row.chunks[0])!;
  const index = tcacheIndex(size);
  const held = tcacheHeld(before, index);
  // Measured without it (the views' recorded rows, from glibc 2.36): the unsorted bin, as there.
  const freedSmall = own(measured, 'freedSmall') ?? 'unsorted';
  const predicted = row.chunks.map((_, i) => predictedFree(size, held + i, p, freedSmall));
  const seen = row.places.map((c) => c.place);
  const expected = seen.every((s, i) => s === predicted[i]);
  const names = nameRange(row.chunks);
  if (!expected) {
    return {
      expected,
      text: `Freeing ${names} (${hex(size)} chunks) put them in ${row.places.map(where).join(', ')}; glibc's rules predict ${predicted.join(', ')} ` +
        `(tcache bin ${index ?? 'none'} held ${held}, mp_.tcache_count ${p.tcacheCount}, mp_.tcache_bins ${p.tcacheBins}, ${maxFastText(p, measured)}).`,
    };
  }
  const first = held + 1;
  const what = predicted[0];
  if (what === 'tcache') {
    const after = tcacheHeld(row, index);
    return {
      expected,
      text: `The ${row.chunks.length === 1 ? `${ordinal(first)} free` : `first ${row.chunks.length} frees`} of ${hex(size)} chunks (${names}) went to tcache bin ${index}, ` +
        `which then held ${after} (mp_.tcache_count is ${p.tcacheCount}).`,
    };
  }
  const because = index === undefined || index >= p.tcacheBins
    ? `its tcache index ${index ?? csize2tidx(size)} is past mp_.tcache_bins (${p.tcacheBins})`
    : `tcache bin ${index} held ${held} (mp_.tcache_count = ${p.tcacheCount})`;
  const fast = p.globalMaxFast === undefined ? '' : what === 'fastbin'
    ? ` and ${hex(size)} is at most global_max_fast (${hex(p.globalMaxFast)})`
    : ` and ${hex(size)} is above global_max_fast (${hex(p.globalMaxFast)})`;
  const bin = row.places[0].bin === undefined ? '' : ` ${row.places[0].bin}`;
  const which = index === undefined || index >= p.tcacheBins ? 'A' : `The ${ordinal(first)}`;
  const to = what === 'unsorted' ? 'the unsorted bin' : what === 'smallbin' ? `small bin${bin}` : `fastbin${bin}`;
  const small = what !== 'smallbin' ? ''
    : hasFastbins(measured) ? ', and from glibc 2.41 free puts a chunk of small-bin size straight into its small bin, not the unsorted bin'
      : ', glibc 2.43 has no fastbins, and from 2.41 free puts a chunk of small-bin size straight into its small bin, not the unsorted bin';
  return { expected, text: `${which} free of a ${hex(size)} chunk (${names}) went to ${to} because ${because}${fast}${small}.` };
}

/** Where a chunk the stage freed or malloc'd is after it. */
const at = (row: BinsRow, name: string): ChunkPlace | undefined => row.places.find((c) => c.name === name);

/** `small bin 12`, `large bin 65`, `the unsorted bin`. */
function binName(b: { kind: string; index: number } | undefined): string {
  if (b === undefined) return 'no bin';
  if (b.kind === 'unsorted') return 'the unsorted bin';
  return `${b.kind.replace(/bin$/, ' bin')} ${b.index}`;
}

/** A chunk's place in a row's bins: the kind and index of the bin listing it. */
function listedIn(row: BinsRow, name: string): { kind: string; index: number } | undefined {
  const b = row.bins.find((x) => x.ours.includes(name));
  return b === undefined ? undefined : { kind: b.kind, index: b.index };
}

const STAGES: Partial<Record<BinsStage, (f: StageFacts) => Said | undefined>> = {
  tcache: frees,
  fastbin: frees,
  unsorted: frees,

  sort: ({ row, before, sizes }) => {
    const sorted = before.bins.find((b) => b.kind === 'unsorted')?.ours ?? [];
    const placed = sorted.map((name) => ({ name, size: sizes.get(name)!, in: listedIn(row, name) }));
    const expected = placed.every((c) => c.in !== undefined && c.in.kind !== 'unsorted' && c.in.index === binIndex(c.size));
    const got = row.got![0];
    const list = placed.map((c) => `${c.name} (${hex(c.size)}) ${c.in === undefined ? 'left the bins' : `into ${binName(c.in)}`}`).join(' and ');
    return {
      expected,
      text: `malloc(${got.request}) (a ${hex(got.size)} chunk, larger than any free test chunk) scanned the unsorted bin and sorted what it held: ${list}` +
        (expected ? ', the bins bin_index gives for their sizes.' : `; bin_index gives ${placed.map((c) => `${c.name} bin ${binIndex(c.size)}`).join(', ')}.`),
    };
  },

  'no-merge': ({ row, sizes, measured }) => {
    if (!hasFastbins(measured)) {
      // Without fastbins the second free merges the pair at once (_int_free_merge_chunk), into the small bin of their joint size.
      const pair = sizes.get('a1')! + sizes.get('a2')!;
      const [a1, a2] = [at(row, 'a1')!, at(row, 'a2')!];
      const expected = a1.place === 'smallbin' && a1.size === pair && a1.bin === binIndex(pair) && a2.place === 'merged' && a2.within === 'a1';
      return {
        expected,
        text: expected
          ? `a1 and a2 lie back to back: freeing a2 merged it with free a1 at once, into one ${hex(pair)} chunk in small bin ${a1.bin}, as glibc 2.43 has no fastbins, ` +
            'whose chunks stayed apart until malloc_consolidate.'
          : `a1 and a2, back to back, ended up in ${row.places.map(where).join(' and ')}; with no fastbins (glibc 2.43) the second free merges them into one ${hex(pair)} chunk.`,
      };
    }
    const fast = row.bins.find((b) => b.kind === 'fastbin' && b.ours.includes('a1'));
    const expected = row.places.every((c) => c.place === 'fastbin' && c.size === sizes.get(c.name));
    return {
      expected,
      text: expected
        ? `a1 and a2 lie back to back and both went to fastbin ${fast!.index} as chunks of ${hex(sizes.get('a1')!)} (the list: ${fast!.ours.join(', ')}): a free into a fastbin does not merge with its free neighbour.`
        : `a1 and a2, back to back, ended up in ${row.places.map(where).join(' and ')}.`,
    };
  },

  apart: ({ row, sizes }) => {
    const expected = row.places.every((c) => c.place === 'unsorted' && c.size === sizes.get(c.name));
    return {
      expected,
      text: `P and R, freed with Q in use between them, ${expected ? `went to the unsorted bin as two chunks of ${hex(sizes.get('P')!)}` : `ended up in ${row.places.map(where).join(' and ')}`}.`,
    };
  },

  coalesce: ({ row, sizes }) => {
    const whole = sizes.get('P')! + sizes.get('Q')! + sizes.get('R')!;
    const q = at(row, 'Q')!;
    const expected = q.place === 'merged' && q.within === 'P' && q.withinPlace === 'unsorted' && q.size === whole;
    return {
      expected,
      text: expected
        ? `Freeing Q merged it with both free neighbours: the unsorted bin then held one chunk of ${hex(whole)} at P (P + Q + R), in place of P and R.`
        : `Freeing Q, between free P and R, left it ${where(q)}; merging with both would give one ${hex(whole)} chunk at P.`,
    };
  },

  consolidate: ({ row, before, sizes, measured }) => {
    const fast = before.bins.filter((b) => b.kind === 'fastbin').flatMap((b) => b.ours);
    const a1 = listedIn(row, 'a1');
    if (!hasFastbins(measured)) {
      // 2.43 removed malloc_consolidate with the fastbins: a large request only sorts the unsorted bin.
      const got = row.got![0];
      const pair = sizes.get('a1')! + sizes.get('a2')!;
      const was = listedIn(before, 'a1');
      const expected = a1 !== undefined && was !== undefined && a1.kind === was.kind && a1.index === was.index;
      const [p, pBefore] = [listedIn(row, 'P'), listedIn(before, 'P')];
      const moved = p === undefined ? '' : `, and P's chunk went from ${binName(pBefore)} to ${binName(p)}`;
      return {
        expected,
        text: expected
          ? `malloc(${got.request}) (a large-bin request) had no fastbins to consolidate (glibc 2.43 removed them, and malloc_consolidate): ` +
            `a1's ${hex(pair)} chunk stayed in ${binName(a1)}${moved}.`
          : `malloc(${got.request}) (a large-bin request) moved a1's ${hex(pair)} chunk from ${binName(was)} to ${binName(a1)}, though glibc 2.43 has no malloc_consolidate.`,
      };
    }
    const f = fast.find((n) => n.startsWith('f'));
    const stillFast = row.bins.some((b) => b.kind === 'fastbin' && b.ours.length > 0);
    const pair = sizes.get('a1')! + sizes.get('a2')!;
    const expected = !stillFast && a1 !== undefined && a1.kind === 'smallbin' && a1.index === binIndex(pair) && !row.bins.some((b) => b.ours.includes('a2'));
    const got = row.got![0];
    const rest = f === undefined ? '' : `, ${f} a ${hex(sizes.get(f)!)} chunk in ${binName(listedIn(row, f))}`;
    const p = listedIn(row, 'P');
    return {
      expected,
      text: expected
        ? `malloc(${got.request}) (a large-bin request) ran malloc_consolidate: the fastbins, which held ${fast.length} test chunks (${fast.join(', ')}), were emptied; ` +
          `a1 and a2 became one ${hex(pair)} chunk in small bin ${a1!.index}${rest}` + (p === undefined ? '' : `, and P's chunk went to ${binName(p)}`) + '.'
        : `malloc(${got.request}) (a large-bin request) should have emptied the fastbins and merged a1 and a2 into one ${hex(pair)} chunk; ` +
          `after it a1 is in ${a1 === undefined ? 'no bin' : `${a1.kind} ${a1.index}`}${stillFast ? ' and the fastbins still hold test chunks' : ''}.`,
    };
  },

  split: ({ row, before, sizes }) => {
    const got = row.got![0];
    const rest = row.places.find((c) => c.name === `rest of ${got.name}`)!;
    const l = before.bins.find((b) => b.ours.includes('L'));
    const lSize = sizes.get('L')!;
    const expected = rest.place === 'unsorted' && rest.size === lSize - got.size && row.lastRemainder === rest.address;
    return {
      expected,
      text: expected
        ? `malloc(${got.request}) (a ${hex(got.size)} chunk) found no free chunk of its size and split L (${hex(lSize)}, in ${binName(l)}, the smallest free chunk that fits): ` +
          `it got L's first ${hex(got.size)} bytes, and the other ${hex(rest.size)} went to the unsorted bin as main_arena's last_remainder.`
        : `malloc(${got.request}) got ${hex(got.address)} (${hex(got.size)}); the rest after it is ${where(rest)} (${hex(rest.size)}), ` +
          `and last_remainder is ${hex(row.lastRemainder)}.`,
    };
  },

  remainder: ({ row, before }) => {
    const got = row.got![0];
    const rest = row.places.find((c) => c.name === `rest of ${got.name}`)!;
    const expected = got.address === before.lastRemainder && rest.place === 'unsorted' && row.lastRemainder === rest.address;
    return {
      expected,
      text: expected
        ? `The next malloc(${got.request}) was carved from the last_remainder (the unsorted bin's only chunk) again: it got the ${hex(got.size)} bytes right after the first, ` +
          `and the ${hex(rest.size)} left became last_remainder.`
        : `The next malloc(${got.request}) got ${hex(got.address)}, not the last_remainder at ${hex(before.lastRemainder)}.`,
    };
  },

  top: ({ row, before, sizes, p }) => {
    const name = row.chunks[0];
    const c = row.places[0];
    const grew = row.top.size - before.top.size;
    const expected = c.place === 'top' && row.top.address === c.address && grew === sizes.get(name)!;
    return {
      expected,
      text: expected
        ? `Freeing ${name}, the chunk just below top, merged it into top: top moved down from ${hex(before.top.address)} to ${hex(row.top.address)} ` +
          `and grew from ${before.top.size} to ${row.top.size} bytes; that is below mp_.trim_threshold (${p.trimThreshold}), and the break stayed at ${hex(row.programBreak)}` +
          (row.programBreak === before.programBreak ? '.' : ` (it was ${hex(before.programBreak)}).`)
        : `Freeing ${name}, the chunk just below top, left it ${where(c)}; top is at ${hex(row.top.address)} (${row.top.size} bytes), it was at ${hex(before.top.address)}.`,
    };
  },
};

const FINDINGS: Rule<Facts>[] = [
  // What glibc's parameters were in the plan's first copy.
  ({ params: p, measured }) => p === undefined ? undefined
    : `Read in the plan's first copy: mp_.tcache_count ${p.tcacheCount}, mp_.tcache_bins ${p.tcacheBins} (mp_.tcache_max_bytes ${p.tcacheMaxBytes}), ` +
      `${maxFastText(p, measured)}, mp_.trim_threshold ${p.trimThreshold}.`,

  // How the test chunks were laid out, and what the fillers took first.
  ({ rows, measured: { preparation: q } }) => {
    const carved = rows[0].carved!;
    const good = carved.filter((c) => c.after && c.before).length;
    const others = rows[0].bins.reduce((n, b) => n + b.others, 0);
    return `${q.tcacheFillers + q.binFillers} fillers first took what this thread's tcache (${q.tcacheFillers}) and main_arena's bins (${q.binFillers}) held, ` +
      `then ${q.drains} mallocs of each test size; ${good} of the ${carved.length} test chunks lie between the in-use neighbours planned, ` +
      `and before the first free the bins held ${others} chunks that are no test chunk.`;
  },

  // Each stage as glibc's rules predict it.
  (f) => stageSaid(f).filter((s) => s.expected).map((s) => s.text),

  // If the plan was measured again: what the earlier runs met.
  ({ measured: { missed } }) => missed.length === 0 ? undefined
    : `Run${missed.length > 1 ? 's' : ''} 1${missed.length > 1 ? `–${missed.length}` : ''} of this plan met a disturbance (${missed.join('; ')}), ` +
      `so it was measured again; run ${missed.length + 1} is shown.`,
];

const SURPRISES: Rule<Facts>[] = [
  // Each copy that was torn: its stage is not described.
  ({ rows }) => rows.filter((r) => !r.consistent).map((r) => `The copy after step ${r.step} (${r.action}) is not of one moment: ${r.reason}.`),

  // Each stage that did not go as glibc's rules predict.
  (f) => stageSaid(f).filter((s) => !s.expected).map((s) => s.text),
];

function stageSaid(f: Facts): Said[] {
  const out: Said[] = [];
  f.rows.forEach((row, i) => {
    const rule = STAGES[row.stage];
    const before = f.rows[i - 1];
    if (rule === undefined || before === undefined || !row.consistent || !before.consistent || row.params === undefined) return;
    const said = rule({ ...f, row, before, p: row.params });
    if (said !== undefined) out.push(said);
  });
  return out;
}

export function describeRows(measured: Measured): { rows: BinsRow[]; findings: string[]; surprises: string[] } {
  const { rows } = measured;
  const sizes = new Map(rows[0].carved?.map((c) => [c.name, c.size]) ?? []);
  for (const r of rows) for (const g of r.got ?? []) sizes.set(g.name, g.size);
  const facts: Facts = { rows, ...(rows[0].params === undefined ? {} : { params: rows[0].params }), sizes, measured };
  return { rows, findings: say(FINDINGS, facts), surprises: say(SURPRISES, facts) };
}
