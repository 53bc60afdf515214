/** Where JSON text goes, a chunk at a time (a stream, or a test's collector). */
export interface TextSink {
  write(text: string): unknown;
}

type Frame =
  | { kind: 'array'; ref: object; values: unknown[]; i: number; depth: number }
  | { kind: 'object'; ref: object; obj: Record<string, unknown>; keys: string[]; i: number; depth: number; wrote: boolean };

/**
 * Writes `value` to `out` as exactly the text `JSON.stringify(value, null, 2)` gives, but in
 * chunks of about `chunkChars` characters and without recursion: an answer larger than the
 * longest string V8 can build (about 512 MiB), or nested deeper than the stack allows, is still
 * written whole. Throws TypeError where JSON.stringify would (a cycle, a BigInt), possibly after
 * writing a first part.
 */
export function writeJson(out: TextSink, value: unknown, chunkChars = 1 << 20): void {
  const parts: string[] = [];
  let pending = 0;
  const write = (text: string) => {
    parts.push(text);
    pending += text.length;
    if (pending >= chunkChars) {
      out.write(parts.join(''));
      parts.length = 0;
      pending = 0;
    }
  };
  const stack: Frame[] = [];
  const seen = new Set<object>();
  const emit = (v: unknown, depth: number) => {
    if (v === null) return write('null');
    if (typeof v === 'object') {
      if (seen.has(v)) throw new TypeError('Converting circular structure to JSON');
      seen.add(v);
      if (Array.isArray(v)) {
        stack.push({ kind: 'array', ref: v, values: v, i: 0, depth });
        return write('[');
      }
      const obj = v as Record<string, unknown>;
      stack.push({ kind: 'object', ref: v, obj, keys: Object.keys(obj), i: 0, depth, wrote: false });
      return write('{');
    }
    // Strings, numbers, booleans: JSON.stringify's own text (escapes, -0, NaN as null); throws for BigInt.
    return write(JSON.stringify(v));
  };
  const top = prepare(value, '');
  if (omitted(top)) {
    out.write('undefined');
    return;
  }
  emit(top, 0);
  while (stack.length > 0) {
    const f = stack[stack.length - 1] as Frame;
    if (f.kind === 'array') {
      if (f.i < f.values.length) {
        const v = prepare(f.values[f.i], String(f.i));
        write(`${f.i === 0 ? '\n' : ',\n'}${indent(f.depth + 1)}`);
        f.i += 1;
        if (omitted(v)) write('null');
        else emit(v, f.depth + 1);
      } else {
        stack.pop();
        seen.delete(f.ref);
        write(f.values.length > 0 ? `\n${indent(f.depth)}]` : ']');
      }
      continue;
    }
    if (f.i < f.keys.length) {
      const key = f.keys[f.i] as string;
      f.i += 1;
      const v = prepare(f.obj[key], key);
      if (omitted(v)) continue;
      write(`${f.wrote ? ',\n' : '\n'}${indent(f.depth + 1)}${JSON.stringify(key)}: `);
      f.wrote = true;
      emit(v, f.depth + 1);
    } else {
      stack.pop();
      seen.delete(f.ref);
      write(f.wrote ? `\n${indent(f.depth)}}` : '}');
    }
  }
  if (parts.length > 0) out.write(parts.join(''));
}

/** What JSON.stringify serialises in place of `v`: its toJSON(), and boxed primitives unboxed. */
function prepare(v: unknown, key: string): unknown {
  let out = v;
  if (out !== null && (typeof out === 'object' || typeof out === 'bigint')) {
    const toJSON = (out as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') out = (toJSON as (k: string) => unknown).call(out, key);
  }
  if (out instanceof Number) return Number(out);
  if (out instanceof String) return String(out);
  if (out instanceof Boolean) return out.valueOf();
  return out;
}

/** Values JSON.stringify leaves out of objects (and writes as null in arrays). */
function omitted(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

const indents: string[] = [];
function indent(depth: number): string {
  let s = indents[depth];
  if (s === undefined) {
    s = '  '.repeat(depth);
    if (depth < 256) indents[depth] = s;
  }
  return s;
}
