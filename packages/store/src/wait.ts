import type { Clock } from './clock.ts';
import type { Store } from './open.ts';

export interface WaitForChangeOptions {
  /** Give up after this long (clock time). */
  timeoutMs: number;
  clock: Clock;
  /** How often `PRAGMA data_version` is read. Default 25 ms: wakes within tens of milliseconds of a commit for well under 1% of a core (a 10 ms timer alone costs about 1.2%). */
  pollMs?: number;
  /** Re-run `check` at least this often even without a commit (time-based conditions such as lease expiry). Default 1000 ms. */
  recheckMs?: number;
}

/**
 * Cheap waiting: runs `check` once, then again only when another connection has committed
 * (`PRAGMA data_version` changed, read every `pollMs`) or `recheckMs` has passed. Returns the first
 * value `check` gives other than `undefined`, or `undefined` at the timeout.
 */
export async function waitForChange<T>(
  store: Store,
  check: () => Promise<T | undefined>,
  options: WaitForChangeOptions,
): Promise<T | undefined> {
  const { clock, timeoutMs } = options;
  const pollMs = options.pollMs ?? 25;
  const recheckMs = options.recheckMs ?? 1000;
  const deadline = clock.now() + timeoutMs;
  // Read the version before checking: a commit landing in between is seen by the check or by the next poll.
  let version = store.dataVersion();
  let lastCheck = clock.now();
  let found = await check();
  while (found === undefined) {
    const now = clock.now();
    if (now >= deadline) return undefined;
    await clock.sleep(Math.min(pollMs, deadline - now));
    const current = store.dataVersion();
    if (current !== version || clock.now() - lastCheck >= recheckMs) {
      version = current;
      lastCheck = clock.now();
      found = await check();
    }
  }
  return found;
}
