// The worktree a code-mode dispatch (or retry, reassign) makes for a new attempt: where it goes,
// the base it starts from, the dispatch marker held while it is made, and undoing it.
import { ConflictError, ValidationError, readTransaction } from '@orch/store';
import path from 'node:path';
import {
  GitFailure,
  checkRef,
  checkRemoteUrl,
  currentBranch,
  deleteBranch,
  isValidBranchName,
  pushCommitToBranch,
  remoteBranchHead,
  remoteFailure,
  remoteUrl,
  removeWorktree,
  repoRoot,
  resolveCommit,
} from '../git.ts';
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
  /** Code mode across machines: the git remote of the repository the branch travels through (its URL is recorded). */
  remote?: string | undefined;
  /** Code mode across machines: the remote's URL itself (instead of `remote`). No worktree is made on this machine then. */
  remoteUrl?: string | undefined;
}

/** A worktree made for a plan (or, across machines, a branch pushed to the remote), before the attempt row exists. */
export interface Workspace {
  repo: string;
  /** null across machines: the worker makes its worktree in its own clone. */
  root: string | null;
  baseRef: string;
  baseCommit: string;
  branch: string;
  dir: string | null;
  /** `<dir>.dispatch`: this process is making the worktree (see marker.ts); removed once recorded. null across machines. */
  marker: string | null;
  /** Across machines: the remote the branch was pushed to. */
  remoteUrl: string | null;
}

/** The repository and base commit code mode would use: checked before anything is written. */
export async function resolveBase(
  code: CodeOptions,
): Promise<{ repo: string; baseRef: string; baseCommit: string; root: string | null; remoteUrl: string | null }> {
  const repo = await repoRoot(code.repoPath);
  if (code.remoteUrl !== undefined) checkRemoteUrl(code.remoteUrl, '--repo-url');
  const url = code.remote !== undefined ? await remoteUrl(repo, code.remote) : (code.remoteUrl ?? null);
  let baseRef = code.baseRef;
  if (baseRef === undefined) baseRef = (await currentBranch(repo)) ?? 'HEAD';
  checkRef(baseRef, '--base-ref');
  const baseCommit = await resolveCommit(repo, baseRef);
  // Across machines no worktree is made here: there is no workspace root to check.
  const root = url !== null ? null : await checkWorkspaceRoot(repo, path.resolve(repo, code.workspaceRoot ?? DEFAULT_WORKSPACE_ROOT));
  return { repo, baseRef, baseCommit, root, remoteUrl: url };
}

export async function prepareWorkspace(orch: Orch, plan: Plan): Promise<Workspace> {
  const code = plan.code as CodeOptions;
  const { repo, baseRef, baseCommit, root: maybeRoot, remoteUrl: url } = await resolveBase(code);
  if (url !== null) {
    const branch = await pushAttemptBranch(repo, url, plan, baseCommit);
    return { repo, root: null, baseRef, baseCommit, branch, dir: null, marker: null, remoteUrl: url };
  }
  const root = maybeRoot as string;
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
  return { repo, root, baseRef, baseCommit, branch, dir, marker, remoteUrl: null };
}

export async function discardWorkspace(ws: Workspace): Promise<void> {
  // Across machines, the branch on the remote is left as it is: it points at the base commit and
  // holds no work, and another leader's dispatch of the same attempt may be using it.
  if (ws.dir === null || ws.marker === null || ws.root === null) return;
  // The branch is brand new and the worktree untouched: nothing of anyone's is lost.
  await removeWorktree(ws.repo, ws.dir, true).catch(() => undefined);
  await deleteBranch(ws.repo, ws.branch).catch(() => undefined);
  dropMarker(ws.marker);
  removeEmptyParents(path.dirname(ws.dir), ws.root);
}

/**
 * Code mode across machines: creates the attempt's branch `orch/<run>/<task>/<N>` on the remote at
 * the base commit (git sends what the remote lacks, so a base that exists only here reaches it).
 * A branch already there at the base commit (left by an interrupted dispatch) is taken as it is;
 * one that points anywhere else holds someone's work and is refused, never overwritten.
 *
 * @throws ValidationError (2) for a branch name git refuses; ConflictError (4) for a branch there
 *   with other commits; GitFailure (4) when the remote cannot be reached or refuses the push.
 */
async function pushAttemptBranch(repo: string, url: string, plan: Plan, baseCommit: string): Promise<string> {
  const branch = `orch/${plan.run.id}/${plan.task.id}/${plan.number}`;
  if (!(await isValidBranchName(repo, branch))) {
    throw new ValidationError(`${branch} is not a valid git branch name (a run or task id git does not accept, such as one ending in ".lock")`, [
      { path: '--task', message: 'not usable in a git branch name' },
    ]);
  }
  const there = await remoteBranchHead(repo, url, branch).catch((err: unknown) => {
    throw new GitFailure(['ls-remote', url], `cannot reach the remote ${url}: ${remoteFailure(err)}`);
  });
  if (there === baseCommit) return branch;
  if (there !== undefined) {
    throw new ConflictError(`branch ${branch} already exists on ${url} at ${there.slice(0, 12)}, not at the base commit; see \`orch cleanup\``, {
      branch,
      remote_url: url,
      remote_head: there,
    });
  }
  await pushCommitToBranch(repo, url, baseCommit, branch).catch((err: unknown) => {
    throw new GitFailure(['push', url], `cannot push the base commit to ${url} as ${branch}: ${remoteFailure(err)}`);
  });
  return branch;
}
