// The work of the commands that show one view of a process (maps, walk,
// arenas, params, bins, vis, doctor, exec): loaded by cli.ts when one of
// them runs, so that a run or a tour starts its children before the
// allocator's decoders, the remote reader and the views are loaded.
import './present';
import { processHeader, ViewChoice, ViewName, write } from './cli-common';
import { toJSON } from './json';
import { maps } from './maps';
import { allocatorSnapshot, arenas, bins, mallocParams, vis } from './allocator-state';
import { commandLine } from './format';
import { AttachedProcess, attach } from './remote/attach';
import { startChild, Readiness } from './remote/child';
import { renderArenas, renderBins, renderParams } from './views/allocator';
import { doctor } from './doctor/index';
import { renderDoctor } from './views/doctor';
import { renderMaps, terminalOptions } from './views/terminal';
import { walkHeap } from './walk/index';
import { renderWalk } from './views/walk-strip';
import { renderVis } from './views/vis';

/** `attach(pid)`, or undefined (this process) for none. */
export function target(pid: number | undefined): AttachedProcess | undefined {
  return pid === undefined ? undefined : attach(pid);
}

/**
 * Prints `view` of this process, or of `target` (its text then starts with
 * which process it is). `allArenas` is the command line that shows every
 * arena's bins, for bins' line saying how many were left out.
 */
export function showView(view: ViewName, choice: ViewChoice, target: AttachedProcess | undefined, allArenas = ''): void {
  const options = terminalOptions(process.stdout);
  // A snapshot of its own only where --attempts asks for one: without it each call takes (and gives back) its own.
  const attempts = choice.attempts === undefined ? undefined : { attempts: choice.attempts };
  const here = () => (attempts === undefined ? undefined : allocatorSnapshot(attempts));
  const there = (t: AttachedProcess) => (attempts === undefined ? undefined : t.snapshot(attempts));
  const print = (data: unknown, text: () => string, documents?: { toSVG(): string; toHTML(): string }) => {
    if (choice.format === 'json') return write(toJSON(data));
    if (choice.format !== undefined) return write(choice.format === 'svg' ? documents!.toSVG() : documents!.toHTML());
    write(processHeader(target) + text());
  };
  if (view === 'maps') {
    const regions = target === undefined ? maps({ rss: choice.rss }) : target.maps({ rss: choice.rss });
    return print(regions, () => renderMaps(regions, options));
  }
  if (view === 'arenas') {
    const result = target === undefined ? arenas(here()) : target.arenas(there(target));
    return print(result, () => renderArenas(result, options));
  }
  if (view === 'params') {
    const result = target === undefined ? mallocParams(here()) : target.mallocParams(there(target));
    return print(result, () => renderParams(result, options));
  }
  if (view === 'doctor') {
    const result = target === undefined ? doctor(attempts) : target.doctor(attempts);
    // Its title and first line already say which process it is.
    return write(choice.format === 'json' ? toJSON(result) : renderDoctor(result, options));
  }
  if (view === 'walk') {
    const arena = choice.arena ?? 'all';
    const walk = target === undefined ? walkHeap({ arena, ...attempts }) : target.walk({ arena, snapshot: there(target) });
    return print(walk, () => renderWalk(walk, options), walk);
  }
  if (view === 'vis') {
    const result = target === undefined ? vis(choice.vis, here()) : target.vis(choice.vis, there(target));
    return print(result, () => renderVis(result, options), result);
  }
  const result = target === undefined ? bins(here()) : target.bins(there(target));
  const shown = choice.arena === 'all' ? result : { ...result, arenas: result.arenas.filter((a) => a.kind === 'main') };
  const others = result.arenas.length - shown.arenas.length;
  print(shown, () => renderBins(shown, options) + (others === 0 ? '' : `\n\n${others} thread arena${others === 1 ? '' : 's'} not shown: ${allArenas}`));
}

/** doctor: this process (malloc_trim(0) after, with `trim`) or `pid`'s, its snapshot taking up to `attempts` copies. */
export function showDoctor(pid: number | undefined, trim: boolean, json: boolean, attempts?: number): void {
  const other = target(pid);
  const result = other === undefined ? doctor({ trim, attempts }) : other.doctor({ attempts });
  write(json ? toJSON(result) : renderDoctor(result, terminalOptions(process.stdout)));
}

/** exec: starts `args`, shows `view` of it once it is `ready`, then stops it (or, with `keep`, waits for its end). */
export async function execView(view: ViewName, choice: ViewChoice, args: readonly string[], ready: Readiness, keep: boolean): Promise<void> {
  const child = await startChild(args[0], args.slice(1), ready, process.stderr);
  try {
    showView(view, choice, attach(child.pid), `heapscope exec --command bins --arena all -- ${commandLine(args)}`);
  } catch (error) {
    await child.stop();
    throw error;
  }
  await (keep ? child.ended() : child.stop());
}
