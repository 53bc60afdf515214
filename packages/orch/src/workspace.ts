// Code mode after dispatch: what an attempt's branch changed (diff), bringing it into a branch of
// the main repository (merge), and removing finished worktrees without losing work (cleanup).
// Git runs outside transactions; the database records what git did afterwards.
import { ConflictError, NotFoundError, ValidationError, failpoint, readTransaction, writeTransaction } from '@orch/store';
import fs from 'node:fs';
import path from 'node:path';
import { emitIn } from './events.ts';
import {
  GitFailure,
  branchExists,
  branchHead,
  isAncestor,
  removeEmptyParents,
  commitsBetween,
  deleteBranch,
  diffPatch,
  diffStat,
  listWorktrees,
  mergeBranch,
  pruneWorktrees,
  removeWorktree,
  uncommitted,
  unmergedCommits,
  interruptedAdd,
  checkRef,
  type CommitInfo,
  type FileChange,
} from './git.ts';
import { markerAlive, markerPath, readMarker, removeDeadMarker } from './marker.ts';
import type { Orch } from './orch.ts';
import { attemptByWorktree, getAttempt, latestAttempt, listAttempts, updateAttempt, type AttemptRow } from './queries/attempts.ts';
import { reconcileIn, reconcileThen, reconciledView } from './reconcile.ts';
import { requireRun } from './runs.ts';
import { LIVE_ATTEMPT_STATES, type AttemptState, type ExecutionMode, type OrchDatabase } from './schema.ts';
import { requireTask } from './tasks.ts';
import { attemptView, type AttemptView } from './views.ts';

interface AttemptRef {
  runId: string;
  taskId: string;
  /** Default: the task's latest attempt. */
  attemptId?: string | undefined;
}

/** The chosen code-mode attempt of a task. @throws NotFoundError (3); ConflictError (4) for an analysis attempt. */
async function codeAttempt(orch: Orch, ref: AttemptRef): Promise<AttemptRow> {
  // As reconcile would leave it, keeping nothing: a refusal here or later writes nothing.
  return reconciledView(orch, ref.runId, async (trx) => {
    const run = await requireRun(trx, ref.runId);
    const task = await requireTask(trx, run.id, ref.taskId);
    const attempt = ref.attemptId !== undefined ? await getAttempt(trx, ref.attemptId) : await latestAttempt(trx, run.id, task.id);
    if (!attempt || attempt.run_id !== run.id || attempt.task_id !== task.id) {
      throw new NotFoundError(
        ref.attemptId !== undefined ? `no attempt ${ref.attemptId} of task ${task.id} in run ${run.id}` : `task ${task.id} has no attempts yet`,
        { run: run.id, task: task.id, attempt: ref.attemptId ?? null },
      );
    }
    if (attempt.execution_mode !== 'code' || attempt.repo_path === null || attempt.branch === null || attempt.base_commit === null) {
      throw new ConflictError(`attempt ${attempt.number} of task ${task.id} is an analysis attempt: it has no branch`, { attempt: attempt.id });
    }
    return attempt;
  });
}

export interface DiffResult {
  attempt: AttemptView;
  base_commit: string;
  branch: string;
  head_commit: string;
  /** Commits on the branch since the base commit, oldest first. */
  commits: CommitInfo[];
  files: FileChange[];
  /** The patch (absent with --stat). */
  patch?: string;
  /** Uncommitted changes in the worktree (null when the worktree is gone): not part of the diff. */
  uncommitted: string[] | null;
}

/**
 * `orch diff`: what the attempt's branch changed against its base commit (committed work only),
 * and whether its worktree has uncommitted changes.
 *
 * @throws NotFoundError (3); ConflictError (4) for an analysis attempt or a deleted branch.
 */
export async function diffAttempt(orch: Orch, input: AttemptRef & { stat?: boolean | undefined }): Promise<DiffResult> {
  const a = await codeAttempt(orch, input);
  const repo = a.repo_path as string;
  const branch = a.branch as string;
  const base = a.base_commit as string;
  const head = await branchHead(repo, branch);
  if (!head) throw new ConflictError(`branch ${branch} no longer exists (cleaned up?)`, { branch });
  const dirty = a.worktree_path !== null && fs.existsSync(a.worktree_path) ? await uncommitted(a.worktree_path) : null;
  return {
    attempt: attemptView(a),
    base_commit: base,
    branch,
    head_commit: head,
    commits: await commitsBetween(repo, base, head),
    files: await diffStat(repo, base, head),
    ...(input.stat ? {} : { patch: await diffPatch(repo, base, head) }),
    uncommitted: dirty,
  };
}

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
  /** The target branch's head afterwards. */
  commit: string | null;
  /** Commits brought in. */
  commits: CommitInfo[];
}

