// Run as a child process: measures where global_max_fast sits relative to
// main_arena in this libc, by the one word of libc's data that
// mallopt(M_MXFAST) moves, and prints it as JSON with the libc file's key.
// It changes this process's fastbin limit, which is why it is a child.
import { maps } from '../maps';
import { runPlan } from '../plan';
import { glibcVersion, mallopt, programBreak } from '../stats';
import { layoutFor } from './layouts';
import { libcDataRegions } from './libc-data';
import { libcFileOf } from './libc-file';
import { locateMallocGlobals } from './locate';
import { Snapshot } from './snapshot';

function copy(regions: ReturnType<typeof libcDataRegions>): Snapshot[] {
  const { steps } = runPlan(regions.map((r) => ({ op: 'read' as const, address: r.start, length: r.size })));
  return regions.map((r, i) => ({ base: r.start, bytes: steps[i].bytes! }));
}

function measure(): { offset?: string; key?: string; reason?: string } {
  const regions = maps();
  const libc = libcDataRegions(regions);
  const file = libcFileOf(regions);
  const heap = regions.find((r) => r.kind === 'heap');
  if (file === undefined || libc.length === 0) return { reason: 'the child maps no libc' };
  const layout = layoutFor(glibcVersion());
  const input = (data: Snapshot[]) => ({ layout, data, ...(heap === undefined ? {} : { heap: { start: heap.start, end: programBreak() } }) });
  let before = copy(libc);
  const reasons: string[] = [];
  // The child starts with the default limit (128); each request moves it.
  for (const request of [64, 32]) {
    mallopt('M_MXFAST', request);
    const after = copy(libc);
    const g = locateMallocGlobals(input(before), { after, request });
    if (!g.mainArena.found) return { key: file.key, reason: `main_arena: ${g.mainArena.reason}` };
    if (g.globalMaxFast.found) return { key: file.key, offset: (g.globalMaxFast.address - g.mainArena.address).toString() };
    reasons.push(`mallopt(M_MXFAST, ${request}): ${g.globalMaxFast.reason}`);
    before = after;
  }
  return { key: file.key, reason: reasons.join('; ') };
}

let result: { offset?: string; key?: string; reason?: string };
try {
  result = measure();
} catch (error) {
  result = { reason: (error as Error).message };
}
process.stdout.write(JSON.stringify(result));
