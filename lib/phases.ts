// Rows that run in phases (an experiment's cases, one after another).

/** Runs of rows of one phase, by index (`to` inclusive), in the order they ran: where the charts' phase bands (and the terminal's phase marks) go. */
export function phaseRuns<P>(rows: readonly { phase: P }[]): { phase: P; from: number; to: number }[] {
  const runs: { phase: P; from: number; to: number }[] = [];
  rows.forEach((r, i) => {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.phase === r.phase) last.to = i;
    else runs.push({ phase: r.phase, from: i, to: i });
  });
  return runs;
}