/**
 * `orch merge`: merges the attempt's branch into `into` in the main repository. A conflict leaves
 * `into` exactly as it was and is reported with the conflicting files (ConflictError, exit 4).
 *
 * @throws NotFoundError (3); ValidationError (2) when no target can be chosen; ConflictError (4)
 *   for a live attempt, a conflict, or a target checked out with uncommitted changes.
 */
export async function mergeAttempt(orch: Orch, input: MergeInput): Promise<MergeResult> {
  const a = await codeAttempt(orch, input);
  if (LIVE_ATTEMPT_STATES.includes(a.state)) {
    throw new ConflictError(`attempt ${a.number} of task ${a.task_id} is still ${a.state}; wait for its result (or cancel it) before merging`, {
      attempt: a.id,
      state: a.state,
    });
  }
  const repo = a.repo_path as string;
  const branch = a.branch as string;
  let into = input.into;
  if (into === undefined) {
    if (a.base_ref !== null && a.base_ref !== 'HEAD' && (await branchExists(repo, a.base_ref))) into = a.base_ref;
    else throw new ValidationError(`attempt ${a.id} was based on ${a.base_ref ?? 'a commit'}, not a branch; give --into BRANCH`, [{ path: '--into', message: 'is required' }]);
  }
  checkRef(into, '--into');
  const strategy = input.strategy ?? 'merge';
  const before = await branchHead(repo, into);
  const head = await branchHead(repo, branch);
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
    commit: outcome.commit ?? null,
    commits: outcome.merged ? commits : [],
  };
}

export interface CleanupInput {
  runId: string;
  allCompleted?: boolean | undefined;
  attemptId?: string | undefined;
  dryRun?: boolean | undefined;
  /** Also remove worktrees with uncommitted changes and branches with commits on no other branch. */
  force?: boolean | undefined;
}

export interface CleanupEntry {
  attempt: string;
  task: string;
  number: number;
  state: AttemptState;
  execution_mode: ExecutionMode;
  worktree_path: string | null;
  branch: string | null;
  /** The worktree was (with --dry-run: would be) removed. */
  removed: boolean;
  /** The branch was (would be) deleted. */
  branch_deleted: boolean;
  /** Uncommitted files found in the worktree. */
  uncommitted: string[];
  /** Commits on the branch that no other branch has. */
  unmerged_commits: number;
  /** What was done or kept, and why. */
  note: string;
  /** git's refusal, if a step failed (what was done before it is still recorded). */
  error: string | null;
}

export interface OrphanEntry {
  /** A worktree directory under the workspace root that no attempt owns (e.g. a crash mid-dispatch). */
  path: string;
  branch: string | null;
  removed: boolean;
  note: string;
}

export interface CleanupResult {
  run: string;
  dry_run: boolean;
  attempts: CleanupEntry[];
  orphans: OrphanEntry[];
  /** How many attempts git refused to clean completely (see their `error`). */
  errors: number;
}

/** Orphans younger than this may belong to a dispatch that is recording its attempt right now. */
export const ORPHAN_MIN_AGE_MS = 60_000;

/**
 * `orch cleanup`: removes the worktrees of finished attempts (done, failed, cancelled, expired) and
 * prunes git's records. Keeps, and says why, a worktree with uncommitted changes and a branch whose
 * commits are on no other branch, unless `force`. Branches whose commits live elsewhere (merged),
 * or that `merge --strategy squash` took and that have not moved since, are deleted. Each
 * attempt's outcome is recorded as soon as its git work is done; a git refusal is reported on that
 * attempt and the others go on. With `allCompleted`, also handles orphans: worktrees under the
 * run's workspace roots that no attempt owns and that are at least a minute old. Analysis attempts
 * have nothing on disk.
 *
 * @throws NotFoundError (3) for an unknown run or attempt; ConflictError (4) for a live attempt.
 */
export async function cleanup(orch: Orch, input: CleanupInput): Promise<CleanupResult> {
  // Looked up inside the reconcile's transaction: an unknown or live attempt is refused with nothing written.
  const { attempts, all } = await reconcileThen(orch, input.runId, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const all = await listAttempts(trx, { runId: run.id });
    if (input.attemptId === undefined) return { attempts: all.filter((a) => !LIVE_ATTEMPT_STATES.includes(a.state)), all };
    const a = await getAttempt(trx, input.attemptId);
    if (!a || a.run_id !== run.id) throw new NotFoundError(`no attempt ${input.attemptId} in run ${run.id}`, { run: run.id, attempt: input.attemptId });
    if (LIVE_ATTEMPT_STATES.includes(a.state)) {
      throw new ConflictError(`attempt ${a.id} is ${a.state}; cancel or finish it before cleaning up`, { attempt: a.id, state: a.state });
    }
    return { attempts: [a], all };
  });
  const dryRun = input.dryRun === true;
  const force = input.force === true;
  const entries: CleanupEntry[] = [];
  // Branches this call deletes (or, dry, would delete): their commits no longer count as "elsewhere".
  const gone: string[] = [];
  for (const a of attempts) {
    const entry = await cleanAttempt(a, { dryRun, force, gone });
    entries.push(entry);
    if (entry.branch_deleted && a.branch) gone.push(a.branch);
    failpoint('cleanup:before-record');
    if (!dryRun) await recordCleanup(orch, a, entry);
  }
  const orphans = input.allCompleted ? await cleanOrphans(orch, input.runId, workspacePlaces(all), { dryRun, force }) : [];
  return { run: input.runId, dry_run: dryRun, attempts: entries, orphans, errors: entries.filter((e) => e.error !== null).length };
}

