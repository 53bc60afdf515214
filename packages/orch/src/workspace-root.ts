// Where attempt worktrees may go (--workspace-root), and keeping that place out of the project's
// own files: git is told to ignore it when it lies inside the repository.
import fs from 'node:fs';
import path from 'node:path';
import { ValidationError } from '@orch/store';
import { isInside, makeDirs, realPathSoFar } from './dirs.ts';
import { gitCommonDir, gitDir, isIgnored, isTracked } from './git.ts';

/**
 * A workspace root must not be the repository itself, lie inside its git directory, hold tracked
 * files, or have control characters in its path: worktrees inside it would mix with the project's
 * own files (or git's). Symbolic links are followed first, so a link to the repository (or into
 * it) is judged by where it leads. Returns the root with links resolved: the place worktrees go.
 *
 * @throws ValidationError (2)
 */
export async function checkWorkspaceRoot(repo: string, dir: string): Promise<string> {
  if (/[\u0000-\u001f\u007f]/.test(dir)) {
    throw new ValidationError('--workspace-root must not contain control characters', [{ path: '--workspace-root', message: 'control characters' }]);
  }
  const real = realPathSoFar(dir);
  const shown = real === dir ? dir : `${dir} (which leads to ${real})`;
  const rel = path.relative(repo, real);
  if (rel === '') {
    throw new ValidationError(`--workspace-root ${shown} must not be the repository itself`, [{ path: '--workspace-root', message: 'is the repository' }]);
  }
  for (const dotGit of [await gitDir(repo), await gitCommonDir(repo)]) {
    const g = realPathSoFar(dotGit);
    if (isInside(g, real)) {
      throw new ValidationError(`--workspace-root ${shown} is inside the git directory ${g}`, [
        { path: '--workspace-root', message: 'is inside the git directory' },
      ]);
    }
  }
  if (!isInside(repo, real)) return real;
  if (await isTracked(repo, rel)) {
    throw new ValidationError(`--workspace-root ${shown} holds files git tracks; choose a directory of its own (default ${'.orch/worktrees'})`, [
      { path: '--workspace-root', message: 'holds tracked files' },
    ]);
  }
  return real;
}

/** Makes sure git ignores `dir` when it lies inside the repository (via .git/info/exclude). */
export async function ignoreInside(root: string, dir: string): Promise<void> {
  const rel = path.relative(root, dir);
  if (rel === '' || !isInside(root, dir)) return;
  if (await isIgnored(root, rel)) return;
  const exclude = path.join(await gitCommonDir(root), 'info', 'exclude');
  makeDirs(path.dirname(exclude));
  // Anchored, with gitignore's special characters escaped.
  const pattern = `/${rel
    .split(path.sep)
    .join('/')
    .replace(/[\\*?[\]!#]/g, (c) => `\\${c}`)}/`;
  const existing = fs.existsSync(exclude) ? fs.readFileSync(exclude, 'utf8') : '';
  if (!existing.split('\n').includes(pattern)) {
    fs.appendFileSync(exclude, `${existing === '' || existing.endsWith('\n') ? '' : '\n'}# orch attempt worktrees\n${pattern}\n`);
  }
}
