import { type Clock, type Store, waitForChange } from '@orch/store';

/**
 * Wakes event streams when anything may have been committed, by any process: one waiter on the
 * served database (a file watch on the WAL and `PRAGMA data_version` on SQLite, LISTEN/NOTIFY on
 * PostgreSQL: store/wait.ts) shared by every stream. A hint only: streams also look again now and then.
 */
export class CommitPulse {
  private wake: (() => void) | undefined;
  private seen = 0;
  private next: Promise<void>;
  private readonly stop = new AbortController();
  private readonly loop: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {
    this.next = this.arm();
    this.loop = this.watch();
  }

  /** How many commits (wake-ups) the watch has seen since the server started: grows by one at each. */
  get commits(): number {
    return this.seen;
  }

  /** Resolves at the next commit, after `ms` of monotonic time, or when `signal` aborts, whichever is first. */
  async commit(ms: number, signal: AbortSignal): Promise<void> {
    const nap = new AbortController();
    const onAbort = () => nap.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([this.next, this.clock.sleep(ms, nap.signal)]);
    } finally {
      nap.abort();
      signal.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.wake?.();
    await this.loop;
  }

  private arm(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  private async watch(): Promise<void> {
    while (!this.stop.signal.aborted) {
      let first = true;
      try {
        // The first check only starts the watch; any later one means something was committed.
        const changed = await waitForChange(
          this.store,
          async () => {
            if (first) {
              first = false;
              return undefined;
            }
            return true;
          },
          { timeoutMs: 60_000, clock: this.clock, recheckMs: 3_600_000, signal: this.stop.signal },
        );
        if (changed === undefined) continue;
      } catch {
        // The database is away for a moment (PostgreSQL restarting): streams still look again on their own.
        await this.clock.sleep(1000, this.stop.signal);
      }
      const wake = this.wake;
      this.seen++;
      this.next = this.arm();
      wake?.();
    }
  }
}
