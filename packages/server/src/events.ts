import type { EventView } from '@orch/orch';
import type { MessageView } from '@orch/inbox';
import type { WaitResult } from '@orch/orch';
import type { ShowResult } from '@orch/inbox';
import { type Clock, ExitCode, ValidationError, intFlag, validateCommandInput } from '@orch/store';
import { type Principal, authorize } from './auth.ts';
import { type ServerCommandEnv, commandContext, principalKey, untilStopping } from './handle.ts';
import type { CommitPulse } from './pulse.ts';
import { errorJson, ServerError } from './responses.ts';
import { toAppError } from '@orch/store';

/** A comment line goes out this often on an idle stream, so proxies and clients see it is alive. */
export const HEARTBEAT_MS = 15_000;
/** An idle stream looks again this often even without a commit (a lease running out writes only when looked at). */
const RECHECK_MS = 5_000;

/** Which stream: a run's events, or a thread's messages. */
export type StreamKind = 'run' | 'thread';

export interface StreamRequest {
  principal: Principal;
  kind: StreamKind;
  /** The run or thread id (checked by the command's own schema). */
  id: string;
  /** `?after=N`; `Last-Event-ID` wins when both are given. */
  after: string | undefined;
  lastEventId: string | undefined;
  signal: AbortSignal;
  publicDb: string;
  /**
   * Authenticates the request again (its token may have been revoked or expired since the stream
   * opened): called before each look for more; a throw ends the stream
   * with that error as an `error` event.
   */
  reauthenticate?: () => Promise<void>;
}

/** A page of a stream: the items after the cursor and the next cursor. */
interface Page {
  items: { id: number; json: unknown }[];
  next: number;
  /** More are waiting: look again at once. */
  more: boolean;
}

/**
 * A live stream of a run's events (`orch wait`'s documents) or a thread's messages (`inbox show`'s),
 * as Server-Sent Events: `id: <event number | message id>`, `event: event | message`, `data: <the
 * JSON the CLI prints for it>`. The first page is read before answering, so a refusal (no such run,
 * a cursor past the newest event, a thread of another agent) is an ordinary error answer.
 *
 * @throws what the command throws for the first page, ServerError RATE_LIMITED (429) past the
 *   caller's open streams.
 */
export async function openStream(env: ServerCommandEnv, pulse: CommitPulse, clock: Clock, request: StreamRequest): Promise<ReadableStream<Uint8Array>> {
  const program = request.kind === 'run' ? 'orch' : 'inbox';
  const command = request.kind === 'run' ? 'wait' : 'show';
  authorize(request.principal, program, command);
  const who = principalKey(request.principal);
  env.limits.take(who);
  const cursorText = request.lastEventId ?? request.after ?? '0';
  const parsed = intFlag(0, Number.MAX_SAFE_INTEGER).safeParse(cursorText);
  if (!parsed.success) {
    throw new ValidationError(`after: must be a whole number (an event number or message id), not ${JSON.stringify(cursorText.slice(0, 40))}`, [
      { path: request.lastEventId !== undefined ? 'Last-Event-ID' : 'after', message: 'must be a whole number' },
    ]);
  }
  const route = env.routes.get(`${program}/${command}`);
  if (!route) throw new ServerError(404, 'UNKNOWN_COMMAND', ExitCode.usage, `${program} ${command} is not served`);
  const def = await route.load();
  const stop = new AbortController();
  // Ends with the client, the server, or the stream's own cancel; released when the stream ends.
  const waiting = untilStopping(env, stop.signal);
  const onGone = () => stop.abort();
  request.signal.addEventListener('abort', onGone, { once: true });
  const forget = () => {
    waiting.release();
    request.signal.removeEventListener('abort', onGone);
  };
  const signal = waiting.signal;
  const ctx = commandContext(env, request.principal, signal, request.publicDb);
  const read = async (cursor: number): Promise<Page> => {
    if (request.kind === 'run') {
      const input = validateCommandInput(def, { run: request.id, afterEvent: String(cursor), timeoutSeconds: '0' });
      const r = (await def.run(ctx, input)) as WaitResult;
      return { items: r.events.map((e: EventView) => ({ id: e.seq, json: e })), next: r.last_event, more: r.events.length > 0 };
    }
    const input = validateCommandInput(def, { thread: request.id, afterMessage: String(cursor) });
    const r = (await def.run(ctx, input)) as ShowResult;
    return { items: r.messages.map((m: MessageView) => ({ id: m.id, json: m })), next: r.last_message_id ?? cursor, more: r.more };
  };

  let cursor = parsed.data;
  let first: Page;
  let release: () => void;
  try {
    if (request.signal.aborted) stop.abort();
    first = await read(cursor);
    release = env.limits.open(who);
  } catch (err) {
    forget();
    throw err;
  }
  const encoder = new TextEncoder();
  const name = request.kind === 'run' ? 'event' : 'message';
  // Back pressure: the next page is read only once the client has taken what was sent (the queue
  // has room), so a client that does not read holds about one page of memory, not the whole thread.
  let pulled: (() => void) | undefined;
  const pull = () => {
    pulled?.();
    pulled = undefined;
  };
  signal.addEventListener('abort', pull, { once: true });
  return new ReadableStream<Uint8Array>({
    start: (controller) => {
      const send = (text: string) => controller.enqueue(encoder.encode(text));
      const room = async () => {
        while (!signal.aborted && (controller.desiredSize ?? 1) <= 0) await new Promise<void>((resolve) => (pulled = resolve));
      };
      void (async () => {
        let page: Page | undefined = first;
        let more = false;
        let lastWrite = clock.monotonicMs();
        try {
          send(`retry: 2000\n\n`);
          while (!signal.aborted) {
            if (page === undefined) {
              await room();
              // A page left behind (more) is read at once; otherwise the next commit (or a look now and then).
              if (!more) await pulse.commit(Math.min(RECHECK_MS, HEARTBEAT_MS), signal);
              if (signal.aborted) break;
              // A stream outlives its request: its token is read again at every look (one plain read), so
              // a revocation (itself a commit, which wakes the stream) ends it before anything later is sent.
              await request.reauthenticate?.();
              page = await read(cursor);
            }
            for (const item of page.items) send(`id: ${item.id}\nevent: ${name}\ndata: ${JSON.stringify(item.json)}\n\n`);
            if (page.items.length > 0) lastWrite = clock.monotonicMs();
            cursor = Math.max(cursor, page.next);
            more = page.more;
            page = undefined;
            if (more) continue;
            if (clock.monotonicMs() - lastWrite >= HEARTBEAT_MS) {
              send(': heartbeat\n\n');
              lastWrite = clock.monotonicMs();
            }
          }
        } catch (err) {
          if (!signal.aborted) {
            try {
              send(`event: error\ndata: ${JSON.stringify(errorJson(toAppError(err)))}\n\n`);
            } catch {
              // the client is gone
            }
          }
        } finally {
          release();
          forget();
          try {
            controller.close();
          } catch {
            // already closed
          }
        }
      })();
    },
    pull,
    cancel: () => {
      stop.abort();
    },
  });
}
