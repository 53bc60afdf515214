// `orch cleanup` of an attempt dispatched across machines (dispatch --remote): its branch on the
// remote and its local copy. Git runs outside transactions; cleanup.ts records what was done.
import {
  GitFailure,
  branchHead,
  commitsOnNoOtherBranch,
  deleteBranch,
  deleteRemoteBranch,
  fetchObjects,
  isAncestor,
  remoteBranchHead,
  remoteFailure,
} from '../git.ts';
import type { AttemptRow } from '../queries/attempts.ts';
import type { CleanContext, CleanupEntry } from './cleanup.ts';

/**
 * Code mode across machines: no worktree here (the worker's is in its own clone, and its own to
 * remove). The branch, on the remote and its local copy, is deleted by the same rules as a local
 * one: when its commits are on another branch of this repository (merged), or squash-merged and
 * not moved since, or with `force`. What the remote has is fetched first, so commits pushed after
 * a merge count as unmerged; the remote branch is deleted only while it still points at what was
 * fetched (a push meanwhile keeps it), and before the local copy, so a failure leaves both.
 */
export async function cleanRemoteAttempt(
  a: AttemptRow,
  repo: string,
  url: string,
  branch: string,
  entry: CleanupEntry,
  notes: string[],
  ctx: CleanContext,
): Promise<void> {
  const { dryRun, force, gone } = ctx;
  const say = (done: string, would: string) => notes.push(dryRun ? would : done);
  notes.push('no worktree on this machine (the worker made its own)');
  if (a.branch_deleted_at !== null) {
    notes.push('branch already deleted');
    return;
  }
  const owner = (await ctx.owners(repo)).get(branch);
  if (owner !== undefined && owner !== ctx.me) {
    notes.push(`left alone: ${branch} now belongs to another orch database (id ${owner})`);
    return;
  }
  const there = await remoteBranchHead(repo, url, branch).catch((err: unknown) => {
    throw new GitFailure(['ls-remote', url], `cannot reach the remote ${url}: ${remoteFailure(err)}`);
  });
  // The commits only: a dry run moves no ref.
  if (there !== undefined) {
    await fetchObjects(repo, url, branch).catch((err: unknown) => {
      throw new GitFailure(['fetch', url], `cannot fetch ${branch} from ${url}: ${remoteFailure(err)}`);
    });
  }
  const local = await branchHead(repo, branch);
  if (there === undefined && local === undefined) {
    notes.push('branch already deleted (here and on the remote)');
    return;
  }
  const tips = [...new Set([there, local].filter((t): t is string => t !== undefined))];
  const unmerged = await commitsOnNoOtherBranch(repo, tips, [branch, ...gone]);
  const head = there ?? local;
  const squashed =
    unmerged.length > 0 &&
    tips.length === 1 &&
    a.merged_head !== null &&
    a.merge_commit !== null &&
    a.merged_into !== null &&
    a.merged_head === head &&
    (await isAncestor(repo, a.merge_commit, `refs/heads/${a.merged_into}`));
  entry.unmerged_commits = squashed ? 0 : unmerged.length;
  if (unmerged.length > 0 && !squashed && !force) {
    notes.push(`kept branch ${branch} (here and on ${url}): ${unmerged.length} commit(s) on no other branch (merge it, or --force to delete)`);
    return;
  }
  entry.would_delete_branch = true;
  if (!dryRun) {
    if (there !== undefined) {
      await deleteRemoteBranch(repo, url, branch, there).catch((err: unknown) => {
        throw new GitFailure(['push', url], `did not delete ${branch} on ${url}: ${remoteFailure(err)} (pushed to since it was fetched? run cleanup again)`);
      });
    }
    if (local !== undefined) await deleteBranch(repo, branch);
    entry.branch_deleted = true;
  }
  const why = squashed
    ? `squash-merged into ${a.merged_into ?? 'its target'}`
    : unmerged.length > 0
      ? `dropping ${unmerged.length} unmerged commit(s)`
      : 'its commits are on other branches';
  const where = there !== undefined ? ` here and on ${url}` : ' (already gone from the remote)';
  say(`deleted branch${where} (${why})`, `would delete branch${where} (${why})`);
}
