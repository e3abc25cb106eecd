// Entry point of an isolated run: runs one experiment and writes the result
// with v8.serialize, which keeps bigints as bigints, to a pipe of its own
// (RESULT_FD): stdout and stderr are not ours alone.
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { breakRoom, breakRoomText } from '../break-room';
import { HeapscopeError } from '../errors';
import { runHere } from './here';
import { REFUSE_BLOCKED, RESULT_FD } from './result-channel';
import type { Experiment } from './types';

/** More than any experiment grows the heap (mmap-threshold, the most, about 46 MiB). */
const NEEDED_ROOM = 256n << 20n;

function blocked(): string | undefined {
  if (process.argv[3] !== REFUSE_BLOCKED) return undefined;
  const room = breakRoom();
  return room.room < NEEDED_ROOM ? breakRoomText(room) : undefined;
}

/**
 * The experiment named `name`, from its own module alone: each experiment
 * lives in the directory named after it. run() checked the name against the
 * registry before starting this child; it is checked again here.
 */
function ownExperiment(name: string | undefined): Experiment {
  const file = name !== undefined && /^[a-z]+(-[a-z]+)*$/.test(name) ? path.join(__dirname, name, 'index.js') : undefined;
  const found = file !== undefined && fs.existsSync(file)
    ? Object.values(require(file) as Record<string, unknown>).find((e): e is Experiment => (e as Experiment | undefined)?.name === name)
    : undefined;
  if (found === undefined) throw new HeapscopeError('ERR_UNKNOWN_EXPERIMENT', `no experiment named ${JSON.stringify(name)}`);
  return found;
}

async function main(): Promise<void> {
  let message: unknown;
  try {
    const chosen = ownExperiment(process.argv[2]);
    const refusal = blocked();
    message = refusal !== undefined ? { blocked: refusal } : { result: await runHere(chosen, true) };
  } catch (error) {
    const e = error as Error & { code?: string };
    message = { error: { code: e.code ?? 'ERR_EXPERIMENT_FAILED', message: e.stack ?? e.message } };
  }
  const bytes = v8.serialize(message);
  for (let written = 0; written < bytes.length;) written += fs.writeSync(RESULT_FD, bytes, written);
  fs.closeSync(RESULT_FD);
  // Whatever else was loaded (a NODE_OPTIONS --require) may hold the event
  // loop open; the run is over.
  process.exit(0);
}

void main();
