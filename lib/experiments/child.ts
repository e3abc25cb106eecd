// Entry point of an isolated run: runs one experiment and writes the result
// to stdout with v8.serialize, which keeps bigints as bigints.
import v8 from 'node:v8';
import { experiment, runHere } from './here';
import type { ExperimentName } from './registry';

async function main(): Promise<void> {
  let message: unknown;
  try {
    // experiment() checks the name at run time.
    message = { result: await runHere(experiment(process.argv[2] as ExperimentName), true) };
  } catch (error) {
    const e = error as Error & { code?: string };
    message = { error: { code: e.code ?? 'ERR_EXPERIMENT_FAILED', message: e.stack ?? e.message } };
  }
  process.stdout.write(v8.serialize(message));
}

void main();
