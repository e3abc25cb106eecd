// The doctor's table of parameters, rendered from this process's own
// diagnosis, and from the same diagnosis as it reads where mp_ as the libc
// file initialises it could not be read: every state that compares a value
// with the initial one is then '?', never "as initialised" or "changed".
import { describe, expect, it } from 'vitest';
import { doctor } from '../../lib/index';
import { renderDoctor } from '../../lib/views/doctor';

const rowsOf = (text: string) => text.split('\n').filter((line) => /^(mmap_threshold|trim_threshold|top_pad|arena_max) /.test(line)).map((line) => line.trim().split(/ {2,}/));

describe("the doctor's parameters table", () => {
  it("says '?' for each state that needs the initial values where they could not be read, and what it read where they were", () => {
    const d = doctor();
    expect(d.params.initial).toBeDefined();
    const known = rowsOf(renderDoctor(d, { width: 120 }));
    expect(known.map((r) => r[0])).toEqual(['mmap_threshold', 'trim_threshold', 'top_pad', 'arena_max']);
    for (const [, , initial, state] of known.slice(0, 3)) {
      expect(initial).toMatch(/^\d+$/);
      expect(state).not.toBe('?');
    }
    const { initial: _initial, ...rest } = d.params;
    const unknown = rowsOf(renderDoctor({ ...d, params: { ...rest, initialReason: 'no name opens the libc file the process maps' } }, { width: 120 }));
    expect(unknown.slice(0, 3).map((r) => r.slice(2))).toEqual([['?', d.params.noDynThreshold ? 'set (no_dyn_threshold 1)' : '?'], ['?', '?'], ['?', '?']]);
    // arena_max's state is its own value's meaning, whatever the initial one.
    expect(unknown[3][3]).toBe(known[3][3]);
  });
});
