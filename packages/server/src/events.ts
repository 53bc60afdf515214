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
  const life = streamLife(env, request.signal);
  const signal = life.signal;
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
    first = await read(cursor);
    release = env.limits.open(who);
  } catch (err) {
    life.forget();
    throw err;
  }
  const name = request.kind === 'run' ? 'event' : 'message';
  return sseBody(life, release, async (send, room) => {
    let page: Page | undefined = first;
    let more = false;
    let lastWrite = clock.monotonicMs();
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
  });
}

/** Change ticks of one `/v1/changes` stream are this far apart at least: a burst of commits makes one tick. */
export const CHANGE_GAP_MS = 50;

export interface ChangesRequest {
  principal: Principal;
  /** `Last-Event-ID` of a reconnecting client: the ids it gets next continue after it. */
  lastEventId: string | undefined;
  signal: AbortSignal;
  /** As StreamRequest.reauthenticate: called at every wake; a throw ends the stream with an `error` event. */
  reauthenticate?: () => Promise<void>;
}

/**
 * The board's one stream (`GET /v1/changes`): `event: change`, `id: <n>`, `data: {"at": ISO time}`
 * once at once, then after every commit to the database by any process (the CommitPulse), at most
 * one per CHANGE_GAP_MS however many commits land meanwhile; a comment line on an idle stream every
 * HEARTBEAT_MS. The page re-reads what it shows at every tick, so a tick carries no data of its own
 * and any authenticated caller may have one. `id` grows by one per tick, after `Last-Event-ID` when a
 * client reconnects (the server keeps no history: the client re-reads everything anyway).
 *
 * @throws ValidationError (2) for a Last-Event-ID that is not a whole number; ServerError
 *   RATE_LIMITED (429) past the caller's rate or open streams.
 */
/** The largest Last-Event-ID the change stream takes: its next ids stay exact whole numbers for 2^52 ticks. */
export const LAST_EVENT_ID_MAX = 2 ** 52;

export async function openChanges(env: ServerCommandEnv, pulse: CommitPulse, clock: Clock, request: ChangesRequest): Promise<ReadableStream<Uint8Array>> {
  const who = principalKey(request.principal);
  env.limits.take(who);
  const text = request.lastEventId?.trim() || '0';
  // Up to 2^52: the ids after it must still grow by one (past 2^53 a number has no room for + 1).
  const parsed = intFlag(0, LAST_EVENT_ID_MAX).safeParse(text);
  if (!parsed.success) {
    throw new ValidationError(`Last-Event-ID: must be a whole number (the id of the last change seen), not ${JSON.stringify(text.slice(0, 40))}`, [
      { path: 'Last-Event-ID', message: 'must be a whole number' },
    ]);
  }
  const release = env.limits.open(who);
  const life = streamLife(env, request.signal);
  const signal = life.signal;
  let id = parsed.data;
  return sseBody(life, release, async (send, room) => {
    let lastWrite = clock.monotonicMs();
    let lastTick = Number.NEGATIVE_INFINITY;
    // Commits the watch had seen when the last tick went out: any since then deserve a tick.
    let seen = pulse.commits;
    const tick = () => {
      seen = pulse.commits;
      id++;
      send(`id: ${id}\nevent: change\ndata: ${JSON.stringify({ at: new Date(clock.now()).toISOString() })}\n\n`);
      lastTick = lastWrite = clock.monotonicMs();
    };
    tick();
    while (!signal.aborted) {
      await room();
      // Read synchronously before waiting: a commit between the last tick and now is not waited for again.
      if (pulse.commits === seen) await pulse.commit(RECHECK_MS, signal);
      if (signal.aborted) break;
      // Read the token again at every wake (a revocation is a commit; an expiry shows within RECHECK_MS).
      await request.reauthenticate?.();
      if (pulse.commits !== seen) {
        const gap = CHANGE_GAP_MS - (clock.monotonicMs() - lastTick);
        // Commits landing during the gap are covered by the tick after it.
        if (gap > 0) await clock.sleep(gap, signal);
        if (signal.aborted) break;
        tick();
      } else if (clock.monotonicMs() - lastWrite >= HEARTBEAT_MS) {
        send(': heartbeat\n\n');
        lastWrite = clock.monotonicMs();
      }
    }
  });
}

/** How long a stream lives: until the client goes, the server stops, or the stream is cancelled. */
interface StreamLife {
  signal: AbortSignal;
  stop: AbortController;
  /** Stops listening to the client and the server (once the stream has ended, or failed to start). */
  forget(): void;
}

function streamLife(env: ServerCommandEnv, client: AbortSignal): StreamLife {
  const stop = new AbortController();
  const waiting = untilStopping(env, stop.signal);
  const onGone = () => stop.abort();
  client.addEventListener('abort', onGone, { once: true });
  if (client.aborted) stop.abort();
  return {
    signal: waiting.signal,
    stop,
    forget: () => {
      waiting.release();
      client.removeEventListener('abort', onGone);
    },
  };
}

/**
 * A Server-Sent Events body: `retry: 2000`, then what `loop` sends until it returns or `life` ends;
 * a throw from `loop` is sent as an `error` event (the CLI's error document). Afterwards the caller's
 * slot is released (`release`) and the stream closed. Back pressure: `room()` resolves once the
 * client has taken what was sent, so a client that does not read holds about one page of memory.
 */
function sseBody(
  life: StreamLife,
  release: () => void,
  loop: (send: (text: string) => void, room: () => Promise<void>) => Promise<void>,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const signal = life.signal;
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
        try {
          send('retry: 2000\n\n');
          await loop(send, room);
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
          life.forget();
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
      life.stop.abort();
    },
  });
}
