import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeJson } from './json-stream.ts';

function collect(value: unknown, chunkChars?: number): { text: string; writes: number } {
  const parts: string[] = [];
  writeJson({ write: (t: string) => parts.push(t) }, value, chunkChars);
  return { text: parts.join(''), writes: parts.length };
}

describe('writeJson', () => {
  it('writes exactly what JSON.stringify(value, null, 2) gives, for any JSON-like value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 1, max: 64 }), (value, chunk) => {
        expect(collect(value, chunk).text).toBe(JSON.stringify(value, null, 2));
      }),
      { seed: 1234, numRuns: 300 },
    );
  });

  it('follows JSON.stringify on the awkward cases: undefined, functions, symbols, toJSON, boxed values, -0, NaN', () => {
    const sym = Symbol('s');
    const cases: unknown[] = [
      { a: undefined, b: () => 1, c: sym, d: 1, [sym]: 'hidden' },
      [undefined, () => 1, sym, 2],
      { when: new Date(0), n: new Number(3), s: new String('x'), t: new Boolean(false) },
      { z: -0, nan: Number.NaN, inf: Number.POSITIVE_INFINITY },
      { nested: { empty: {}, list: [] }, text: 'line\nbreak "quoted" \u0001 \u2028' },
      { toJSON: () => ({ replaced: true }) },
      [],
      {},
      'top',
      7,
      null,
    ];
    for (const value of cases) expect(collect(value, 3).text).toBe(JSON.stringify(value, null, 2));
  });

  it('throws as JSON.stringify does on a cycle or a BigInt', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => collect(cyclic)).toThrow(TypeError);
    expect(() => collect({ n: 1n })).toThrow(TypeError);
    // A shared (not cyclic) object is fine.
    const shared = { x: 1 };
    expect(collect({ a: shared, b: shared }).text).toBe(JSON.stringify({ a: shared, b: shared }, null, 2));
  });

  it('does not recurse: nesting deeper than the stack allows is written whole', () => {
    // Pretty-printed nesting grows quadratically (each level indents further), so 10,000 levels
    // already make 100 M characters; a JSON.stringify-style recursion of that depth inside a
    // nested call chain is what overflowed the stack.
    const DEPTH = 10_000;
    let deep: unknown = [];
    for (let i = 0; i < DEPTH; i++) deep = [deep];
    let chars = 0;
    let head = '';
    let tail = '';
    writeJson({ write: (t: string) => ((chars += t.length), head || (head = t.slice(0, 12)), (tail = t)) }, deep);
    expect(head).toBe('[\n  [\n    [\n');
    expect(tail.endsWith('\n  ]\n]')).toBe(true);
    // Each level opens and closes on its own line at its own indent; the innermost is "[]".
    let expected = 2;
    for (let d = 0; d < DEPTH; d++) expected += 6 + 4 * d;
    expect(chars).toBe(expected);
  });

  it('writes an answer larger than the longest string V8 can build, in bounded chunks', () => {
    // 90 bodies of 1 MiB of control characters: each escapes to 6 MiB, 540 MiB in all.
    const body = '\u0001'.repeat(1024 * 1024);
    const messages = Array.from({ length: 90 }, (_, id) => ({ id, body }));
    let chars = 0;
    let largest = 0;
    writeJson(
      {
        write: (t: string) => {
          chars += t.length;
          largest = Math.max(largest, t.length);
        },
      },
      { messages },
    );
    // More than the longest string V8 builds (2^29 - 24 characters): JSON.stringify fails here.
    expect(chars).toBeGreaterThan(2 ** 29);
    expect(largest).toBeLessThan(16 * 1024 * 1024);
  });
});
