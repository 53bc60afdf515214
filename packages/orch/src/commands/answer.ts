import { bodyFields, payloadFlag, resolveBody } from '@orch/inbox';
import { defineCommand, idSchema, jsonObjectFlag } from '@orch/store';
import { z } from 'zod';
import { answer } from '../ops/answer.ts';
import { runFlag, taskFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'answer',
  summary: "Answer a blocked task's pending question; the task goes back to running",
  description:
    "Replies on the blocked attempt's thread (the worker's `inbox wait` returns with it). Give --body, --body-file, " +
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
  input: z.object({ run: idSchema, task: idSchema, ...bodyFields, payloadJson: jsonObjectFlag.optional() }).superRefine((v, ctx) => {
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
