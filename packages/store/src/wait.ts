import fs from 'node:fs';
import type { Clock } from './clock.ts';
import type { PostgresStore, SqliteStore, Store } from './engine.ts';

export interface WaitForChangeOptions {
  /** Give up after this long (the clock's monotonic time: a wall clock set back or forward changes nothing). */
  timeoutMs: number;
  clock: Clock;
  /**
   * How often `PRAGMA data_version` is read. Default: 25 ms, or 250 ms while the database's WAL
   * file is being watched (a commit then wakes the waiter at once; the poll is only a safety net).
   */
  pollMs?: number;
  /** Re-run `check` at least this often (monotonic time) even without a commit (time-based conditions such as lease expiry). Default 1000 ms. */
  recheckMs?: number;
  /** The caller gave up (an MCP client cancelled the call, the server is stopping): end as at the timeout. */
  signal?: AbortSignal | undefined;
}

/**
 * Cheap waiting: runs `check` once, then again only when another connection has committed
 * (`PRAGMA data_version` changed) or `recheckMs` has passed. Commits are noticed through a file
 * watch on the WAL file (inotify and the like: no CPU while nothing happens), backed by polling
 * `data_version` every `pollMs`. Returns the first value `check` gives other than `undefined`, or
 * `undefined` at the timeout or once `options.signal` aborts.
 */
export async function waitForChange<T>(store: Store, check: () => Promise<T | undefined>, options: WaitForChangeOptions): Promise<T | undefined> {
  if (store.kind === 'postgres') return waitOnServer(store, check, options);
  const { clock, timeoutMs } = options;
  const recheckMs = options.recheckMs ?? 1000;
  const deadline = clock.monotonicMs() + timeoutMs;
  const watch = watchCommits(store);
  const pollMs = options.pollMs ?? (watch ? 250 : 25);
  try {
    // Read the version before checking: a commit landing in between is seen by the check or by the next poll.
    let version = store.dataVersion();
    let lastCheck = clock.monotonicMs();
    let found = await check();
    while (found === undefined) {
      const now = clock.monotonicMs();
      if (now >= deadline || options.signal?.aborted) return undefined;
      // The WAL is written before the commit becomes visible (the shared-memory index is updated
      // last, and that makes no file event): right after a file event, poll closely for a moment.
      const step = watch && performance.now() - watch.lastEvent() < 50 ? 2 : pollMs;
      // The sleep that loses the race is cancelled: a pending timer would hold the process open.
      const nap = new AbortController();
      await Promise.race([clock.sleep(Math.min(step, deadline - now), nap.signal), ...(watch ? [watch.next()] : []), aborted(options.signal, nap.signal)]);
      nap.abort();
      if (options.signal?.aborted) return undefined;
      const current = store.dataVersion();
      if (current !== version || clock.monotonicMs() - lastCheck >= recheckMs) {
        version = current;
        lastCheck = clock.monotonicMs();
        found = await check();
      }
    }
    return found;
  } finally {
    watch?.close();
  }
}

/** A watch on the store's WAL file, if it has one and the platform can watch it. */
function watchCommits(store: SqliteStore): { next(): Promise<void>; lastEvent(): number; close(): void } | undefined {
  const wal = `${store.path}-wal`;
  if (!fs.existsSync(wal)) return undefined;
  let wake: (() => void) | undefined;
  let pending = false;
  let last = 0;
  let watcher: fs.FSWatcher;
  try {
    watcher = fs.watch(wal, { persistent: false }, () => {
      last = performance.now();
      if (wake) {
        wake();
        wake = undefined;
      } else pending = true;
    });
    watcher.on('error', () => undefined);
  } catch {
    return undefined;
  }
  return {
    next: () =>
      pending
        ? ((pending = false), Promise.resolve())
        : new Promise<void>((resolve) => {
            wake = resolve;
          }),
    lastEvent: () => last,
    close: () => watcher.close(),
  };
}

/**
 * waitForChange on PostgreSQL: a commit in the store's schema sends a NOTIFY, which wakes the
 * waiter at once. The NOTIFY is only a hint: every `pollMs` (default 250 ms) the waiter also reads
 * the server's next transaction id and checks again when it moved, and it checks at least every
 * `recheckMs` whatever happens, so a lost notification or a dropped listening connection only
 * delays a wake-up.
 */
async function waitOnServer<T>(store: PostgresStore, check: () => Promise<T | undefined>, options: WaitForChangeOptions): Promise<T | undefined> {
  const { clock, timeoutMs } = options;
  const recheckMs = options.recheckMs ?? 1000;
  const pollMs = options.pollMs ?? 250;
  const deadline = clock.monotonicMs() + timeoutMs;
  const listening = new AbortController();
  try {
    // Listen (and read the mark) before checking: a commit in between is seen by the check or wakes us.
    let commit = store.pg.nextCommit(listening.signal).then(() => true);
    let mark = await store.pg.changeMark();
    let lastCheck = clock.monotonicMs();
    let found = await check();
    while (found === undefined) {
      const now = clock.monotonicMs();
      if (now >= deadline || options.signal?.aborted) return undefined;
      const nap = new AbortController();
      const notified = await Promise.race([
        clock.sleep(Math.min(pollMs, deadline - now), nap.signal).then(() => false),
        commit,
        aborted(options.signal, nap.signal).then(() => false),
      ]);
      nap.abort();
      if (options.signal?.aborted) return undefined;
      if (notified) commit = store.pg.nextCommit(listening.signal).then(() => true);
      const current = notified ? mark : await store.pg.changeMark();
      if (notified || current !== mark || clock.monotonicMs() - lastCheck >= recheckMs) {
        mark = notified ? await store.pg.changeMark() : current;
        lastCheck = clock.monotonicMs();
        found = await check();
      }
    }
    return found;
  } finally {
    listening.abort();
  }
}

/** Resolves when `signal` aborts (never without one); stops listening once `done` aborts. */
function aborted(signal: AbortSignal | undefined, done: AbortSignal): Promise<void> {
  if (!signal) return new Promise<void>(() => undefined);
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const stop = () => {
      signal.removeEventListener('abort', stop);
      done.removeEventListener('abort', stop);
      resolve();
    };
    signal.addEventListener('abort', stop);
    done.addEventListener('abort', stop);
  });
}
