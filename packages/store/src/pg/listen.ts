import type pg from 'pg';
import type { PgDriver } from './driver.ts';

/**
 * One LISTEN connection per store, opened on the first wait. A commit in the schema sends a NOTIFY
 * on `channel` (see PgTransactions.commit); every waiter then wakes. A hint only: when the connection
 * cannot be made or drops (a server restart), waiters are not woken by it meanwhile and their
 * polling carries on; it is made again at most once a second, on the next wait or, while anyone
 * waits, by itself, and once it is back every waiter wakes (commits in between notified nobody).
 */
export class Listener {
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #lastAttempt = -Infinity;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #waiters = new Set<() => void>();
  #received = 0;

  constructor(
    private readonly driver: PgDriver,
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly server: string,
  ) {}

  /** Resolves on the next notification after this call, or when `signal` aborts. Never rejects. */
  next(signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.#closed) return Promise.resolve();
    this.connect();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.#waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** How many notifications arrived so far (connecting first if need be): a cheap commit counter. */
  received(): number {
    if (!this.#closed) this.connect();
    return this.#received;
  }

  /** Whether the LISTEN connection is up (a notification of every commit reaches it). */
  connected(): boolean {
    return this.#client !== undefined;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    for (const wake of [...this.#waiters]) wake();
    const client = this.#client;
    this.#client = undefined;
    client?.end().catch(() => undefined);
  }

  private connect(): void {
    if (this.#closed || this.#client !== undefined || this.#connecting !== undefined) return;
    const now = performance.now();
    if (now - this.#lastAttempt < 1000) {
      this.retryLater();
      return;
    }
    this.#lastAttempt = now;
    const client = new this.driver.Client(this.config);
    let dropped = false;
    const drop = () => {
      if (dropped) return;
      dropped = true;
      if (this.#client === client) this.#client = undefined;
      client.end().catch(() => undefined);
      this.retryLater();
    };
    client.on('error', drop);
    client.on('end', drop);
    client.on('notification', () => {
      this.#received++;
      for (const wake of [...this.#waiters]) wake();
    });
    this.#connecting = client
      .connect()
      .then(() => client.query(`listen "${this.channel}"`))
      .then(() => {
        if (this.#closed) return drop();
        this.#client = client;
        this.#received++;
        // Whatever was committed while the connection was being made woke nobody: wake everyone once.
        for (const wake of [...this.#waiters]) wake();
      })
      .catch(drop)
      .finally(() => {
        this.#connecting = undefined;
      });
  }

  /** While anyone waits, tries to connect again a second after the last attempt (one timer at a time). */
  private retryLater(): void {
    if (this.#closed || this.#retry !== undefined || this.#waiters.size === 0) return;
    const wait = Math.max(0, 1000 - (performance.now() - this.#lastAttempt));
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#waiters.size > 0) this.connect();
    }, wait);
  }

  /** For messages: where the notifications come from. */
  toString(): string {
    return `notifications from ${this.server}`;
  }
}
