// Directories, not git: making and removing the folders worktrees live in, and path arithmetic
// that follows symbolic links only as far as the path exists.
import fs from 'node:fs';
import path from 'node:path';
import { ValidationError } from '@orch/store';

/**
 * `mkdir -p`, one level at a time: returns the first directory it created (undefined if all
 * existed). Node's recursive mkdirSync can spin forever on some paths (e.g. under /proc); this
 * fails with a clear error instead.
 *
 * @throws ValidationError (2) when a directory cannot be created.
 */
export function makeDirs(dir: string): string | undefined {
  const missing: string[] = [];
  let d = path.resolve(dir);
  while (!fs.existsSync(d)) {
    missing.unshift(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const m of missing) {
    try {
      fs.mkdirSync(m);
    } catch (err) {
      throw new ValidationError(`cannot create directory ${m}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, [
        { path: '--workspace-root', message: 'cannot create the directory' },
      ]);
    }
  }
  return missing[0];
}

/** Removes `dir` and its parents while they are empty, stopping at `stop` (never removed). */
export function removeEmptyParents(dir: string, stop: string): void {
  for (let d = dir; d.startsWith(`${stop}${path.sep}`); d = path.dirname(d)) {
    try {
      fs.rmdirSync(d);
    } catch {
      return;
    }
  }
}

/** Whether `dir` is `parent` or lies below it (plain path arithmetic; `..foo` is a name, not a way up). */
export function isInside(parent: string, dir: string): boolean {
  const rel = path.relative(parent, dir);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** `dir` with symbolic links resolved in the part of it that exists (the rest may not exist yet). */
export function realPathSoFar(dir: string): string {
  let existing = path.resolve(dir);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(existing), ...rest);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return path.resolve(dir);
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}
