/**
 * The shapes docs/json.md writes in its tables (`{a, b: Name, c: [Name + {d}], e?}`), parsed so
 * test/docs.test.ts can hold them against real --json output. Grammar:
 *   value  := object | '[' value ']' | Name ['+' object]
 *   object := '{' [field {',' field}] '}'
 *   field  := key ['?'] [':' value]
 * A key without a value may hold anything; `?` marks a key that may be absent (and may come anywhere).
 */

export type Shape = { kind: 'object'; fields: Field[] } | { kind: 'array'; of: Shape } | { kind: 'ref'; name: string; extra: Field[] } | { kind: 'any' };

export interface Field {
  key: string;
  optional: boolean;
  shape: Shape;
}

export function parseShape(text: string): Shape {
  const tokens = text.match(/[A-Za-z_][A-Za-z0-9_]*|[{}[\],:?+]/g) ?? [];
  let i = 0;
  const peek = () => tokens[i];
  const take = (want?: string): string => {
    const t = tokens[i++];
    if (t === undefined || (want !== undefined && t !== want)) throw new Error(`shape ${text}: expected ${want ?? 'more'} at token ${i}, got ${t}`);
    return t;
  };
  const object = (): Field[] => {
    take('{');
    const fields: Field[] = [];
    while (peek() !== '}') {
      const key = take();
      const optional = peek() === '?' ? (take('?'), true) : false;
      const shape: Shape = peek() === ':' ? (take(':'), value()) : { kind: 'any' };
      fields.push({ key, optional, shape });
      if (peek() === ',') take(',');
    }
    take('}');
    return fields;
  };
  const value = (): Shape => {
    if (peek() === '{') return { kind: 'object', fields: object() };
    if (peek() === '[') {
      take('[');
      const of = value();
      take(']');
      return { kind: 'array', of };
    }
    const name = take();
    if (!/^[A-Z]/.test(name)) throw new Error(`shape ${text}: ${name} is not an object name`);
    return { kind: 'ref', name, extra: peek() === '+' ? (take('+'), object()) : [] };
  };
  const shape = value();
  if (i !== tokens.length) throw new Error(`shape ${text}: unexpected ${tokens[i]}`);
  return shape;
}

/** Every difference between `value` and `shape` (empty: it fits). `null` fits any shape. */
export function mismatches(shape: Shape, value: unknown, objects: Map<string, Shape>, where = '$'): string[] {
  if (value === null || shape.kind === 'any') return [];
  if (shape.kind === 'ref') {
    const base = objects.get(shape.name);
    if (base?.kind !== 'object') return [`${where}: no object ${shape.name} in the Objects table`];
    return mismatches({ kind: 'object', fields: [...base.fields, ...shape.extra] }, value, objects, where);
  }
  if (shape.kind === 'array') {
    if (!Array.isArray(value)) return [`${where}: documented as an array, is ${JSON.stringify(value)?.slice(0, 80)}`];
    return value.flatMap((v, n) => mismatches(shape.of, v, objects, `${where}[${n}]`));
  }
  if (typeof value !== 'object' || Array.isArray(value)) return [`${where}: documented as an object, is ${JSON.stringify(value)?.slice(0, 80)}`];
  const record = value as Record<string, unknown>;
  // Required keys must come in the documented order; optional ones may sit anywhere among them.
  const expected = shape.fields.filter((f) => !f.optional || f.key in record).map((f) => f.key);
  const required = shape.fields.filter((f) => !f.optional).map((f) => f.key);
  const actual = Object.keys(record);
  const sameSet = expected.length === actual.length && expected.every((k) => actual.includes(k));
  const inOrder = actual.filter((k) => required.includes(k)).join(', ') === required.join(', ');
  const out = sameSet && inOrder ? [] : [`${where}: documented keys {${expected.join(', ')}}, real keys {${actual.join(', ')}}`];
  for (const f of shape.fields) if (f.key in record) out.push(...mismatches(f.shape, record[f.key], objects, `${where}.${f.key}`));
  return out;
}

/** The shape tables of a markdown page: `**Name**` rows (objects) and `` `label` `` rows (outputs). */
export function shapeTables(markdown: string): { objects: Map<string, Shape>; outputs: Map<string, Shape> } {
  const objects = new Map<string, Shape>();
  const outputs = new Map<string, Shape>();
  for (const m of markdown.matchAll(/^\| (.+?) \| `(\{.*\})` \|$/gm)) {
    const [first, text] = [m[1]!, m[2]!];
    const name = /^\*\*([A-Z]\w*)\*\*$/.exec(first);
    if (name) objects.set(name[1]!, parseShape(text));
    else outputs.set(first.replace(/`/g, '').trim(), parseShape(text));
  }
  return { objects, outputs };
}
