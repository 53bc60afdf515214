/**
 * Time, injected so tests can move it instead of sleeping. Two readings, never mixed: `now()` is
 * wall time (timestamps, lease expiry), `monotonicMs()` only ever moves forward at the rate of
 * real time (deadlines, timeouts, intervals), so setting the system clock back or forward does not
 * stretch or cut a wait.
 */
export interface Clock {
  /** Wall time: milliseconds since the Unix epoch. */
  now(): number;
  /** Monotonic time in milliseconds from an arbitrary origin; only differences mean anything. */
  monotonicMs(): number;
  /** Resolves after `ms` milliseconds of this clock's (monotonic) time, or early (and without a lingering timer) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: `Date.now()` and `performance.now()`; timers run on the monotonic clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    }),
};

/**
 * A clock that only moves when told to (`advance`, `setWall`) or when something sleeps on it.
 * For tests of leases and timeouts without real waiting. `advance` and `sleep` move both readings;
 * `setWall` moves only the wall clock (a system clock set back or forward).
 */
export class ManualClock implements Clock {
  private monotonic = 0;

  constructor(private current: number = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.current;
  }

  monotonicMs(): number {
    return this.monotonic;
  }

  advance(ms: number): void {
    this.current += ms;
    this.monotonic += ms;
  }

  /** Sets the wall clock to `ms` (backwards or forwards); monotonic time does not move. */
  setWall(ms: number): void {
    this.current = ms;
  }

  async sleep(ms: number): Promise<void> {
    this.advance(ms);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** ISO-8601 form of a millisecond timestamp, as printed in every output. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
