import { defineCommand, formatTable, idSchema } from '@orch/store';
import { z } from 'zod';
import { diffAttempt } from '../ops/diff.ts';
import { mergeAttempt } from '../ops/merge.ts';
import { runFlag, taskFlag, withRun } from './shared.ts';

const attemptFlag = { type: 'string' as const, describe: "Attempt id (default: the task's latest attempt)" };

export const diffCommand = defineCommand({
  name: 'diff',
  summary: "What a code attempt's branch changed against its base commit",
  description:
    'Shows the commits on the attempt\'s branch since its base commit, the files changed (additions/deletions) and ' +
    'the patch (omit it with --stat). Only committed work counts; `uncommitted` lists files changed in the ' +
    'worktree but not committed (null when the worktree is gone). Exit 4 for an analysis attempt.',
  flags: { run: runFlag, task: taskFlag, attempt: attemptFlag, stat: { type: 'boolean', describe: 'Leave out the patch' } },
  examples: ['--db ./coord.db --json diff --run blog_mvp_001 --task T1 --stat', '--db ./coord.db diff --run blog_mvp_001 --task T1'],
  input: z.object({ run: idSchema, task: idSchema, attempt: idSchema.optional(), stat: z.boolean().optional() }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => diffAttempt(orch, { runId: input.run, taskId: input.task, attemptId: input.attempt, stat: input.stat })),
  text: (r) => {
    const lines = [
      `attempt ${r.attempt.number} of ${r.attempt.run}/${r.attempt.task}: branch ${r.branch}, ${r.commits.length} commit(s) since ${r.base_commit.slice(0, 12)}`,
      ...r.commits.map((c) => `  ${c.sha.slice(0, 12)} ${c.subject}`),
    ];
    if (r.files.length > 0) {
      lines.push('', formatTable([['FILE', '+', '-'], ...r.files.map((f) => [f.path, String(f.additions ?? 'bin'), String(f.deletions ?? 'bin')])]));
    } else lines.push('', 'no committed changes');
    if (r.uncommitted === null) lines.push('', 'worktree is gone');
    else if (r.uncommitted.length > 0) lines.push('', `uncommitted in the worktree (not part of this diff): ${r.uncommitted.join(', ')}`);
    if (r.patch) lines.push('', r.patch.trimEnd());
    return lines.join('\n');
  },
});

export const mergeCommand = defineCommand({
  name: 'merge',
  summary: "Merge a finished code attempt's branch into a branch of the main repository",
  description:
    'Merges into --into (default: the attempt\'s base ref, when it is a branch) with a merge commit, or one squashed ' +
    'commit with --strategy squash. The merge is made in a temporary worktree; --into then moves only if it did not ' +
    'move meanwhile (fast-forwarded in its checkout when checked out; refused, exit 4, when that checkout has ' +
    'uncommitted changes to tracked files). Merges into one branch wait for each other (a lock in the git directory; ' +
    'a holder that died is taken over). A conflict leaves --into exactly as it was and lists the conflicting files ' +
    '(exit 4). Merging an attempt merged before: merged false, already_merged true, no second attempt_merged event; ' +
    'a target that already has the work: merged false, up_to_date true. ' +
    'The attempt must be finished (not dispatched, running or blocked).',
  flags: {
    run: runFlag,
    task: taskFlag,
    attempt: attemptFlag,
    into: { type: 'string', describe: "Target branch (default: the attempt's base ref)" },
    strategy: { type: 'string', describe: 'merge (default) or squash' },
  },
  examples: ['--db ./coord.db --json merge --run blog_mvp_001 --task T1', '--db ./coord.db --json merge --run blog_mvp_001 --task T1 --into main --strategy squash'],
  input: z.object({
    run: idSchema,
    task: idSchema,
    attempt: idSchema.optional(),
    into: z.string().min(1, 'must not be empty').optional(),
    strategy: z.enum(['merge', 'squash'], { error: 'must be merge or squash' }).optional(),
  }),
  run: (ctx, input) =>
    withRun(ctx, input.run, (orch) => mergeAttempt(orch, { runId: input.run, taskId: input.task, attemptId: input.attempt, into: input.into, strategy: input.strategy })),
  text: (r) =>
    r.already_merged
      ? `attempt ${r.attempt.number} (${r.attempt.branch}) was already merged into ${r.into} as ${(r.commit ?? '').slice(0, 12)}`
      : r.up_to_date
      ? `${r.into} already contains attempt ${r.attempt.number}'s branch ${r.attempt.branch}`
      : `merged ${r.attempt.branch} into ${r.into} (${r.strategy}, ${r.commits.length} commit(s)); ${r.into} is now ${(r.commit ?? '').slice(0, 12)}`,
});
