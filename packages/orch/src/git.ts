// Every git call orch makes, through simple-git (no shell: arguments are passed as an array).
// Callers validate ids and refs first; refs are additionally placed after `--end-of-options`
// where git accepts it, so nothing user-given is read as an option. Never call these inside a
// database transaction.
//
// Plumbing only: what git says and does, nothing of orch's rules (whose a branch is, what may be
// removed: see branch-owner.ts, owner.ts, leftovers.ts, workspace-root.ts, attempt-worktree.ts).
// The parts: git/run.ts runs git (GitFailure), git/repo.ts the repository, git/refs.ts branches
// and commits, git/config.ts per-branch config, git/worktrees.ts worktrees, git/diff.ts and
// git/merge.ts what a branch changed and bringing it into another.
export { GitFailure } from './git/run.ts';
export { gitCommonDir, gitDir, isIgnored, isTracked, repoRoot } from './git/repo.ts';
export {
  branchExists,
  branchHead,
  branchesUnder,
  checkRef,
  commitsOnNoOtherBranch,
  currentBranch,
  deleteBranch,
  isAncestor,
  isValidBranchName,
  resolveCommit,
  unmergedCommits,
} from './git/refs.ts';
export { branchConfigValues, dropBranchConfig, setBranchConfig } from './git/config.ts';
export {
  addWorktreeOnNewBranch,
  gitLockFiles,
  interruptedAdd,
  listWorktrees,
  pruneWorktrees,
  removeWorktree,
  tryPruneWorktrees,
  uncommitted,
  uncommittedTracked,
  undoWorktreeAdd,
  unlockWorktree,
  worktreeOnlyCommits,
} from './git/worktrees.ts';
export { commitsBetween, diffPatch, diffStat, type CommitInfo, type FileChange } from './git/diff.ts';
export { mergeBranch, type MergeOutcome } from './git/merge.ts';
export { checkRemoteUrl, deleteRemoteBranch, fetchBranch, fetchObjects, pushCommitToBranch, remoteBranchHead, remoteFailure, remoteUrl } from './git/remote.ts';
