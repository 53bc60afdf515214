// Git runs outside transactions; the database records what git did afterwards.
import { ConflictError, ValidationError, failpoint, readTransaction, writeTransaction } from '@orch/store';
import path from 'node:path';
import { emitIn } from '../events.ts';
import { branchExists, branchHead, checkRef, commitsBetween, gitCommonDir, isAncestor, mergeBranch, type CommitInfo } from '../git.ts';
import { removeEmptyParents } from '../dirs.ts';
import { holdLock } from '../marker.ts';
import type { Orch } from '../orch.ts';
import { getAttempt, updateAttempt, type AttemptRow } from '../queries/attempts.ts';
import { LIVE_ATTEMPT_STATES, type OrchDatabase } from '../schema.ts';
import { attemptView, type AttemptView } from '../views.ts';
import { codeAttempt, fetchAttemptBranch, type AttemptRef } from './code-attempt.ts';
import { reconcileIn } from './reconcile.ts';

export interface MergeInput extends AttemptRef {
  /** Default: the attempt's base ref, when that is a branch. */
  into?: string | undefined;
  /** Default merge (a merge commit); squash makes one commit. */
  strategy?: 'merge' | 'squash' | undefined;
}

export interface MergeResult {
  attempt: AttemptView;
  into: string;
  strategy: 'merge' | 'squash';
  merged: boolean;
  /** The target already contained every commit of the branch. */
  up_to_date: boolean;
  /** An earlier `orch merge` already merged this attempt, as it is now, into `into` (nothing done). */
  already_merged: boolean;
  /** The target branch's head afterwards (for an attempt already merged: its merge commit). */
  commit: string | null;
  /** Commits brought in. */
  commits: CommitInfo[];
}

/**
 * `orch merge`: merges the attempt's branch into `into` in the main repository. Merges into one
 * target branch of one repository are serialised by a lock file in the repository's git common
 * directory (taken over from a holder that died), held from the check whether the attempt is
 * already merged until the merge is recorded: so each attempt is merged, and `attempt_merged`
 * logged, once. A conflict or failure leaves `into` exactly as it was and is reported with the
 * conflicting files (ConflictError, exit 4). Across machines (dispatch --remote), the attempt branch
 * is fetched from its remote into the local branch first; `into` is a local branch, and pushing it
 * is the leader's business.
 *
 * @throws NotFoundError (3); ValidationError (2) when no target can be chosen; ConflictError (4)
 *   for a live attempt, a conflict, a target checked out with uncommitted changes, or a lock held
 *   by a live process for longer than `LOCK_WAIT_MS`.
 */
export async function mergeAttempt(orch: Orch, input: MergeInput): Promise<MergeResult> {
  const a = await codeAttempt(orch, input);
  if (LIVE_ATTEMPT_STATES.includes(a.state)) {
    throw new ConflictError(`attempt ${a.number} of task ${a.task_id} is still ${a.state}; wait for its result (or cancel it) before merging`, {
      attempt: a.id,
      state: a.state,
    });
  }
  // Across machines: what the worker pushed, brought in first (outside the merge lock: it only moves the branch forward).
  await fetchAttemptBranch(orch, a);
  const repo = a.repo_path as string;
  const branch = a.branch as string;
  let into = input.into;
  if (into === undefined) {
    if (a.base_ref !== null && a.base_ref !== 'HEAD' && (await branchExists(repo, a.base_ref))) into = a.base_ref;
    else
      throw new ValidationError(`attempt ${a.id} was based on ${a.base_ref ?? 'a commit'}, not a branch; give --into BRANCH`, [
        { path: '--into', message: 'is required' },
      ]);
  }
  checkRef(into, '--into');
  const strategy = input.strategy ?? 'merge';
  const lock = path.join(await gitCommonDir(repo), 'orch', `merge-${nameHash(into)}.lock`);
  const release = await holdLock(lock, `the merge lock of ${into} in ${repo}`);
  try {
    failpoint('merge:locked');
    return await mergeLocked(orch, a.id, { repo, branch, into, strategy });
  } finally {
    release();
  }
}

/** A file-name-safe hash of a branch name (FNV-1a, twice): two names sharing one only share a lock. */
function nameHash(name: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (const byte of Buffer.from(name, 'utf8')) {
    a = Math.imul(a ^ byte, 0x01000193) >>> 0;
    b = Math.imul(b ^ byte, 0x811c9dc5) >>> 0;
  }
  return `${a.toString(16).padStart(8, '0')}${b.toString(16).padStart(8, '0')}`;
}

async function mergeLocked(
  orch: Orch,
  attemptId: string,
  m: { repo: string; branch: string; into: string; strategy: 'merge' | 'squash' },
): Promise<MergeResult> {
  const { repo, branch, into, strategy } = m;
  // Read again under the lock: another merge of this attempt may have finished while this one waited.
  const a = await readTransaction<OrchDatabase, AttemptRow>(orch.store, async (trx) => (await getAttempt(trx, attemptId)) as AttemptRow);
  const head = await branchHead(repo, branch);
  if (
    a.merged_at !== null &&
    a.merged_into === into &&
    a.merge_commit !== null &&
    a.merged_head === (head ?? null) &&
    (await isAncestor(repo, a.merge_commit, `refs/heads/${into}`))
  ) {
    return { attempt: attemptView(a), into, strategy, merged: false, up_to_date: true, already_merged: true, commit: a.merge_commit, commits: [] };
  }
  const before = await branchHead(repo, into);
  const commits = before && head ? await commitsBetween(repo, before, head) : [];
  const mergeRoot = a.workspace_root ?? path.join(repo, '.orch', 'worktrees');
  const outcome = await mergeBranch(repo, {
    branch,
    into,
    strategy,
    message: `Merge ${a.run_id}/${a.task_id} attempt ${a.number} (${branch})`,
    tmpDir: path.join(mergeRoot, '.merge', `${a.id}-${process.pid}`),
  });
  removeEmptyParents(path.join(mergeRoot, '.merge'), mergeRoot);
  if (!outcome.merged && !outcome.up_to_date) {
    const files = outcome.conflicts;
    throw new ConflictError(
      files.length > 0
        ? `merging ${branch} into ${into} conflicts in ${files.join(', ')}; ${into} is unchanged`
        : `git could not merge ${branch} into ${into} (${(outcome.error ?? '').split('\n')[0] ?? ''}); ${into} is unchanged`,
      { into, branch, conflicts: files, ...(outcome.error !== undefined ? { git_message: outcome.error } : {}) },
    );
  }
  const now = orch.clock.now();
  const updated = await writeTransaction<OrchDatabase, AttemptRow>(orch.store, async (trx) => {
    await reconcileIn(trx, orch, a.run_id);
    const row = await updateAttempt(trx, a.id, {
      merged_at: now,
      merged_into: into,
      merge_commit: outcome.commit ?? null,
      merged_head: head ?? null,
      updated_at: now,
    });
    if (outcome.merged) {
      await emitIn(trx, orch, {
        runId: a.run_id,
        taskId: a.task_id,
        attemptId: a.id,
        type: 'attempt_merged',
        data: { into, strategy, commit: outcome.commit, branch, commits: commits.length },
      });
    }
    return row;
  });
  return {
    attempt: attemptView(updated),
    into,
    strategy,
    merged: outcome.merged,
    up_to_date: outcome.up_to_date,
    already_merged: false,
    commit: outcome.commit ?? null,
    commits: outcome.merged ? commits : [],
  };
}
