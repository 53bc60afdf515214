import { defineCommand, formatTable, idSchema } from '@orch/store';
import { z } from 'zod';
import { cleanup } from '../ops/cleanup.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'cleanup',
  summary: 'Remove the worktrees of finished attempts without losing work; --dry-run to preview',
  description:
    'Give --all-completed (every finished attempt of the run: done, failed, expired, cancelled) or --attempt ID ' +
    "(exit 4 if it is still live). For each code attempt: removes its worktree and prunes git's records, then " +
    'deletes its branch if every commit on it is also on another branch (merged), or if `orch merge --strategy squash` ' +
    'took it and the branch has not moved since. A worktree with uncommitted ' +
    'changes or with commits only its HEAD or HEAD reflog reach (a detached HEAD: worktree_only_commits), and a branch ' +
    'with commits on no other branch, are kept (the note says why) unless --force. Once a worktree is gone its ' +
    '<worktree>.report.md and the empty <run>/<task>/ folders go too. A worktree or branch another orch database ' +
    'marked as its own is never touched, even with --force; an unmarked orphan is kept unless --force. ' +
    "--all-completed also finds orphans: worktrees under the run's workspace that no attempt owns (left by an " +
    'interrupted dispatch) and that are at least a minute old. Each attempt is recorded as soon as its git work is ' +
    'done; if git refuses a step, that attempt carries the error and the others go on (errors counts them). ' +
    'Analysis attempts have nothing on disk (removed: false). --dry-run decides the same and changes nothing: removed ' +
    'and branch_deleted stay false, would_remove and would_delete_branch say what would happen, and the notes say ' +
    '"would remove ...". Safe to repeat.',
  flags: {
    run: runFlag,
    'all-completed': { type: 'boolean', describe: 'Every finished attempt of the run, plus orphaned worktrees' },
    attempt: { type: 'string', describe: 'Only this attempt (id from dispatch or task show)' },
    'dry-run': { type: 'boolean', describe: 'Show what would be removed; change nothing' },
    force: { type: 'boolean', describe: 'Also remove uncommitted changes and delete unmerged branches' },
  },
  examples: [
    '--db ./coord.db --json cleanup --run blog_mvp_001 --all-completed',
    '--db ./coord.db cleanup --run blog_mvp_001 --all-completed --dry-run',
    '--db ./coord.db --json cleanup --run blog_mvp_001 --attempt at_x1 --force',
  ],
  input: z
    .object({
      run: idSchema,
      allCompleted: z.boolean().optional(),
      attempt: idSchema.optional(),
      dryRun: z.boolean().optional(),
      force: z.boolean().optional(),
    })
    .superRefine((v, ctx) => {
      if ((v.allCompleted === true) === (v.attempt !== undefined)) {
        ctx.addIssue({ code: 'custom', path: ['allCompleted'], message: 'give exactly one of --all-completed or --attempt ID' });
      }
    }),
  run: (ctx, input) =>
    withRun(ctx, input.run, (orch) =>
      cleanup(orch, { runId: input.run, allCompleted: input.allCompleted, attemptId: input.attempt, dryRun: input.dryRun, force: input.force }),
    ),
  text: (r) => {
    const lines: string[] = [];
    if (r.attempts.length === 0) lines.push(`no finished attempts in run ${r.run}`);
    else {
      lines.push(
        formatTable([
          ['ATTEMPT', 'TASK', 'STATE', 'MODE', r.dry_run ? 'WOULD REMOVE' : 'REMOVED', 'NOTE'],
          ...r.attempts.map((a) => [
            a.attempt,
            `${a.task}#${a.number}`,
            a.state,
            a.execution_mode,
            (r.dry_run ? a.would_remove : a.removed) ? 'yes' : 'no',
            a.note,
          ]),
        ]),
      );
    }
    for (const o of r.orphans) lines.push(`orphan ${o.path}: ${o.note}`);
    for (const a of r.attempts.filter((x) => x.error !== null)) lines.push(`git refused on ${a.attempt}: ${a.error ?? ''}`);
    if (r.dry_run) lines.push('(dry run: nothing was changed)');
    return lines.join('\n');
  },
});
