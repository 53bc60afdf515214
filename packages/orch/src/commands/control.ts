import { bodyFields, payloadFlag, resolveBody } from '@orch/inbox';
import { defineCommand, formatTable, idSchema, jsonObjectFlag, textFlag } from '@orch/store';
import { z } from 'zod';
import { answer } from '../ops/answer.ts';
import { cancel } from '../ops/cancel.ts';
import { cleanup } from '../ops/cleanup.ts';
import { runFlag, taskFlag, withRun } from './shared.ts';

export const answerCommand = defineCommand({
  name: 'answer',
  summary: "Answer a blocked task's pending question; the task goes back to running",
  description:
    'Replies on the blocked attempt\'s thread (the worker\'s `inbox wait` returns with it). Give --body, --body-file, ' +
    '--payload-json for a structured decision, or a body plus a payload. Exit 4 when the task is not blocked; see `blocked`.',
  flags: {
    run: runFlag,
    task: taskFlag,
    body: { type: 'string', describe: 'The answer text' },
    'body-file': { type: 'string', describe: 'Read the answer text from this file' },
    'payload-json': payloadFlag,
  },
  examples: [
    '--db ./coord.db --json answer --run blog_mvp_001 --task T2 --body "MVP supports draft and published only."',
    '--db ./coord.db --json answer --run blog_mvp_001 --task T2 --payload-json \'{"decision": "draft_and_published"}\'',
  ],
  input: z
    .object({ run: idSchema, task: idSchema, ...bodyFields, payloadJson: jsonObjectFlag.optional() })
    .superRefine((v, ctx) => {
      if (v.body !== undefined && v.bodyFile !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['body'], message: 'give either --body or --body-file, not both' });
      } else if (v.body === undefined && v.bodyFile === undefined && v.payloadJson === undefined) {
        ctx.addIssue({ code: 'custom', path: ['body'], message: 'is required (or --body-file PATH, or --payload-json JSON)' });
      }
    }),
  run: (ctx, input) => {
    const body = input.body === undefined && input.bodyFile === undefined ? undefined : resolveBody(ctx, input);
    return withRun(ctx, input.run, (orch) => answer(orch, { runId: input.run, taskId: input.task, body, payload: input.payloadJson }));
  },
  text: (r) => `answered ${r.task.run}/${r.task.id} on thread ${r.attempt.thread_id} (message #${r.message.id}); the task is ${r.task.state}`,
});

export const cancelCommand = defineCommand({
  name: 'cancel',
  summary: 'Cancel one task (and its live attempt), or the whole run',
  description:
    'With --task, cancels that task; every live attempt\'s thread is cancelled, so the worker\'s next write fails with ' +
    'exit 5. Without --task, cancels every unfinished task and the run. Already cancelled: nothing changes. A done ' +
    'task or run cannot be cancelled (exit 4). `stranded` lists unfinished tasks that depend on a cancelled one and so ' +
    'can never become ready: cancel them too, or re-plan.',
  flags: {
    run: runFlag,
    task: { type: 'string', describe: 'Cancel only this task' },
    reason: { type: 'string', describe: 'Why (posted to the worker\'s thread and logged)' },
  },
  examples: ['--db ./coord.db --json cancel --run blog_mvp_001 --task T3 --reason "Out of scope"', '--db ./coord.db --json cancel --run blog_mvp_001'],
  input: z.object({ run: idSchema, task: idSchema.optional(), reason: textFlag('the reason').optional() }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => cancel(orch, { runId: input.run, taskId: input.task, reason: input.reason })),
  text: (r) => {
    const lines = [r.cancelled.length === 0 ? 'nothing to cancel (already cancelled)' : `cancelled ${r.cancelled.join(', ')}`];
    if (r.cancelled_attempts.length > 0) lines.push(`revoked attempts ${r.cancelled_attempts.join(', ')}`);
    if (r.stranded.length > 0) lines.push(`stranded (depend on a cancelled task): ${r.stranded.join(', ')}`);
    lines.push(`run ${r.run.id} is ${r.run.state}`);
    return lines.join('\n');
  },
});

export const cleanupCommand = defineCommand({
  name: 'cleanup',
  summary: 'Remove the worktrees of finished attempts without losing work; --dry-run to preview',
  description:
    'Give --all-completed (every finished attempt of the run: done, failed, expired, cancelled) or --attempt ID ' +
    '(exit 4 if it is still live). For each code attempt: removes its worktree and prunes git\'s records, then ' +
    'deletes its branch if every commit on it is also on another branch (merged), or if `orch merge --strategy squash` ' +
    'took it and the branch has not moved since. A worktree with uncommitted ' +
    'changes or with commits only its HEAD or HEAD reflog reach (a detached HEAD: worktree_only_commits), and a branch ' +
    'with commits on no other branch, are kept (the note says why) unless --force. Once a worktree is gone its ' +
    '<worktree>.report.md and the empty <run>/<task>/ folders go too. A worktree or branch another orch database ' +
    'marked as its own is never touched, even with --force; an unmarked orphan is kept unless --force. ' +
    '--all-completed also finds orphans: worktrees under the run\'s workspace that no attempt owns (left by an ' +
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
          ...r.attempts.map((a) => [a.attempt, `${a.task}#${a.number}`, a.state, a.execution_mode, (r.dry_run ? a.would_remove : a.removed) ? 'yes' : 'no', a.note]),
        ]),
      );
    }
    for (const o of r.orphans) lines.push(`orphan ${o.path}: ${o.note}`);
    for (const a of r.attempts.filter((x) => x.error !== null)) lines.push(`git refused on ${a.attempt}: ${a.error ?? ''}`);
    if (r.dry_run) lines.push('(dry run: nothing was changed)');
    return lines.join('\n');
  },
});
