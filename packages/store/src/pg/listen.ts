import type pg from 'pg';
import type { PgDriver } from './driver.ts';

/**
 * One LISTEN connection per store, opened on the first wait. A commit in the schema sends a NOTIFY
 * on `channel` (see PgTransactions.commit); every waiter then wakes. A hint only: when the connection
 * cannot be made or drops (a server restart), waiters are simply not woken by it, their polling
 * carries on, and the next wait tries to connect again (at most once a second).
 */
export class Listener {
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #lastAttempt = -Infinity;
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

  close(): void {
    this.#closed = true;
    for (const wake of [...this.#waiters]) wake();
    const client = this.#client;
    this.#client = undefined;
    client?.end().catch(() => undefined);
  }

  private connect(): void {
    if (this.#client !== undefined || this.#connecting !== undefined) return;
    const now = performance.now();
    if (now - this.#lastAttempt < 1000) return;
    this.#lastAttempt = now;
    const client = new this.driver.Client(this.config);
    const drop = () => {
      if (this.#client === client) this.#client = undefined;
      client.end().catch(() => undefined);
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

  /** For messages: where the notifications come from. */
  toString(): string {
    return `notifications from ${this.server}`;
  }
}
