// Several orch databases may share one repository (and even a run id). Every branch orch makes
// carries the id of the database that made it (git config `branch.<name>.orchDatabase`, set before
// the branch exists, dropped by `git branch -D`), and the worktree on it belongs to the same
// database. Commands take over or remove only what their own database marked; a branch or worktree
// with no mark (made before orch recorded owners, or by hand) is kept and reported, removed only
// with --force; one marked by another database is never touched.
import { readTransaction } from '@orch/store';
import path from 'node:path';
import type { Orch } from './orch.ts';
import { databaseIdIn } from './queries/meta.ts';
import type { OrchDatabase } from './schema.ts';

const ids = new WeakMap<Orch, string>();

/** This database's id, read once per open database. */
export async function databaseId(orch: Orch): Promise<string> {
  const known = ids.get(orch);
  if (known !== undefined) return known;
  const id = await readTransaction<OrchDatabase, string>(orch.store, (trx) => databaseIdIn(trx));
  ids.set(orch, id);
  return id;
}

/** The branch orch names for the worktree at `dir` under workspace root `root` (`<run>/<task>/<n>`). */
export function branchForPath(root: string, dir: string): string {
  return `orch/${path.relative(root, dir).split(path.sep).join('/')}`;
}

/** Whose a branch is, from `owners` (branch -> database id): this database's, another's, or unmarked. */
export function ownership(owners: Map<string, string>, branch: string, me: string): { kind: 'mine' | 'foreign' | 'unmarked'; owner: string | null } {
  const owner = owners.get(branch);
  if (owner === undefined) return { kind: 'unmarked', owner: null };
  return { kind: owner === me ? 'mine' : 'foreign', owner };
}
