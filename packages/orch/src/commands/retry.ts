import { defineCommand } from '@orch/store';
import { retry } from '../ops/retry.ts';
import { dispatchText } from '../render.ts';
import { briefSettings, optionalBody, optionalBodyText, runFlag, taskFlag, withRun, type DispatchCommandOptions } from './shared.ts';

export const command = (options: DispatchCommandOptions) =>
  defineCommand({
    name: 'retry',
    summary: 'Give a failed or expired task (or a done code task not merged) a fresh attempt (new thread)',
    description:
      'For tasks that are failed or expired, and for a done task whose latest attempt is a code attempt that was never ' +
      'merged (its merge conflicted, say): that task reopens (events task_reopened, and run_reopened if the run was ' +
      "done). A merged attempt's task is not reopened (exit 4), nor is any other state. Reuses the previous attempt's agent, execution " +
      'mode and body unless --to / --body / --body-file say otherwise. In code mode the new attempt gets a fresh ' +
      'worktree and branch from the previous base ref, resolved again (or --base-ref). Output is like dispatch; the new ' +
      "thread's task message carries the new attempt's brief.",
    flags: {
      run: runFlag,
      task: taskFlag,
      to: { type: 'string', describe: "Worker agent (default: the previous attempt's)" },
      body: { type: 'string', describe: "New instructions (default: the previous attempt's)" },
      'body-file': { type: 'string', describe: 'Read the new instructions from this file' },
      'base-ref': { type: 'string', describe: "code mode: base the fresh worktree on this ref (default: the previous attempt's base ref)" },
    },
    examples: ['--db ./coord.db --json retry --run blog_mvp_001 --task T7a --to backend-worker --body "Retry after fixing the contract mismatch."'],
    input: optionalBody,
    run: (ctx, input) => {
      const body = optionalBodyText(ctx, input);
      return withRun(ctx, input.run, (orch) =>
        retry(orch, { runId: input.run, taskId: input.task, to: input.to, body, baseRef: input.baseRef, brief: briefSettings(ctx, options) }),
      );
    },
    text: (r) => dispatchText(r, 'retried'),
  });
