import { beforeAll, describe, expect, it } from 'vitest';
import { experiments, run } from '../lib/experiments/run';
import { ExperimentResult } from '../lib/experiments/types';
import { spawnSync } from 'node:child_process';
import { commandLine, withArticle } from '../lib/format';
import { heapRoomNotNeeded } from './helpers/heap-room';
import { SYNC_CHILD } from './helpers/sync-child';
import { foreignEnv } from './helpers/foreign-env';

// Words, a shell and experiments run in children: no live heap of this process is read.
heapRoomNotNeeded();

describe('withArticle', () => {
  it('says "an" where the number is said with a vowel first: eight, eleven, eighteen, eighty, eight hundred …', () => {
    for (const n of [8, 11, 18, 80, 88, 800, 8000, 8192, 11000, 18000, 80000, 800000, 8000000, 11000000]) {
      expect(withArticle(n), String(n)).toBe(`an ${n}`);
    }
    expect(withArticle('80-byte')).toBe('an 80-byte');
    expect(withArticle('8.0 KiB (8192 B)')).toBe('an 8.0 KiB (8192 B)');
    expect(withArticle('18,000')).toBe('an 18,000');
  });

  it('says "a" for every other number: one hundred eighty, one thousand eight hundred …', () => {
    for (const n of [0, 1, 16, 24, 32, 48, 110, 180, 1100, 1500, 1800, 4096, 110000, 180000, 1052672]) {
      expect(withArticle(n), String(n)).toBe(`a ${n}`);
    }
    expect(withArticle(16n)).toBe('a 16');
    expect(withArticle('1.0 MiB (1052672 B)')).toBe('a 1.0 MiB (1052672 B)');
  });

  it('takes a vowel letter for words, and capitalises to start a sentence', () => {
    expect(withArticle('anonymous')).toBe('an anonymous');
    expect(withArticle('fastbin')).toBe('a fastbin');
    expect(withArticle(80, true)).toBe('An 80');
    expect(withArticle(16, true)).toBe('A 16');
  });
});

describe('commandLine', () => {
  it('quotes each argument so that bash reads back the very same arguments, control characters escaped', () => {
    const args = ['python3', '-c', "print('x')", 'two words', '', 'a\x1b[31mred\n', 'ok=1,2:3@4%5+/.-_', '$HOME', 'back\\slash', '\u009bcsi', 'naïve'];
    const line = commandLine(args);
    expect(line.startsWith('python3 -c ')).toBe(true);
    expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    const bash = spawnSync('bash', ['-c', `printf '%s\\0' ${line}`], { ...SYNC_CHILD, encoding: 'utf8', env: foreignEnv({ ...process.env, LC_ALL: 'C.UTF-8' }) });
    expect(bash.status, bash.stderr).toBe(0);
    expect(bash.stdout.split('\0').slice(0, -1)).toEqual(args);
  });
});

describe('the articles in every experiment\'s sentences', () => {
  const results: ExperimentResult[] = [];
  beforeAll(async () => {
    for (const e of experiments()) results.push(await run(e.name));
  }, 120_000);

  it('put "a" or "an" before a number as the number is said', () => {
    let checked = 0;
    for (const result of results) {
      for (const sentence of [...result.findings, ...result.surprises]) {
        for (const m of sentence.matchAll(/\b(a|an|A|An) (\d[\d.,]*)/g)) {
          expect(m[0], `${result.name}: ${sentence}`).toBe(withArticle(m[2], m[1].startsWith('A')));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(10);
  });
});
