/** Time, injected so tests can move it instead of sleeping. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves after `ms` milliseconds of this clock's time, or early (and without a lingering timer) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
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
 * A clock that only moves when told to (`advance`) or when something sleeps on it.
 * For tests of leases and timeouts without real waiting.
 */
export class ManualClock implements Clock {
  constructor(private current: number = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.current;
  }

  advance(ms: number): void {
    this.current += ms;
  }

  async sleep(ms: number): Promise<void> {
    this.current += ms;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** ISO-8601 form of a millisecond timestamp, as printed in every output. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
