// What an experiment's run measured, as plain data: the shape every view of a result reads.

/** Where and under what settings an experiment ran. */
export interface Environment {
  glibc: string;
  node: string;
  /** GLIBC_TUNABLES in force in the process that ran it. */
  tunables: Record<string, string>;
  /** Ran in a fresh child process. */
  isolated: boolean;
  /** Node's command-line flags in that process (an isolated run adds --single-threaded). */
  execArgv: string[];
  pid: number;
  pageSize: number;
  /** The statistics call that answered: mallinfo2 (glibc ≥ 2.33) or mallinfo. */
  mallinfo: 'mallinfo2' | 'mallinfo';
  /**
   * An isolated run's children that refused to run it because their program
   * break had no room to grow, each with the room it measured; absent when
   * the first child ran it.
   */
  refusedChildren?: string[];
}

/** What an experiment's run returns: measured rows and sentences computed from them. */
export interface ExperimentOutput<Row extends object = object> {
  rows: Row[];
  /** Sentences stating what was measured, with the numbers. */
  findings: string[];
  /** Where the allocator departed from the simple rule, with the measured reason. */
  surprises: string[];
}

/** What an experiment's run measured, with where and how it ran: plain data. */
export interface ResultData<Row extends object = object, Name extends string = string> extends ExperimentOutput<Row> {
  name: Name;
  question: string;
  environment: Environment;
}

/**
 * The result of `run(name)`: the same shape in-process and isolated, plus
 * its views, each made from the same data.
 */
export interface ExperimentResult<Row extends object = object, Name extends string = string> extends ResultData<Row, Name> {
  /** A Markdown section: the question, findings, surprises and a table of the rows. */
  toMarkdown(): string;
  /** A self-contained HTML fragment (inline SVG, no scripts). */
  toHTML(): string;
  /** The experiment's chart as a standalone SVG document, where it has one. */
  toSVG(): string | undefined;
  /** Plain data, bigints as "0x…" strings. */
  toJSON(): unknown;
}
