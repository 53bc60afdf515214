import { systemClock, type Clock } from '../clock.ts';

/**
 * The database server's clock, read through the client's monotonic clock: `now()` is the client's
 * monotonic time plus the offset to the server's `clock_timestamp()` measured on the last round trip
 * that read it (at open and at the start of every write transaction). So leases across machines
 * are judged by one clock, the server's: a client whose own clock is minutes off, or is moved while
 * it runs, neither loses nor keeps a lease wrongly. Deadlines and sleeps stay on the monotonic clock.
 */
export class ServerClock implements Clock {
  // server wall time minus client monotonic time, in ms; until the first reading, the client's own.
  #offset = Date.now() - performance.now();
  // The shortest round trip of a reading so far, in ms.
  #minRtt = Number.POSITIVE_INFINITY;

  now(): number {
    return Math.round(performance.now() + this.#offset);
  }

  monotonicMs(): number {
    return performance.now();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }

  /**
   * Records a reading of the server's clock, `serverMs`, made by a query sent at monotonic time
   * `sentAt` and answered at `receivedAt`. The server reads its clock last in that query (after any
   * wait for the writers' lock), so the reading is taken as made half the shortest round trip seen
   * before the answer arrived: halfway through a quick trip, and not halfway through one that waited
   * seconds for the lock, which would set the clock ahead by half the wait (a lease then judged
   * expired that much too early).
   */
  observe(serverMs: number, sentAt: number, receivedAt: number): void {
    if (!Number.isFinite(serverMs)) return;
    this.#minRtt = Math.min(this.#minRtt, Math.max(0, receivedAt - sentAt));
    this.#offset = serverMs - (receivedAt - this.#minRtt / 2);
  }
}