async function recordCleanup(orch: Orch, a: AttemptRow, e: CleanupEntry): Promise<void> {
  if (a.execution_mode !== 'code') return;
  const worktreeNow = e.removed && a.worktree_removed_at === null;
  const branchNow = e.branch_deleted && a.branch_deleted_at === null;
  if (!worktreeNow && !branchNow) return;
  await writeTransaction<OrchDatabase, void>(orch.store, async (trx) => {
    const now = orch.clock.now();
    await updateAttempt(trx, a.id, {
      ...(worktreeNow ? { worktree_removed_at: now } : {}),
      ...(branchNow ? { branch_deleted_at: now } : {}),
      updated_at: now,
    });
    await emitIn(trx, orch, {
      runId: a.run_id,
      taskId: a.task_id,
      attemptId: a.id,
      type: 'attempt_cleaned',
      data: { worktree_removed: worktreeNow, branch_deleted: branchNow, worktree_path: a.worktree_path, branch: a.branch },
    });
  });
}

async function cleanAttempt(a: AttemptRow, opts: { dryRun: boolean; force: boolean; gone: string[] }): Promise<CleanupEntry> {
  const entry: CleanupEntry = {
    attempt: a.id,
    task: a.task_id,
    number: a.number,
    state: a.state,
    execution_mode: a.execution_mode,
    worktree_path: a.worktree_path,
    branch: a.branch,
    removed: false,
    branch_deleted: false,
    uncommitted: [],
    unmerged_commits: 0,
    note: '',
    error: null,
  };
  if (a.execution_mode !== 'code' || a.repo_path === null || a.worktree_path === null || a.branch === null) {
    entry.note = 'analysis attempt: nothing on disk';
    return entry;
  }
  if (!fs.existsSync(a.repo_path)) {
    entry.note = `repository ${a.repo_path} is gone; nothing to do`;
    return entry;
  }
  const notes: string[] = [];
  try {
    await cleanCodeAttempt(a, a.repo_path, a.worktree_path, a.branch, entry, notes, opts);
  } catch (err) {
    if (!(err instanceof GitFailure)) throw err;
    entry.error = err.gitMessage.split('\n')[0] ?? err.message;
    notes.push(`stopped: ${err.message}`);
  }
  entry.note = notes.join('; ');
  return entry;
}

async function cleanCodeAttempt(
  a: AttemptRow,
  repo: string,
  worktree: string,
  branch: string,
  entry: CleanupEntry,
  notes: string[],
  { dryRun, force, gone }: { dryRun: boolean; force: boolean; gone: string[] },
): Promise<void> {
  let worktreeGone = a.worktree_removed_at !== null;
  if (worktreeGone) {
    notes.push('worktree already removed');
  } else if (!fs.existsSync(worktree)) {
    if (!dryRun) await pruneWorktrees(repo);
    entry.removed = true;
    worktreeGone = true;
    notes.push('worktree was already gone (git records pruned)');
  } else {
    entry.uncommitted = await uncommitted(worktree);
    if (entry.uncommitted.length > 0 && !force) {
      notes.push(`kept worktree: ${entry.uncommitted.length} uncommitted change(s) (commit them, or --force to discard)`);
    } else {
      if (!dryRun) await removeWorktree(repo, worktree, entry.uncommitted.length > 0);
      entry.removed = true;
      worktreeGone = true;
      notes.push(entry.uncommitted.length > 0 ? `removed worktree, discarding ${entry.uncommitted.length} uncommitted change(s)` : 'removed worktree');
    }
  }
  if (a.branch_deleted_at !== null || !(await branchExists(repo, branch))) {
    notes.push('branch already deleted');
    return;
  }
  if (!worktreeGone) {
    notes.push('kept branch (its worktree is kept)');
    return;
  }
  const unmerged = await unmergedCommits(repo, branch, gone);
  // A squash merge copies the work into one new commit: the branch's own commits stay on no other
  // branch. Nothing is lost while that commit is still on the target and the branch has not moved.
  const squashed =
    unmerged.length > 0 &&
    a.merged_head !== null &&
    a.merge_commit !== null &&
    a.merged_into !== null &&
    a.merged_head === (await branchHead(repo, branch)) &&
    (await isAncestor(repo, a.merge_commit, `refs/heads/${a.merged_into}`));
  entry.unmerged_commits = squashed ? 0 : unmerged.length;
  if (squashed) {
    if (!dryRun) await deleteBranch(repo, branch);
    entry.branch_deleted = true;
    notes.push(`deleted branch (squash-merged into ${a.merged_into ?? 'its target'})`);
  } else if (unmerged.length > 0 && !force) {
    notes.push(`kept branch ${branch}: ${unmerged.length} commit(s) on no other branch (merge it, or --force to delete)`);
  } else {
    if (!dryRun) await deleteBranch(repo, branch);
    entry.branch_deleted = true;
    notes.push(unmerged.length > 0 ? `deleted branch, dropping ${unmerged.length} unmerged commit(s)` : 'deleted branch (its commits are on other branches)');
  }
}

