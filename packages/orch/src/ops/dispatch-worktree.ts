// The worktree a code-mode dispatch (or retry, reassign) makes for a new attempt: where it goes,
// the base it starts from, the dispatch marker held while it is made, and undoing it.
import { ConflictError, ValidationError, readTransaction } from '@orch/store';
import path from 'node:path';
import { checkRef, currentBranch, deleteBranch, removeWorktree, repoRoot, resolveCommit } from '../git.ts';
import { addWorktree } from '../attempt-worktree.ts';
import { makeDirs, removeEmptyParents } from '../dirs.ts';
import { reclaimLeftover, withDeadRefLockCleared } from '../leftovers.ts';
import { checkWorkspaceRoot, ignoreInside } from '../workspace-root.ts';
import { dropMarker, takeMarker } from '../marker.ts';
import type { Orch } from '../orch.ts';
import { databaseId } from '../owner.ts';
import { attemptByWorktree, type AttemptRow } from '../queries/attempts.ts';
import type { OrchDatabase } from '../schema.ts';
import type { Plan } from './new-attempt.ts';

/** Where code-mode worktrees go when no --workspace-root is given, relative to the repository. */
export const DEFAULT_WORKSPACE_ROOT = '.orch/worktrees';

/** Code-mode settings as the leader gave them (paths absolute; refs unresolved). */
export interface CodeOptions {
  /** A directory inside the repository. */
  repoPath: string;
  /** Default `<repository>/.orch/worktrees`. */
  workspaceRoot?: string | undefined;
  /** Default: the repository's current branch. */
  baseRef?: string | undefined;
}

/** A worktree made for a plan, before the attempt row exists. */
export interface Workspace {
  repo: string;
  root: string;
  baseRef: string;
  baseCommit: string;
  branch: string;
  dir: string;
  /** `<dir>.dispatch`: this process is making the worktree (see marker.ts); removed once recorded. */
  marker: string;
}

/** The repository and base commit code mode would use: checked before anything is written. */
export async function resolveBase(code: CodeOptions): Promise<{ repo: string; baseRef: string; baseCommit: string; root: string }> {
  const repo = await repoRoot(code.repoPath);
  let baseRef = code.baseRef;
  if (baseRef === undefined) baseRef = (await currentBranch(repo)) ?? 'HEAD';
  checkRef(baseRef, '--base-ref');
  const baseCommit = await resolveCommit(repo, baseRef);
  const root = await checkWorkspaceRoot(repo, path.resolve(repo, code.workspaceRoot ?? DEFAULT_WORKSPACE_ROOT));
  return { repo, baseRef, baseCommit, root };
}

export async function prepareWorkspace(orch: Orch, plan: Plan): Promise<Workspace> {
  const { repo, baseRef, baseCommit, root } = await resolveBase(plan.code as CodeOptions);
  const dir = path.join(root, plan.run.id, plan.task.id, String(plan.number));
  if (path.relative(root, dir).startsWith('..')) throw new ValidationError(`worktree path ${dir} escapes ${root}`);
  const branch = `orch/${plan.run.id}/${plan.task.id}/${plan.number}`;
  makeDirs(path.dirname(dir));
  // Refused while another live dispatch is making this very worktree; taken over from a dead one.
  const marker = takeMarker(dir);
  try {
    // Read again under the marker: another leader's dispatch of this attempt may have recorded it
    // (and let go of its marker) since this one decided.
    const owner = await readTransaction<OrchDatabase, AttemptRow | undefined>(orch.store, (trx) => attemptByWorktree(trx, dir));
    if (owner) {
      throw new ConflictError(`task ${plan.task.id} was dispatched by someone else meanwhile (attempt ${owner.id}); see \`orch status\``, {
        task: plan.task.id,
        attempt: owner.id,
      });
    }
    // No attempt owns this number and no live dispatch is making it, so anything already here
    // was left by an interrupted dispatch: of this database (taken over if it holds no work), or
    // of another one sharing the repository and the run id (never touched; see owner.ts).
    const me = await databaseId(orch);
    await reclaimLeftover(repo, dir, branch, me);
    await withDeadRefLockCleared(repo, branch, () => addWorktree(repo, dir, branch, baseCommit, me));
    await ignoreInside(repo, root);
  } catch (err) {
    dropMarker(marker);
    removeEmptyParents(path.dirname(dir), root);
    throw err;
  }
  return { repo, root, baseRef, baseCommit, branch, dir, marker };
}

export async function discardWorkspace(ws: Workspace): Promise<void> {
  // The branch is brand new and the worktree untouched: nothing of anyone's is lost.
  await removeWorktree(ws.repo, ws.dir, true).catch(() => undefined);
  await deleteBranch(ws.repo, ws.branch).catch(() => undefined);
  dropMarker(ws.marker);
  removeEmptyParents(path.dirname(ws.dir), ws.root);
}
