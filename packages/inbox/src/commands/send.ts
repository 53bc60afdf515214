import { defineCommand, idSchema, jsonObjectFlag, labelFlag } from '@orch/store';
import { z } from 'zod';
import { threadText } from '../render.ts';
import { send } from '../threads.ts';
import { bodyFields, bodyFlags, checkBodyChoice, payloadFlag, resolveBody, withInbox } from './shared.ts';

export const sendInput = z
  .object({
    to: idSchema.optional(),
    subject: labelFlag().optional(),
    from: idSchema.default('leader'),
    thread: idSchema.optional(),
    payloadJson: jsonObjectFlag.optional(),
    ...bodyFields,
  })
  .superRefine((v, ctx) => {
    checkBodyChoice(v, ctx);
    if (v.thread === undefined) {
      if (v.to === undefined) ctx.addIssue({ code: 'custom', path: ['to'], message: 'is required to open a thread (or give --thread ID)' });
      if (v.subject === undefined) ctx.addIssue({ code: 'custom', path: ['subject'], message: 'is required to open a thread (or give --thread ID)' });
    }
  });

export const command = defineCommand({
  name: 'send',
  summary: 'Open a thread assigned to an agent, or add a message to one (--thread)',
  description:
    'Without --thread, opens a new thread assigned to --to whose first message (kind "task") is the body. ' +
    'With --thread, appends a note to that thread (--to, if given, must be its agent; --subject is ignored).',
  flags: {
    to: { type: 'string', describe: 'Agent the thread is assigned to (required to open a thread)' },
    subject: { type: 'string', describe: 'One-line subject (required to open a thread)' },
    ...bodyFlags,
    from: { type: 'string', describe: 'Author name (default: leader)' },
    thread: { type: 'string', describe: 'Append to this thread instead of opening one' },
    'payload-json': payloadFlag,
  },
  examples: [
    '--db ./coord.db send --to qa-worker --subject "Summarize flaky tests" --body "Read the CI logs and report."',
    '--db ./coord.db --json send --to qa-worker --subject "Review" --body-file task.md --payload-json \'{"priority": 1}\'',
    '--db ./coord.db send --thread th_123 --body "One more detail: ignore the docs folder."',
  ],
  input: sendInput,
  run: (ctx, input) => {
    const body = resolveBody(ctx, input);
    return withInbox(ctx, (inbox) =>
      send(inbox, { to: input.to, subject: input.subject, from: ctx.author ?? input.from, body, payload: input.payloadJson, threadId: input.thread }),
    );
  },
  text: (r) => `${r.created ? 'opened' : 'added message to'} thread ${r.thread.id} (message #${r.message.id})\n\n${threadText(r.thread, [])}`,
});
