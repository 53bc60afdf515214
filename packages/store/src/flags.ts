import { z } from 'zod';

/** Largest body or payload accepted, in bytes of UTF-8 (1 MiB). Documented in docs/guide.md (Limits). */
export const MAX_TEXT_BYTES = 1024 * 1024;

/**
 * A whole number given as a flag string, within [min, max]. Rejects `-5`, `1e12`, `3.5`, `ten`.
 */
export function intFlag(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^-?\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n) && n >= min && n <= max, `must be a whole number from ${min} to ${max}`);
}

/** Free text that must not be empty or only whitespace, at most MAX_TEXT_BYTES. */
export function textFlag(what = 'text') {
  return z
    .string()
    .refine((s) => s.trim().length > 0, `${what} must not be empty`)
    .refine((s) => Buffer.byteLength(s, 'utf8') <= MAX_TEXT_BYTES, `${what} must be at most ${MAX_TEXT_BYTES} bytes`)
    .refine((s) => !s.includes('\u0000'), `${what} must not contain NUL characters`);
}

/** A short single-line label (subjects, titles): not empty, at most `max` characters, no control characters. */
export function labelFlag(max = 500) {
  return z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must be one line without control characters');
}

/** Deepest nesting of arrays and objects accepted in any JSON we take in. Documented in docs/guide.md (Limits). */
export const MAX_JSON_DEPTH = 64;

/**
 * How deeply `text` (JSON) nests arrays and objects, counted without parsing and without
 * recursion, so hostile input cannot overflow the stack here. Stops counting past `limit`.
 */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--;
  }
  return max;
}

/**
 * Parses JSON text whose nesting is at most MAX_JSON_DEPTH levels.
 * @throws Error with a message naming the limit (callers turn it into a validation issue).
 */
export function parseBoundedJson(text: string): unknown {
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw new Error(`nests deeper than ${MAX_JSON_DEPTH} levels`);
  return JSON.parse(text) as unknown;
}

/** A JSON object given as text (`--payload-json`), parsed. */
export const jsonObjectFlag = z
  .string()
  .refine((s) => Buffer.byteLength(s, 'utf8') <= MAX_TEXT_BYTES, `must be at most ${MAX_TEXT_BYTES} bytes`)
  .transform((s, ctx) => {
    if (jsonDepth(s) > MAX_JSON_DEPTH) {
      ctx.addIssue({ code: 'custom', message: `must nest at most ${MAX_JSON_DEPTH} levels of arrays and objects` });
      return z.NEVER;
    }
    try {
      const value: unknown = JSON.parse(s);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object, e.g. {"key": "value"}' });
        return z.NEVER;
      }
      return value as Record<string, unknown>;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(err as Error).message})` });
      return z.NEVER;
    }
  });

/** Any JSON value given as text (`--acceptance-json`), parsed. */
export const jsonValueFlag = z
  .string()
  .refine((s) => Buffer.byteLength(s, 'utf8') <= MAX_TEXT_BYTES, `must be at most ${MAX_TEXT_BYTES} bytes`)
  .transform((s, ctx) => {
    if (jsonDepth(s) > MAX_JSON_DEPTH) {
      ctx.addIssue({ code: 'custom', message: `must nest at most ${MAX_JSON_DEPTH} levels of arrays and objects` });
      return z.NEVER;
    }
    try {
      return JSON.parse(s) as unknown;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(err as Error).message})` });
      return z.NEVER;
    }
  });

/**
 * How deeply a parsed value nests arrays and objects, counted without recursion (so a hostile
 * value cannot overflow the stack here). Stops counting past `limit`.
 */
export function jsonValueDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let max = 0;
  const stack: { v: unknown; d: number }[] = [{ v: value, d: 0 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop() as { v: unknown; d: number };
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > max) {
      max = depth;
      if (max > limit) return max;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push({ v: child, d: depth });
    }
  }
  return max;
}

/** What a view shows in place of stored JSON it cannot safely give back (too deep, not JSON). */
export interface UnreadableJson {
  unreadable_json: { reason: string; bytes: number; raw: string };
}

/**
 * Parses JSON text read back from the database. Rows written before the depth bound (or by hand)
 * may nest deeper than MAX_JSON_DEPTH or not parse at all: instead of crashing every later read,
 * such text comes back as an `{unreadable_json: {reason, bytes, raw}}` marker holding the raw text.
 */
export function parseStoredJson(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (jsonDepth(text, maxDepth) > maxDepth) {
    return { unreadable_json: { reason: `nests deeper than ${maxDepth} levels`, bytes, raw: text } } satisfies UnreadableJson;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return { unreadable_json: { reason: `not valid JSON (${(err as Error).message})`, bytes, raw: text } } satisfies UnreadableJson;
  }
}
