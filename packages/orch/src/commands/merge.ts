import { defineCommand, idSchema } from '@orch/store';
import { z } from 'zod';
import { mergeAttempt } from '../ops/merge.ts';
import { attemptFlag, runFlag, taskFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'merge',
  summary: "Merge a finished code attempt's branch into a branch of the main repository",
  description:
    "Merges into --into (default: the attempt's base ref, when it is a branch) with a merge commit, or one squashed " +
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
  examples: [
    '--db ./coord.db --json merge --run blog_mvp_001 --task T1',
    '--db ./coord.db --json merge --run blog_mvp_001 --task T1 --into main --strategy squash',
  ],
  input: z.object({
    run: idSchema,
    task: idSchema,
    attempt: idSchema.optional(),
    into: z.string().min(1, 'must not be empty').optional(),
    strategy: z.enum(['merge', 'squash'], { error: 'must be merge or squash' }).optional(),
  }),
  run: (ctx, input) =>
    withRun(ctx, input.run, (orch) =>
      mergeAttempt(orch, { runId: input.run, taskId: input.task, attemptId: input.attempt, into: input.into, strategy: input.strategy }),
    ),
  text: (r) =>
    r.already_merged
      ? `attempt ${r.attempt.number} (${r.attempt.branch}) was already merged into ${r.into} as ${(r.commit ?? '').slice(0, 12)}`
      : r.up_to_date
        ? `${r.into} already contains attempt ${r.attempt.number}'s branch ${r.attempt.branch}`
        : `merged ${r.attempt.branch} into ${r.into} (${r.strategy}, ${r.commits.length} commit(s)); ${r.into} is now ${(r.commit ?? '').slice(0, 12)}`,
});
