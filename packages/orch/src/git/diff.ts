// What a branch changed: its commits, per-file counts and the patch between two commits.
import { run } from './run.ts';

export interface CommitInfo {
  sha: string;
  subject: string;
}

/** Commits reachable from `head` but not from `base`, oldest first. */
export async function commitsBetween(root: string, base: string, head: string): Promise<CommitInfo[]> {
  const out = await run(root, ['log', '--reverse', '--format=%H%x09%s', `${base}..${head}`, '--']);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [sha = '', ...rest] = l.split('\t');
      return { sha, subject: rest.join('\t') };
    });
}

export interface FileChange {
  path: string;
  /** null for binary files. */
  additions: number | null;
  deletions: number | null;
}

/** What changed between two commits, per file (names exactly as they are: read with -z). */
export async function diffStat(root: string, base: string, head: string): Promise<FileChange[]> {
  const out = await run(root, ['diff', '--numstat', '-z', '--no-renames', base, head, '--']);
  return out
    .split('\0')
    .filter((l) => l !== '')
    .map((l) => {
      const [a = '-', d = '-', ...p] = l.split('\t');
      return { path: p.join('\t'), additions: a === '-' ? null : Number(a), deletions: d === '-' ? null : Number(d) };
    });
}

/** The patch between two commits. */
export async function diffPatch(root: string, base: string, head: string): Promise<string> {
  return run(root, ['diff', '--no-color', base, head, '--']);
}
