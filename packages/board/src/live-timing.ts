/**
 * The change stream's timing, kept apart from the network so it can be tested with a fake clock:
 * how often ticks may refetch (Throttle) and how long to wait before opening a dropped stream again
 * (Backoff).
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Lets `fire` run about once per `windowMs` under a stream of pushes: a push after a quiet spell
 * (no push for `windowMs`) fires at once, so a single change shows as fast as it can; a push
 * within `windowMs` of the one before is coalesced into one fire `windowMs` after the last fire,
 * so the last change of a burst always shows. The server sends up to 20 ticks a second and every
 * tick refetches every query on the page: unthrottled, a burst of commits would spend a token's
 * whole request budget. Quiet is measured from the last push, not the last fire: the echo of the
 * page's own refetch (orch's fold-in commits) must not delay the next real change.
 */
export class Throttle {
  private lastPush = Number.NEGATIVE_INFINITY;
  private lastFire = Number.NEGATIVE_INFINITY;
  private timer: unknown;

  constructor(
    private readonly fire: () => void,
    private readonly windowMs = 250,
    private readonly clock: Clock = realClock,
  ) {}

  push(): void {
    const now = this.clock.now();
    const quiet = now - this.lastPush >= this.windowMs;
    this.lastPush = now;
    if (this.timer !== undefined) return;
    const wait = this.lastFire + this.windowMs - now;
    if (quiet || wait <= 0) {
      this.run();
      return;
    }
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.run();
    }, wait);
  }

  /** Drops a pending fire (the stream is stopped). */
  cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private run(): void {
    this.lastFire = this.clock.now();
    this.fire();
  }
}

/**
 * The wait before opening the change stream again: `minMs` doubling to `maxMs` while attempts
 * keep failing. Only a connection that stayed up `stableMs` or more starts it afresh: a server
 * that accepts the stream and ends it at once (too many streams, a proxy) would otherwise be asked
 * again every `minMs` forever, each time with a refetch of everything.
 */
export class Backoff {
  private delay: number;

  constructor(
    private readonly minMs = 500,
    private readonly maxMs = 10_000,
    private readonly stableMs = 10_000,
  ) {
    this.delay = minMs;
  }

  /** The stream ended after being up `upMs` (undefined: it never opened): how long to wait now. */
  next(upMs: number | undefined): number {
    if (upMs !== undefined && upMs >= this.stableMs) this.delay = this.minMs;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.maxMs);
    return wait;
  }
}
