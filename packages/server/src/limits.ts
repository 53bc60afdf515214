import { ExitCode, type Clock } from '@orch/store';
import { ServerError } from './responses.ts';

/** How much one caller (a token, or the local user) may ask of a server. */
export interface LimitOptions {
  /** Requests per second, refilled continuously (0: no rate limit). Default 50. */
  ratePerSecond: number;
  /** Requests allowed at once above the rate. Default 200. */
  burst: number;
  /** Long requests (waits, waiting claims, event streams) open at once. Default 32. */
  maxLong: number;
}

export const DEFAULT_LIMITS: LimitOptions = { ratePerSecond: 50, burst: 200, maxLong: 32 };

/**
 * Per-caller limits: a token bucket for the request rate and a count of long requests open. Time
 * is the clock's monotonic time.
 */
export class Limits {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly long = new Map<string, number>();
  private readonly bodies = new Map<string, number>();

  constructor(
    private readonly options: LimitOptions,
    private readonly clock: Clock,
  ) {}

  /** Takes one request from `who`'s bucket. @throws ServerError RATE_LIMITED (429, with Retry-After). */
  take(who: string): void {
    const { ratePerSecond, burst } = this.options;
    if (ratePerSecond <= 0) return;
    const now = this.clock.monotonicMs();
    const bucket = this.buckets.get(who) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * ratePerSecond);
    bucket.at = now;
    this.buckets.set(who, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond));
    throw new ServerError(
      429,
      'RATE_LIMITED',
      ExitCode.unavailable,
      `too many requests: at most ${ratePerSecond} a second (${burst} at once); try again in ${retryAfter} s`,
      {
        headers: { 'Retry-After': String(retryAfter) },
      },
    );
  }

  /**
   * Counts a long request of `who` as open until the returned function is called.
   * @throws ServerError RATE_LIMITED (429) when `who` already has maxLong open.
   */
  open(who: string): () => void {
    const n = this.long.get(who) ?? 0;
    if (n >= this.options.maxLong) {
      throw new ServerError(
        429,
        'RATE_LIMITED',
        ExitCode.unavailable,
        `too many waits and event streams open at once (at most ${this.options.maxLong}); close one or try again later`,
        {
          headers: { 'Retry-After': '5' },
        },
      );
    }
    this.long.set(who, n + 1);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const left = (this.long.get(who) ?? 1) - 1;
      if (left <= 0) this.long.delete(who);
      else this.long.set(who, left);
    };
  }

  /**
   * Counts `bytes` more of `who`'s request bodies as held in memory (bodies are read whole before
   * the rate limit is taken) until the returned function is called: past `cap` bytes at once, 429.
   * @throws ServerError RATE_LIMITED (429).
   */
  holdBody(who: string, bytes: number, cap: number): () => void {
    const held = this.bodies.get(who) ?? 0;
    if (held + bytes > cap) {
      throw new ServerError(
        429,
        'RATE_LIMITED',
        ExitCode.unavailable,
        `too many large request bodies at once (at most ${Math.round(cap / (1024 * 1024))} MiB per caller); try again in a moment`,
        // Said mid-body: the rest of it is not read, so the connection is not kept for another request.
        { headers: { 'Retry-After': '1', connection: 'close' } },
      );
    }
    this.bodies.set(who, held + bytes);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.bodies.get(who) ?? bytes) - bytes;
      if (left <= 0) this.bodies.delete(who);
      else this.bodies.set(who, left);
    };
  }
}
