// Findings written as rules: each rule looks at figures measured in this run
// and says its sentences, or nothing when it does not apply. An experiment's
// findings.ts lists its rules in the order their sentences are printed.

/** The sentences one rule says: one, several, or none (undefined or []). */
export type Rule<Facts> = (facts: Facts) => string | readonly string[] | undefined;

/** The sentences of every rule that applies, in the rules' order. */
export function say<Facts>(rules: readonly Rule<Facts>[], facts: Facts): string[] {
  return rules.flatMap((rule) => rule(facts) ?? []);
}