/** Where a run's worktrees live: each workspace root its attempts used, with its repository. */
export function workspacePlaces(attempts: AttemptRow[]): Map<string, string> {
  const places = new Map<string, string>();
  for (const a of attempts) if (a.repo_path && a.workspace_root && fs.existsSync(a.repo_path)) places.set(a.workspace_root, a.repo_path);
  return places;
}

/**
 * Worktrees under `<workspace root>/<run>/` that no attempt of the run owns, for each root in
 * `places` (root -> repository). Removes those at least a minute old that hold no work (unless
 * `dryRun`; `force` also removes those that do). A git refusal is noted on that orphan.
 */
export async function cleanOrphans(orch: Orch, runId: string, places: Map<string, string>, opts: { dryRun: boolean; force: boolean }): Promise<OrphanEntry[]> {
  const out: OrphanEntry[] = [];
  for (const [root, repo] of places) {
    const runDir = path.join(root, runId);
    const candidates = (await listWorktrees(repo)).filter((w) => w.path.startsWith(`${runDir}${path.sep}`));
    for (const w of candidates) {
      // Read again for each one: a dispatch may have recorded it since this cleanup started.
      if (await ownedPath(orch, w.path)) continue;
      const entry: OrphanEntry = { path: w.path, branch: w.branch, removed: false, note: '' };
      try {
        await cleanOrphan(orch, repo, w, entry, opts);
      } catch (err) {
        if (!(err instanceof GitFailure)) throw err;
        entry.removed = false;
        entry.note = `kept: ${err.message}`;
      }
      out.push(entry);
    }
  }
  return out;
}

async function cleanOrphan(
  orch: Orch,
  repo: string,
  w: { path: string; branch: string | null; locked: string | null },
  entry: OrphanEntry,
  opts: { dryRun: boolean; force: boolean },
): Promise<void> {
  const marker = readMarker(markerPath(w.path));
  const age = fs.existsSync(w.path) ? orch.clock.now() - fs.statSync(w.path).mtimeMs : Infinity;
  // A checkout cut short shows its missing files as changes: they are nobody's work.
  const dirty = fs.existsSync(w.path) && !interruptedAdd(w) ? await uncommitted(w.path) : [];
  const unmerged = w.branch && (await branchExists(repo, w.branch)) ? await unmergedCommits(repo, w.branch) : [];
  if (marker && markerAlive(marker)) {
    entry.note = `kept: a dispatch (pid ${marker.pid}) is making it right now`;
  } else if (age < ORPHAN_MIN_AGE_MS) {
    entry.note = 'kept: made less than a minute ago, perhaps by a dispatch still recording its attempt (run cleanup again later)';
  } else if ((dirty.length > 0 || unmerged.length > 0) && !opts.force) {
    entry.note = `kept: ${dirty.length} uncommitted change(s), ${unmerged.length} unmerged commit(s) (--force to remove)`;
  } else {
    if (!opts.dryRun) {
      if (fs.existsSync(w.path)) await removeWorktree(repo, w.path, true);
      else await pruneWorktrees(repo);
      if (w.branch && (await branchExists(repo, w.branch))) await deleteBranch(repo, w.branch);
      if (marker) removeDeadMarker(marker);
    }
    entry.removed = true;
    entry.note = 'removed worktree no attempt owns (left by an interrupted dispatch)';
  }
}

/** Whether an attempt records a worktree at `worktreePath` (read fresh). */
export async function ownedPath(orch: Orch, worktreePath: string): Promise<boolean> {
  return readTransaction<OrchDatabase, boolean>(orch.store, async (trx) => (await attemptByWorktree(trx, worktreePath)) !== undefined);
}
