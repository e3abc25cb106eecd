// The shape every experiment shares.
import type { ExperimentOutput } from '../result-data';

export type { Environment, ExperimentOutput, ExperimentResult, ResultData } from '../result-data';

export interface ExperimentContext {
  isolated: boolean;
}

/** `Name` is the literal name, so the registry can map names to row types. */
export interface Experiment<Row extends object = object, Name extends string = string> {
  name: Name;
  question: string;
  /**
   * Run in a fresh child process unless asked otherwise: the experiment
   * changes process-wide state (frees mmapped chunks, which raises the
   * dynamic mmap threshold; starts threads, whose arenas stay) or needs a
   * heap nobody else has touched.
   */
  isolatedByDefault: boolean;
  /**
   * Its child takes several times as long as the others': when several
   * isolated runs share the cores, it starts first (results still print in
   * order), so that it does not end up running alone at the end.
   */
  startFirst?: boolean;
  run(context: ExperimentContext): ExperimentOutput<Row> | Promise<ExperimentOutput<Row>>;
}
