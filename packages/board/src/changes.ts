import { Backoff, Throttle } from './live-timing.ts';
import { SseParser } from './sse-parse.ts';
import { getToken } from './token.ts';

/**
 * The change stream: `GET /v1/changes` (Server-Sent Events), read with fetch because EventSource
 * cannot send an Authorization header. Every `change` event (and every reconnect) ticks the
 * listeners, and every useQuery re-fetches what it shows; ticks are throttled to one per 250 ms
 * (the first at once). A dropped stream is opened again with backoff (0.5 s doubling to 10 s,
 * afresh only after a connection that stayed up 10 s) and `Last-Event-ID`.
 *
 * One stream per browser, not per tab: a browser keeps at most six HTTP/1.1 connections to a host,
 * and a stream holds one for good, so six tabs each with its own stream left no connection for any
 * request (every tab froze, a seventh never loaded). The tabs of one origin elect one of them with
 * a Web Lock; it holds the stream and passes each tick and its state on over a BroadcastChannel.
 * When it closes or signs out, its lock is released and another tab takes the stream over. A tick
 * carries no data, so any tab's token serves every tab; a tab whose own token was revoked learns it
 * from its next request (401), which every tick makes.
 */
export type LiveState = 'connecting' | 'connected' | 'reconnecting';

/** The Web Lock the stream's tab holds, and the channel it speaks on (both per origin). */
const LOCK = 'orch.changes';
const CHANNEL = 'orch.changes';

type Message = { kind: 'change' } | { kind: 'state'; state: LiveState } | { kind: 'hello' };

const listeners = new Set<() => void>();
const stateListeners = new Set<(s: LiveState) => void>();
let state: LiveState = 'connecting';
let lastEventId: string | undefined;
let controller: AbortController | undefined;
let unauthorizedHandler: () => void = () => {};

/** Calls `fn` after every change; returns the unsubscribe function. */
export function onChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function liveState(): LiveState {
  return state;
}

export function onLiveState(fn: (s: LiveState) => void): () => void {
  stateListeners.add(fn);
  return () => stateListeners.delete(fn);
}

function setState(s: LiveState): void {
  if (s === state) return;
  state = s;
  for (const fn of stateListeners) fn(s);
}

/**
 * A tab nobody looks at (hidden: another tab in front, a minimised window) does not re-fetch on a
 * change: it remembers that it is stale and looks once when it is shown again. Every open tab
 * re-fetching on every change would spend the token's request budget (the server's rate limit is
 * per token, not per tab) on pages nobody sees.
 */
let stale = false;

function refresh(): void {
  if (typeof document !== 'undefined' && document.visibilityState === 'hidden') {
    stale = true;
    return;
  }
  stale = false;
  for (const fn of [...listeners]) fn();
}

if (typeof document !== 'undefined') {
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && stale) refresh();
  });
}

const throttle = new Throttle(refresh);

function tick(): void {
  throttle.push();
}

async function readStream(signal: AbortSignal, opened: () => void, changed: () => void): Promise<'ended' | 'unauthorized'> {
  const headers: Record<string, string> = { Accept: 'text/event-stream' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId;
  const res = await fetch('/v1/changes', { headers, signal, cache: 'no-store' });
  if (res.status === 401) return 'unauthorized';
  if (!res.ok || !res.body) throw new Error(`change stream: ${res.status}`);
  opened();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return 'ended';
    let any = false;
    for (const ev of parser.push(value)) {
      if (ev.id !== undefined) lastEventId = ev.id;
      if (ev.event === 'change') any = true;
    }
    // Several changes in one chunk are one look again.
    if (any) changed();
  }
}

/** Opens the stream and keeps it open until stopChanges(); `onUnauthorized` runs on a 401. */
export function startChanges(onUnauthorized: () => void): void {
  stopChanges();
  unauthorizedHandler = onUnauthorized;
  const c = new AbortController();
  controller = c;
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  if (locks === undefined || typeof BroadcastChannel === 'undefined') {
    // No way to share one stream between tabs: this tab keeps its own.
    void streamLoop(c.signal, setState, tick);
    return;
  }
  const channel = new BroadcastChannel(CHANNEL);
  let holder = false;
  const post = (m: Message) => channel.postMessage(m);
  channel.onmessage = (e: MessageEvent<Message>) => {
    const m = e.data;
    if (holder) {
      // A tab that just opened asks how the stream is.
      if (m.kind === 'hello') post({ kind: 'state', state });
      return;
    }
    if (m.kind === 'change') tick();
    else if (m.kind === 'state') setState(m.state);
  };
  c.signal.addEventListener('abort', () => channel.close());
  post({ kind: 'hello' });
  locks
    .request(LOCK, { signal: c.signal }, async () => {
      holder = true;
      await streamLoop(
        c.signal,
        (s) => {
          setState(s);
          if (!c.signal.aborted) post({ kind: 'state', state: s });
        },
        () => {
          tick();
          if (!c.signal.aborted) post({ kind: 'change' });
        },
      );
    })
    .catch(() => {
      // Aborted while waiting for the lock (stopChanges): nothing was opened.
    });
}

/** Reads the stream, reconnecting with backoff, until `signal` aborts or the token is refused. */
async function streamLoop(signal: AbortSignal, report: (s: LiveState) => void, changed: () => void): Promise<void> {
  const backoff = new Backoff();
  while (!signal.aborted) {
    let openedAt: number | undefined;
    try {
      const outcome = await readStream(
        signal,
        () => {
          openedAt = Date.now();
          report('connected');
          // Everything may have changed while the stream was down: look again now.
          changed();
        },
        changed,
      );
      if (outcome === 'unauthorized') {
        if (!signal.aborted) unauthorizedHandler();
        return;
      }
    } catch {
      // Network error or the server stopping: reconnect below.
    }
    if (signal.aborted) return;
    const delay = backoff.next(openedAt === undefined ? undefined : Date.now() - openedAt);
    report('reconnecting');
    await new Promise((r) => setTimeout(r, delay));
  }
}

export function stopChanges(): void {
  throttle.cancel();
  controller?.abort();
  controller = undefined;
  state = 'connecting';
}
