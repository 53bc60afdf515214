// The repository itself: where its top and its git directories are, and what it tracks or ignores.
import fs from 'node:fs';
import path from 'node:path';
import { ValidationError } from '@orch/store';
import { probe, run } from './run.ts';

/**
 * The top directory of the repository containing `dir`.
 *
 * @throws ValidationError (2) when `dir` does not exist or is not in a git repository.
 */
export async function repoRoot(dir: string): Promise<string> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ValidationError(`--repo-path ${dir}: no such directory`, [{ path: '--repo-path', message: 'no such directory' }]);
  }
  const top = await probe(dir, ['rev-parse', '--show-toplevel']);
  if (top === undefined || top.trim() === '') {
    throw new ValidationError(`--repo-path ${dir} is not inside a git repository`, [{ path: '--repo-path', message: 'not a git repository' }]);
  }
  return fs.realpathSync(top.trim());
}

/** The git directory of the worktree at `root` (its own, for a linked worktree), absolute. */
export async function gitDir(root: string): Promise<string> {
  return path.resolve(root, (await run(root, ['rev-parse', '--git-dir'])).trim());
}

/** The repository's common git directory (shared by all its worktrees), absolute. */
export async function gitCommonDir(root: string): Promise<string> {
  return path.resolve(root, (await run(root, ['rev-parse', '--git-common-dir'])).trim());
}

/** Whether git tracks any file at or under `rel` (a path relative to `root`). */
export async function isTracked(root: string, rel: string): Promise<boolean> {
  return (await run(root, ['ls-files', '--', rel])).trim() !== '';
}

/** Whether git's ignore rules (not the index) ignore `rel` (a path relative to `root`). */
export async function isIgnored(root: string, rel: string): Promise<boolean> {
  return (await probe(root, ['check-ignore', '--quiet', '--no-index', '--', rel])) !== undefined;
}
