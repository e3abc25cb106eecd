import { describe, expect, it } from 'vitest';
import { experiment, experiments, run } from '../lib/experiments/run';
import { checkTunables, tunablesEnv } from '../lib/experiments/tunables';

describe('run', () => {
  it('knows its experiments by name', () => {
    expect(experiments().length).toBeGreaterThan(0);
    for (const e of experiments()) expect(experiment(e.name)).toBe(e);
    expect(() => experiment('nope')).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_EXPERIMENT' }));
  });

  it('refuses an unknown tunable or a bad value before anything runs', async () => {
    await expect(run('chunk-sizes', { tunables: { 'glibc.malloc.nope': 1 } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
    await expect(run('chunk-sizes', { tunables: { 'glibc.malloc.tcache_count': -1 } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
    await expect(run('chunk-sizes', { tunables: { 'glibc.malloc.tcache_count': 70000 } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
    await expect(run('chunk-sizes', { isolated: false, tunables: { 'glibc.malloc.tcache_count': 1 } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_TUNABLE' });
  });

  it('passes tunables to the child and reports them', async () => {
    const result = await run('chunk-sizes', { tunables: { 'glibc.malloc.tcache_count': 0 } });
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.tunables['glibc.malloc.tcache_count']).toBe('0');
  });

  it('merges tunables over the inherited ones', () => {
    expect(tunablesEnv(checkTunables({ 'glibc.malloc.top_pad': 0 }), 'glibc.malloc.top_pad=5:glibc.malloc.check=0'))
      .toBe('glibc.malloc.top_pad=0:glibc.malloc.check=0');
  });
});
