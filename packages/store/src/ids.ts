import { customAlphabet } from 'nanoid';
import { z } from 'zod';

/** Generates ids, injected so tests can make them predictable. */
export interface IdGenerator {
  /** A new random id starting with `prefix` and `_`, e.g. `th_4kq8...`. */
  next(prefix: string): string;
}

// Letters and digits only: a generated id never starts with `-` and is safe in paths and branch names.
const randomPart = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 16);

/** Random ids from nanoid (16 alphanumeric characters, about 95 bits). */
export const randomIds: IdGenerator = {
  next: (prefix) => `${prefix}_${randomPart()}`,
};

/** Ids `prefix_1`, `prefix_2`, ... in call order, for deterministic tests. */
export function sequentialIds(): IdGenerator {
  let n = 0;
  return { next: (prefix) => `${prefix}_${++n}` };
}

/** Longest id or name accepted anywhere. */
export const MAX_ID_LENGTH = 128;

const ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * An id or agent name given by a user: letters, digits, `.`, `_`, `-`; it must start with a
 * letter, digit or `_`, must not contain `..`, and is at most 128 characters. Ids end up in file
 * paths and git branch names, so this is a security boundary.
 */
export const idSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_ID_LENGTH, `must be at most ${MAX_ID_LENGTH} characters`)
  .regex(ID_PATTERN, 'may contain only letters, digits, ".", "_" and "-", and must not start with "-" or "."')
  .refine((s) => !s.includes('..'), 'must not contain ".."');
