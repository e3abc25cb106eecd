// Entry point of an isolated run: runs one experiment and writes the result
// with v8.serialize, which keeps bigints as bigints, to a pipe of its own
// (RESULT_FD): stdout and stderr are not ours alone.
import fs from 'node:fs';
import v8 from 'node:v8';
import { experiment, runHere } from './here';
import type { ExperimentName } from './registry';
import { RESULT_FD } from './result-channel';

async function main(): Promise<void> {
  let message: unknown;
  try {
    // experiment() checks the name at run time.
    message = { result: await runHere(experiment(process.argv[2] as ExperimentName), true) };
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
