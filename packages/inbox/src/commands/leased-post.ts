import { idSchema, jsonObjectFlag, textFlag, type CommandContext } from '@orch/store';
import { z } from 'zod';
import type { PostInput, PostResult } from '../leases.ts';
import type { Inbox } from '../inbox.ts';
import { leaseFlag, resolveBody, threadFlag, withInbox } from './shared.ts';

// progress, ask, result and fail share one shape: a lease-checked message that may move the thread.

/** The input fields every leased post has: the thread, the lease token and an optional payload. */
export const leased = { thread: idSchema, lease: idSchema, payloadJson: jsonObjectFlag.optional() };

/** The input of progress, ask and fail: the leased fields and a --body. */
export const leasedBodyInput = z.object({ ...leased, body: textFlag('the body') });

export const leasedFlags = { thread: threadFlag, lease: leaseFlag };

/** A command's `run` that reads the body (--body or --body-file) and posts it with `op` under the lease. */
export function runPost(op: (inbox: Inbox, input: PostInput) => Promise<PostResult>) {
  return (ctx: CommandContext, input: { thread: string; lease: string; payloadJson?: Record<string, unknown> | undefined; body?: string | undefined; bodyFile?: string | undefined }) => {
    const body = resolveBody(ctx, input);
    return withInbox(ctx, (inbox) => op(inbox, { threadId: input.thread, lease: input.lease, body, payload: input.payloadJson }));
  };
}
