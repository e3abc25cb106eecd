// Entry point of an isolated run: runs one experiment and writes the result
// with v8.serialize, which keeps bigints as bigints, to a pipe of its own
// (RESULT_FD): stdout and stderr are not ours alone.
import fs from 'node:fs';
import v8 from 'node:v8';
import { breakRoom, breakRoomText } from '../break-room';
import { experiment, runHere } from './here';
import type { ExperimentName } from './registry';
import { REFUSE_BLOCKED, RESULT_FD } from './result-channel';

/** More than any experiment grows the heap (mmap-threshold, the most, about 46 MiB). */
const NEEDED_ROOM = 256n << 20n;

function blocked(): string | undefined {
  if (process.argv[3] !== REFUSE_BLOCKED) return undefined;
  const room = breakRoom();
  return room.room < NEEDED_ROOM ? breakRoomText(room) : undefined;
}

async function main(): Promise<void> {
  let message: unknown;
  try {
    // experiment() checks the name at run time.
    const chosen = experiment(process.argv[2] as ExperimentName);
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
