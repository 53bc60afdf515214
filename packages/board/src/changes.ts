import { Backoff, Throttle } from './live-timing.ts';
import { SseParser } from './sse-parse.ts';
import { getToken } from './token.ts';

/**
 * The change stream: one `GET /v1/changes` per tab (Server-Sent Events), read with fetch because
 * EventSource cannot send an Authorization header. Every `change` event (and every reconnect)
 * ticks the listeners, and every useQuery re-fetches what it shows; ticks are throttled to one per
 * 250 ms (the first at once). A dropped stream is opened again with backoff (0.5 s doubling to
 * 10 s, afresh only after a connection that stayed up 10 s) and `Last-Event-ID`.
 */
export type LiveState = 'connecting' | 'connected' | 'reconnecting';

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

const throttle = new Throttle(() => {
  for (const fn of [...listeners]) fn();
});

function tick(): void {
  throttle.push();
}

/** Reads the stream until it ends; `opened.at` is set when the server accepted it. */
async function readStream(signal: AbortSignal, opened: { at?: number }): Promise<'ended' | 'unauthorized'> {
  const headers: Record<string, string> = { Accept: 'text/event-stream' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId;
  const res = await fetch('/v1/changes', { headers, signal, cache: 'no-store' });
  if (res.status === 401) return 'unauthorized';
  if (!res.ok || !res.body) throw new Error(`change stream: ${res.status}`);
  opened.at = Date.now();
  setState('connected');
  // Everything may have changed while the stream was down: look again now.
  tick();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return 'ended';
    let changed = false;
    for (const ev of parser.push(value)) {
      if (ev.id !== undefined) lastEventId = ev.id;
      if (ev.event === 'change') changed = true;
    }
    // Several changes in one chunk are one look again.
    if (changed) tick();
  }
}

/** Opens the stream and keeps it open until stopChanges(); `onUnauthorized` runs on a 401. */
export function startChanges(onUnauthorized: () => void): void {
  stopChanges();
  unauthorizedHandler = onUnauthorized;
  const c = new AbortController();
  controller = c;
  void (async () => {
    const backoff = new Backoff();
    while (!c.signal.aborted) {
      const opened: { at?: number } = {};
      try {
        const outcome = await readStream(c.signal, opened);
        if (outcome === 'unauthorized') {
          unauthorizedHandler();
          return;
        }
      } catch {
        // Network error or the server stopping: reconnect below.
      }
      if (c.signal.aborted) return;
      const delay = backoff.next(opened.at === undefined ? undefined : Date.now() - opened.at);
      setState('reconnecting');
      await new Promise((r) => setTimeout(r, delay));
    }
  })();
}

export function stopChanges(): void {
  controller?.abort();
  controller = undefined;
  throttle.cancel();
  state = 'connecting';
}
