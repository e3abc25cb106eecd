// Does malloc call the kernel (brk / mmap), or serve from memory it already
// holds? What is measured and the rows: measure.ts; what is said about them:
// findings.ts.
import type { Experiment, ExperimentContext } from '../types';
import type { KernelCallRow } from './measure';

export type { KernelCallRow, KernelStepRole, KernelVerdict } from './measure';

export const kernelCalls: Experiment<KernelCallRow, 'kernel-calls'> = {
  name: 'kernel-calls',
  question: 'Does malloc call the kernel (brk / mmap), or serve from memory it already holds?',
  // Freeing the 1 MiB mmapped chunk raises the dynamic mmap threshold for the rest of the process.
  isolatedByDefault: true,
  async run(context: ExperimentContext) {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    const measured = measure();
    return { rows: measured.rows, ...describeRows(measured, context.isolated) };
  },
};
