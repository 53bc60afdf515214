import { ValidationError, idSchema, intFlag, jsonObjectFlag, readTextFile, textFlag, type CommandContext, type FlagSpec } from '@orch/store';
import { z } from 'zod';
import { attachInbox, openInbox, type Inbox } from '../inbox.ts';
import type { PostInput, PostResult } from '../leases.ts';
import { DEFAULT_MESSAGE_BYTES, MAX_MESSAGE_BYTES } from '../message-pages.ts';

/** Opens the inbox named by `--db`, runs `fn`, and always closes it. */
export async function withInbox<T>(
  ctx: CommandContext,
  fn: (inbox: Inbox) => Promise<T>,
  options: { poolSize?: number; reconnectMs?: number } = {},
): Promise<T> {
  if (ctx.store !== undefined) {
    // A host's shared store: used as it is, and left open.
    const shared = await attachInbox(ctx.store, {
      clock: ctx.clock,
      ids: ctx.ids,
      ...(ctx.actingAgent !== undefined ? { actingAgent: ctx.actingAgent } : {}),
      ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
    });
    return fn(shared);
  }
  const reconnectMs = Math.max(options.reconnectMs ?? 0, ctx.reconnectMs ?? 0);
  const inbox = await openInbox({
    path: ctx.dbPath,
    clock: ctx.clock,
    ids: ctx.ids,
    ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}),
    ...options,
    ...(reconnectMs > 0 ? { reconnectMs } : {}),
    ...(ctx.actingAgent !== undefined ? { actingAgent: ctx.actingAgent } : {}),
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
  });
  try {
    return await fn(inbox);
  } finally {
    await inbox.close();
  }
}

export const threadFlag: FlagSpec = { type: 'string', describe: 'Thread id (from send, list or claim)', required: true };
export const leaseFlag: FlagSpec = { type: 'string', describe: 'Lease token returned by claim', required: true };
/** `--max-bytes N`: bounds the messages one answer carries. */
export const maxBytesFlag: FlagSpec = {
  type: 'string',
  describe: `At most about this many bytes of message bodies and payloads, 1-${MAX_MESSAGE_BYTES} (default ${DEFAULT_MESSAGE_BYTES}, 8 MiB); one message is always returned`,
};
export const maxBytesField = intFlag(1, MAX_MESSAGE_BYTES).optional();
export const payloadFlag: FlagSpec = { type: 'string', describe: 'Structured data as a JSON object, e.g. \'{"files": 3}\'' };

/** `--body TEXT | --body-file PATH`: exactly one of them. */
export const bodyFlags: Record<string, FlagSpec> = {
  body: { type: 'string', describe: 'Message text (or use --body-file)' },
  'body-file': { type: 'string', describe: 'Read the message text from this file' },
};

export const bodyFields = {
  body: textFlag('the body').optional(),
  bodyFile: z.string().min(1, 'must not be empty').optional(),
};

/** Checks the --body / --body-file choice inside a schema's superRefine. */
export function checkBodyChoice(v: { body?: string | undefined; bodyFile?: string | undefined }, ctx: z.RefinementCtx): void {
  if (v.body !== undefined && v.bodyFile !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['body'], message: 'give either --body or --body-file, not both' });
  } else if (v.body === undefined && v.bodyFile === undefined) {
    ctx.addIssue({ code: 'custom', path: ['body'], message: 'is required (or give --body-file PATH)' });
  }
}

/** The body text, reading --body-file if that was given; validated like --body. */
export function resolveBody(ctx: CommandContext, v: { body?: string | undefined; bodyFile?: string | undefined }): string {
  if (v.body !== undefined) return v.body;
  const text = readTextFile(ctx, v.bodyFile ?? '', 'body-file');
  const checked = textFlag(`the file ${v.bodyFile ?? ''}`).safeParse(text);
  if (!checked.success) {
    const message = checked.error.issues[0]?.message ?? 'is invalid';
    throw new ValidationError(`--body-file: ${message}`, [{ path: '--body-file', message }]);
  }
  return text;
}

// progress, ask, result and fail share one shape: a lease-checked message that may move the thread.

/** The input fields every leased post has: the thread, the lease token and an optional payload. */
export const leased = { thread: idSchema, lease: idSchema, payloadJson: jsonObjectFlag.optional() };

/** The input of progress, ask and fail: the leased fields and a --body. */
export const leasedBodyInput = z.object({ ...leased, body: textFlag('the body') });

export const leasedFlags = { thread: threadFlag, lease: leaseFlag };

/** A command's `run` that reads the body (--body or --body-file) and posts it with `op` under the lease. */
export function runPost(op: (inbox: Inbox, input: PostInput) => Promise<PostResult>) {
  return (
    ctx: CommandContext,
    input: { thread: string; lease: string; payloadJson?: Record<string, unknown> | undefined; body?: string | undefined; bodyFile?: string | undefined },
  ) => {
    const body = resolveBody(ctx, input);
    return withInbox(ctx, (inbox) => op(inbox, { threadId: input.thread, lease: input.lease, body, payload: input.payloadJson }));
  };
}
