import { defineCommand } from '@orch/store';
import { reassign } from '../ops/reassign.ts';
import { dispatchText } from '../render.ts';
import { briefSettings, optionalBody, optionalBodyText, runFlag, taskFlag, withRun, type DispatchCommandOptions } from './shared.ts';

export const command = (options: DispatchCommandOptions) =>
  defineCommand({
    name: 'reassign',
    summary: "Cancel a task's live attempt and dispatch a new one to another agent",
    description:
      "The live attempt's thread is cancelled, so the old worker's next write fails with exit 5 (lease lost). A new " +
      'attempt and thread go to --to, with the previous body unless --body / --body-file is given. Also works on a ' +
      'failed or expired task. In code mode the new attempt gets a fresh worktree and branch (from the previous base ' +
      'ref, or --base-ref). Exit 4 for a task that was never dispatched, is done, or is cancelled.',
    flags: {
      run: runFlag,
      task: taskFlag,
      to: { type: 'string', describe: 'The new worker agent', required: true },
      body: { type: 'string', describe: "New instructions (default: the previous attempt's)" },
      'body-file': { type: 'string', describe: 'Read the new instructions from this file' },
      'base-ref': { type: 'string', describe: "code mode: base the fresh worktree on this ref (default: the previous attempt's base ref)" },
    },
    examples: ['--db ./coord.db --json reassign --run blog_mvp_001 --task T2 --to qa-worker-2'],
    input: optionalBody.refine((v) => v.to !== undefined, { path: ['to'], message: 'is required' }),
    run: (ctx, input) => {
      const body = optionalBodyText(ctx, input);
      return withRun(ctx, input.run, (orch) =>
        reassign(orch, { runId: input.run, taskId: input.task, to: input.to ?? '', body, baseRef: input.baseRef, brief: briefSettings(ctx, options) }),
      );
    },
    text: (r) =>
      `${r.cancelled_attempt ? `cancelled attempt ${r.cancelled_attempt.number} (${r.cancelled_attempt.assigned_to})\n` : ''}${dispatchText(r, 'reassigned')}`,
  });
