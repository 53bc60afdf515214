import { z } from 'zod';

/** Generates ids, injected so tests can make them predictable. */
export interface IdGenerator {
  /** A new random id starting with `prefix` and `_`, e.g. `th_4kq8...`. */
  next(prefix: string): string;
}

// Letters and digits only: a generated id never starts with `-` and is safe in paths and branch names.
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * `size` characters drawn uniformly from ALPHABET with the platform's cryptographic generator
 * (nanoid's method: 6 random bits per try, a value past the alphabet is drawn again). Web Crypto
 * is loaded on first use, so a command that makes no id (most reads, progress, wait) never loads
 * Node's crypto module, which costs about 3 ms of start-up.
 */
export function randomPart(size = 16): string {
  let id = '';
  while (id.length < size) {
    const bytes = globalThis.crypto.getRandomValues(new Uint8Array(Math.ceil((1.6 * 63 * (size - id.length)) / ALPHABET.length)));
    for (const b of bytes) {
      const i = b & 63;
      if (i < ALPHABET.length) id += ALPHABET[i];
      if (id.length === size) break;
    }
  }
  return id;
}

/** Random ids (16 alphanumeric characters, about 95 bits). */
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
