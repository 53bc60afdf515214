import { bodyFields, bodyFlags, checkBodyChoice, resolveBody } from '@orch/inbox';
import { defineCommand, idSchema } from '@orch/store';
import path from 'node:path';
import { z } from 'zod';
import { dispatch } from '../ops/dispatch.ts';
import { DEFAULT_WORKSPACE_ROOT } from '../ops/dispatch-worktree.ts';
import { dispatchText } from '../render.ts';
import { EXECUTION_MODES } from '../schema.ts';
import { briefSettings, runFlag, taskFlag, withRun, type DispatchCommandOptions } from './shared.ts';

const codeOnly = ['repoPath', 'workspaceRoot', 'baseRef', 'remote', 'repoUrl'] as const;
const codeFlagName = {
  repoPath: '--repo-path',
  workspaceRoot: '--workspace-root',
  baseRef: '--base-ref',
  remote: '--remote',
  repoUrl: '--repo-url',
} as const;

export const command = (options: DispatchCommandOptions) =>
  defineCommand({
    name: 'dispatch',
    summary: 'Hand a ready task to a worker: a new attempt and an inbox thread',
    description:
      "Creates attempt N of the task and an inbox thread assigned to --to (default: the task's --default-to; neither is " +
      'exit 2) whose first message carries the task, its acceptance criteria and the body. It does not start a worker: ' +
      'a worker claims the thread with `inbox claim`. The task must be ready (exit 4 otherwise; see `ready`). ' +
      '--execution-mode is required: analysis (read-only work, no worktree) or code. Code mode bases the work on a ' +
      "commit: --base-ref (default: the repository's current branch) of --repo-path (default: the current directory), " +
      `creates branch orch/<run>/<task>/<attempt> there and a worktree for it at <workspace-root>/<run>/<task>/<attempt> ` +
      `(default workspace root: ${DEFAULT_WORKSPACE_ROOT} inside the repository, which git is told to ignore). A missing ` +
      'ref, a directory that is not a git repository, or a repository without commits is refused with nothing written. ' +
      'Code mode across machines (a worker whose machine cannot see this repository): --remote NAME (a git remote of ' +
      '--repo-path) or --repo-url URL names a git remote both sides reach; dispatch then makes no worktree here, but ' +
      'creates the attempt branch on that remote at the base commit (pushing the base commit if the remote lacks it; a ' +
      'branch of that name already there at another commit is refused, never overwritten) and records the remote URL ' +
      'in the attempt. The worker runs `inbox work --repo ITS_CLONE` (or the git commands its brief gives) and pushes ' +
      'the branch back; diff, merge and cleanup fetch it from the remote first. See docs/guide.md, "Code mode across machines". ' +
      "--repo-path, --workspace-root, --base-ref, --remote and --repo-url apply to code only. The task message also carries the worker's " +
      "brief, rendered once here with the absolute --db path and this orch's inbox executable: save the JSON output " +
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
      'base-ref': {
        type: 'string',
        describe: "code mode: the branch, tag or commit the attempt branch starts from (default: the repository's current branch)",
      },
      remote: {
        type: 'string',
        describe: 'code mode across machines: the git remote of --repo-path the attempt branch travels through (its URL is recorded); no local worktree',
      },
      'repo-url': {
        type: 'string',
        describe: 'code mode across machines: like --remote, with the URL itself (one the workers can reach); not with --remote',
      },
    },
    examples: [
      '--db ./coord.db --json dispatch --run blog_mvp_001 --task T2 --execution-mode analysis --to qa-worker --body "Read the failing test logs and summarize the root cause." > /tmp/t2-dispatch.json',
      '--db ./coord.db --json dispatch --run blog_mvp_001 --task T1 --execution-mode code --to foundation-worker --base-ref main --workspace-root .orch/worktrees --body-file tasks/t1.md > /tmp/t1-dispatch.json',
      '--db ./coord.db --json dispatch --run blog_mvp_001 --task T3 --execution-mode code --to ci-worker --base-ref main --remote origin --body-file tasks/t3.md',
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
        remote: z.string().min(1, 'must not be empty').optional(),
        repoUrl: z.string().min(1, 'must not be empty').optional(),
      })
      .superRefine((v, ctx) => {
        checkBodyChoice(v, ctx);
        if (v.remote !== undefined && v.repoUrl !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['repoUrl'], message: 'give either --remote or --repo-url, not both' });
        }
        if (v.workspaceRoot !== undefined && (v.remote !== undefined || v.repoUrl !== undefined)) {
          ctx.addIssue({ code: 'custom', path: ['workspaceRoot'], message: 'makes no sense with --remote or --repo-url: no worktree is made here' });
        }
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
                  remote: input.remote,
                  remoteUrl: input.repoUrl,
                }
              : undefined,
          brief: briefSettings(ctx, options),
        }),
      );
    },
    text: (r) => dispatchText(r),
  });
