import { defineCommand, formatTable, idSchema } from '@orch/store';
import { z } from 'zod';
import { diffAttempt } from '../ops/diff.ts';
import { attemptFlag, runFlag, taskFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'diff',
  summary: "What a code attempt's branch changed against its base commit",
  description:
    "Shows the commits on the attempt's branch since its base commit, the files changed (additions/deletions) and " +
    'the patch (omit it with --stat). Only committed work counts; `uncommitted` lists files changed in the ' +
    'worktree but not committed (null when the worktree is gone). Exit 4 for an analysis attempt.',
  flags: { run: runFlag, task: taskFlag, attempt: attemptFlag, stat: { type: 'boolean', describe: 'Leave out the patch' } },
  examples: ['--db ./coord.db --json diff --run blog_mvp_001 --task T1 --stat', '--db ./coord.db diff --run blog_mvp_001 --task T1'],
  input: z.object({ run: idSchema, task: idSchema, attempt: idSchema.optional(), stat: z.boolean().optional() }),
  run: (ctx, input) =>
    withRun(ctx, input.run, (orch) => diffAttempt(orch, { runId: input.run, taskId: input.task, attemptId: input.attempt, stat: input.stat })),
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
