import { bodyFields, bodyFlags, checkBodyChoice, resolveBody } from '@orch/inbox';
import { defineCommand, idSchema, type CommandContext } from '@orch/store';
import { z } from 'zod';
import { dispatch } from '../ops/dispatch.ts';
import { DEFAULT_WORKSPACE_ROOT } from '../ops/dispatch-worktree.ts';
import { reassign } from '../ops/reassign.ts';
import { retry } from '../ops/retry.ts';
import path from 'node:path';
import type { BriefSettings } from '../brief.ts';
import { dispatchText } from '../render.ts';
import { EXECUTION_MODES } from '../schema.ts';
import { runFlag, taskFlag, withRun } from './shared.ts';

const codeOnly = ['repoPath', 'workspaceRoot', 'baseRef'] as const;
const codeFlagName = { repoPath: '--repo-path', workspaceRoot: '--workspace-root', baseRef: '--base-ref' } as const;

/** What the CLI knows that the library cannot: how the workers it briefs should run the inbox CLI. */
export interface DispatchCommandOptions {
  /** Written into every brief (see defaultWorkerInbox). */
  workerInbox: string;
}

/** The brief's settings for a command: the --db path made absolute, and the CLI's worker inbox. */
function briefSettings(ctx: CommandContext, options: DispatchCommandOptions): BriefSettings {
  return { db: path.resolve(ctx.cwd, ctx.dbPath), inbox: options.workerInbox };
}

export const dispatchCommand = (options: DispatchCommandOptions) => defineCommand({
  name: 'dispatch',
  summary: 'Hand a ready task to a worker: a new attempt and an inbox thread',
  description:
    'Creates attempt N of the task and an inbox thread assigned to --to (default: the task\'s --default-to; neither is ' +
    'exit 2) whose first message carries the task, its acceptance criteria and the body. It does not start a worker: ' +
    'a worker claims the thread with `inbox claim`. The task must be ready (exit 4 otherwise; see `ready`). ' +
    '--execution-mode is required: analysis (read-only work, no worktree) or code. Code mode bases the work on a ' +
    'commit: --base-ref (default: the repository\'s current branch) of --repo-path (default: the current directory), ' +
    `creates branch orch/<run>/<task>/<attempt> there and a worktree for it at <workspace-root>/<run>/<task>/<attempt> ` +
    `(default workspace root: ${DEFAULT_WORKSPACE_ROOT} inside the repository, which git is told to ignore). A missing ` +
    'ref, a directory that is not a git repository, or a repository without commits is refused with nothing written. ' +
    '--repo-path, --workspace-root and --base-ref apply to code only. The task message also carries the worker\'s ' +
    'brief, rendered once here with the absolute --db path and this orch\'s inbox executable: save the JSON output ' +
    'and `orch-worker-brief` prints that brief for a worker you launch; `inbox work` hands the same text to its command.',
  flags: {
    run: runFlag,
    task: taskFlag,
    'execution-mode': { type: 'string', describe: `${EXECUTION_MODES.join('|')}`, required: true },
    to: { type: 'string', describe: "Worker agent (default: the task's default_to)" },
    body: { type: 'string', describe: 'Instructions for the worker (or --body-file; one is required)' },
    'body-file': bodyFlags['body-file'] ?? { type: 'string', describe: 'Read the instructions from this file' },
    'repo-path': { type: 'string', describe: 'code mode: the git repository (default: the current directory)' },
    'workspace-root': { type: 'string', describe: `code mode: where attempt worktrees are created (default: ${DEFAULT_WORKSPACE_ROOT} in the repository)` },
    'base-ref': { type: 'string', describe: "code mode: the branch, tag or commit the attempt branch starts from (default: the repository's current branch)" },
  },
  examples: [
    '--db ./coord.db --json dispatch --run blog_mvp_001 --task T2 --execution-mode analysis --to qa-worker --body "Read the failing test logs and summarize the root cause." > /tmp/t2-dispatch.json',
    '--db ./coord.db --json dispatch --run blog_mvp_001 --task T1 --execution-mode code --to foundation-worker --base-ref main --workspace-root .orch/worktrees --body-file tasks/t1.md > /tmp/t1-dispatch.json',
  ],
  input: z
    .object({
      run: idSchema,
      task: idSchema,
      executionMode: z.enum(EXECUTION_MODES, { error: `must be one of ${EXECUTION_MODES.join(', ')}` }),
      to: idSchema.optional(),
      ...bodyFields,
      repoPath: z.string().min(1, 'must not be empty').optional(),
      workspaceRoot: z.string().min(1, 'must not be empty').optional(),
      baseRef: z.string().min(1, 'must not be empty').optional(),
    })
    .superRefine((v, ctx) => {
      checkBodyChoice(v, ctx);
      if (v.executionMode === 'analysis') {
        for (const k of codeOnly) {
          if (v[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `${codeFlagName[k]} applies to --execution-mode code only` });
        }
      }
    }),
  run: (ctx, input) => {
    const body = resolveBody(ctx, input);
    return withRun(ctx, input.run, (orch) =>
      dispatch(orch, {
        runId: input.run,
        taskId: input.task,
        executionMode: input.executionMode,
        to: input.to,
        body,
        code:
          input.executionMode === 'code'
            ? {
                repoPath: path.resolve(ctx.cwd, input.repoPath ?? '.'),
                workspaceRoot: input.workspaceRoot === undefined ? undefined : path.resolve(ctx.cwd, input.workspaceRoot),
                baseRef: input.baseRef,
              }
            : undefined,
        brief: briefSettings(ctx, options),
      }),
    );
  },
  text: (r) => dispatchText(r),
});

const optionalBody = z
  .object({ run: idSchema, task: idSchema, to: idSchema.optional(), ...bodyFields, baseRef: z.string().min(1, 'must not be empty').optional() })
  .superRefine((v, ctx) => {
    if (v.body !== undefined && v.bodyFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['body'], message: 'give either --body or --body-file, not both' });
    }
  });

function optionalBodyText(ctx: CommandContext, v: { body?: string | undefined; bodyFile?: string | undefined }): string | undefined {
  return v.body === undefined && v.bodyFile === undefined ? undefined : resolveBody(ctx, v);
}

export const retryCommand = (options: DispatchCommandOptions) => defineCommand({
  name: 'retry',
  summary: 'Give a failed or expired task (or a done code task not merged) a fresh attempt (new thread)',
  description:
    'For tasks that are failed or expired, and for a done task whose latest attempt is a code attempt that was never ' +
    'merged (its merge conflicted, say): that task reopens (events task_reopened, and run_reopened if the run was ' +
    'done). A merged attempt\'s task is not reopened (exit 4), nor is any other state. Reuses the previous attempt\'s agent, execution ' +
    'mode and body unless --to / --body / --body-file say otherwise. In code mode the new attempt gets a fresh ' +
    'worktree and branch from the previous base ref, resolved again (or --base-ref). Output is like dispatch; the new ' +
    'thread\'s task message carries the new attempt\'s brief.',
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

export const reassignCommand = (options: DispatchCommandOptions) => defineCommand({
  name: 'reassign',
  summary: "Cancel a task's live attempt and dispatch a new one to another agent",
  description:
    'The live attempt\'s thread is cancelled, so the old worker\'s next write fails with exit 5 (lease lost). A new ' +
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
  text: (r) => `${r.cancelled_attempt ? `cancelled attempt ${r.cancelled_attempt.number} (${r.cancelled_attempt.assigned_to})\n` : ''}${dispatchText(r, 'reassigned')}`,
});
