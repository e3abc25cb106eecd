// The MIME bundles a notebook shows, straight from the library in this
// process, where no kernel is needed (test/notebook.test.ts shows them
// through Jupyter).
import { describe, expect, it } from 'vitest';
import { hex } from '../lib/format';
import { malloc, maps, run } from '../lib/index';

describe('MIME bundles', () => {
  const DISPLAY = Symbol.for('Jupyter.display');
  type Displayable = { [DISPLAY]: () => Record<string, unknown>; _toMime: () => Record<string, unknown> };

  it('shows an allocation as read now, and a freed one without reading it', () => {
    const a = malloc(10);
    const bundle = (a as unknown as Displayable)[DISPLAY]();
    expect(Object.keys(bundle).sort()).toEqual(['application/json', 'text/html', 'text/plain']);
    expect(bundle['application/json']).toMatchObject({
      address: hex(a.address), requested: 10, call: 'malloc', freed: false, usableSize: a.usableSize,
      chunk: { address: hex(a.chunk.address), size: a.chunk.size }, region: { kind: a.region!.kind },
    });
    expect(bundle['text/html']).toContain(hex(a.address));
    // Read again, so only what cannot have moved meanwhile is compared (the heap region can grow).
    const again = (a as unknown as Displayable)._toMime();
    expect(Object.keys(again)).toEqual(Object.keys(bundle));
    expect(again['application/json']).toMatchObject({ address: hex(a.address), usableSize: a.usableSize });
    a.free();
    const after = (a as unknown as Displayable)[DISPLAY]();
    expect(after['application/json']).toEqual({ address: hex(a.address), requested: 10, call: 'malloc', freed: true });
    expect(after['text/html']).toContain('freed');
  });

  it('gives maps() a table without changing the array as data', () => {
    const regions = maps();
    expect(Object.keys(regions)).toHaveLength(regions.length);
    const bundle = (regions as unknown as Displayable)[DISPLAY]();
    expect(bundle['application/json']).toEqual(JSON.parse(JSON.stringify(regions, (_k, v: unknown) => typeof v === 'bigint' ? hex(v) : v)));
    expect(String(bundle['text/html']).match(/<tr>/g)).toHaveLength(regions.length + 1);
    expect(String(bundle['text/plain']).split('\n')).toHaveLength(regions.length + 1);
    expect((regions as unknown as Displayable)._toMime()).toEqual(bundle);
  });

  it("shows a result with its own HTML, its chart when it has one, and its data", async () => {
    const result = await run('chunk-sizes');
    const bundle = (result as unknown as Displayable)[DISPLAY]();
    expect(bundle['text/html']).toBe(result.toHTML());
    expect(bundle['application/json']).toEqual(result.toJSON());
    const svg = result.toSVG();
    if (svg === undefined) expect(bundle).not.toHaveProperty(['image/svg+xml']);
    else expect(bundle['image/svg+xml']).toBe(svg);
    expect((result as unknown as Displayable)._toMime()).toEqual(bundle);
  }, 60_000);
});
