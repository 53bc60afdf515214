import { defineCommand, idSchema, jsonObjectFlag, textFlag, type CommandContext } from '@orch/store';
import { z } from 'zod';
import { ask, postFailure, postResult, progress, type PostInput, type PostResult } from '../leases.ts';
import type { Inbox } from '../inbox.ts';
import { bodyFields, bodyFlags, checkBodyChoice, leaseFlag, payloadFlag, resolveBody, threadFlag, withInbox } from './shared.ts';

// progress, ask, result and fail share one shape: a lease-checked message that may move the thread.

const leased = { thread: idSchema, lease: idSchema, payloadJson: jsonObjectFlag.optional() };

export const progressInput = z.object({ ...leased, body: textFlag('the body') });
export const askInput = progressInput;
export const failInput = progressInput;
export const resultInput = z.object({ ...leased, ...bodyFields }).superRefine(checkBodyChoice);

const leasedFlags = { thread: threadFlag, lease: leaseFlag };

function runPost(op: (inbox: Inbox, input: PostInput) => Promise<PostResult>) {
  return (ctx: CommandContext, input: { thread: string; lease: string; payloadJson?: Record<string, unknown> | undefined; body?: string | undefined; bodyFile?: string | undefined }) => {
    const body = resolveBody(ctx, input);
    return withInbox(ctx, (inbox) => op(inbox, { threadId: input.thread, lease: input.lease, body, payload: input.payloadJson }));
  };
}

export const progressCommand = defineCommand({
  name: 'progress',
  summary: 'Post a progress note (also extends your lease)',
  flags: { ...leasedFlags, body: { type: 'string', describe: 'What happened', required: true }, 'payload-json': payloadFlag },
  examples: ['--db ./coord.db --json progress --thread th_123 --lease ls_abc --body "Parsed 3 of 5 logs"'],
  input: progressInput,
  run: runPost(progress),
  text: (r) => `progress #${r.message.id} posted on thread ${r.thread.id}; lease until ${r.lease?.expires_at ?? '-'}`,
});

export const askCommand = defineCommand({
  name: 'ask',
  summary: 'Ask a blocking question; the thread becomes blocked until someone replies',
  description:
    'Posts a question and marks the thread blocked (also extends your lease). Then run `inbox wait --thread ID --lease TOKEN` ' +
    'to block until the answer arrives; wait keeps the lease alive meanwhile.',
  flags: { ...leasedFlags, body: { type: 'string', describe: 'The question', required: true }, 'payload-json': payloadFlag },
  examples: ['--db ./coord.db --json ask --thread th_123 --lease ls_abc --body "Keep the v1 API or drop it?"'],
  input: askInput,
  run: runPost(ask),
  text: (r) =>
    `question #${r.message.id} posted; thread ${r.thread.id} is blocked until a reply.\n` +
    `Wait for it with: inbox --db PATH wait --thread ${r.thread.id} --lease ${r.lease?.token ?? 'TOKEN'} --after-message ${r.message.id}`,
});

export const resultCommand = defineCommand({
  name: 'result',
  summary: 'Post the final result; the thread is done and your lease ends',
  flags: { ...leasedFlags, ...bodyFlags, 'payload-json': payloadFlag },
  examples: [
    '--db ./coord.db --json result --thread th_123 --lease ls_abc --body "Root cause: a race in the cache warm-up."',
    '--db ./coord.db --json result --thread th_123 --lease ls_abc --body-file report.md --payload-json \'{"tests_fixed": 4}\'',
  ],
  input: resultInput,
  run: runPost(postResult),
  text: (r) => `result #${r.message.id} posted; thread ${r.thread.id} is done`,
});

export const failCommand = defineCommand({
  name: 'fail',
  summary: 'Report that the work failed; the thread is failed and your lease ends',
  flags: { ...leasedFlags, body: { type: 'string', describe: 'Why it failed', required: true }, 'payload-json': payloadFlag },
  examples: ['--db ./coord.db --json fail --thread th_123 --lease ls_abc --body "The repository does not build on this branch."'],
  input: failInput,
  run: runPost(postFailure),
  text: (r) => `failure #${r.message.id} posted; thread ${r.thread.id} is failed`,
});
