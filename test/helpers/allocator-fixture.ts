// A C fixture built and started: by default test/fixtures/allocator-state.c,
// a process with chunks in every kind of list and three threads with their
// own arenas. Each fixture stops at a quiet point (it prints "ready") and
// stays there until its stdin closes.
import { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startChild } from './gdb';
import { buildFixtures } from './target';

export interface AllocatorFixture {
  child: ChildProcess;
  /** Ends the process and removes its build. */
  stop(): void;
}

/** Builds (with cc's `flags`) and starts test/fixtures/NAME.c, or returns why it cannot (no C compiler). */
export async function startAllocatorFixture(name = 'allocator-state', flags: readonly string[] = []): Promise<AllocatorFixture | string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heapscope-state-'));
  const { programs, noCompiler } = buildFixtures(dir, [name], { flags });
  if (noCompiler !== undefined) {
    fs.rmSync(dir, { recursive: true, force: true });
    return noCompiler;
  }
  const child = await startChild(programs[name], []);
  return {
    child,
    stop() {
      child.stdin?.end();
      child.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
