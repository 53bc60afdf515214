import { describe, expect, it } from 'vitest';
import { Backoff, type Clock, Throttle } from './live-timing.ts';

/** A clock that moves only when told, running the timers that fall due. */
function fakeClock(): Clock & { advance(ms: number): void } {
  let now = 1_000_000;
  let next = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      timers.set(++next, { at: now + ms, fn });
      return next;
    },
    clearTimeout: (handle) => void timers.delete(handle as number),
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
  };
}

describe('Throttle (change ticks to refetches)', () => {
  it('fires the first tick after a quiet spell at once', () => {
    const clock = fakeClock();
    const fired: number[] = [];
    const t = new Throttle(() => fired.push(clock.now()), 250, clock);
    const start = clock.now();
    t.push();
    expect(fired).toEqual([start]);
    clock.advance(1000);
    t.push();
    expect(fired).toEqual([start, start + 1000]);
  });

  it('coalesces the ticks within the window into one fire at its end, and fires at most 4 times a second under 20 ticks a second', () => {
    const clock = fakeClock();
    const fired: number[] = [];
    const t = new Throttle(() => fired.push(clock.now()), 250, clock);
    const start = clock.now();
    t.push();
    clock.advance(50);
    t.push();
    clock.advance(50);
    t.push();
    expect(fired).toEqual([start]);
    clock.advance(150);
    expect(fired).toEqual([start, start + 250]);
    // Nothing more was asked for: nothing more fires.
    clock.advance(1000);
    expect(fired).toHaveLength(2);

    // A burst: a tick every 50 ms for 2 s.
    fired.length = 0;
    const burst = clock.now();
    for (let i = 0; i < 40; i++) {
      t.push();
      clock.advance(50);
    }
    clock.advance(1000);
    expect(fired.length).toBeGreaterThanOrEqual(8);
    expect(fired.length).toBeLessThanOrEqual(9);
    for (let i = 1; i < fired.length; i++) expect(fired[i]! - fired[i - 1]!).toBeGreaterThanOrEqual(250);
    // The last tick of the burst (at +1950 ms) is followed by a fire.
    expect(fired.at(-1)!).toBeGreaterThanOrEqual(burst + 1950);
  });

  it('a change after a quiet spell of ticks fires at once even when the last fire was recent (the echo of a refetch does not delay it)', () => {
    const clock = fakeClock();
    const fired: number[] = [];
    const t = new Throttle(() => fired.push(clock.now()), 250, clock);
    const start = clock.now();
    t.push(); // a commit
    clock.advance(50);
    t.push(); // the echo of the page's refetch: coalesced to the window's end
    clock.advance(250);
    expect(fired).toEqual([start, start + 250]);
    // 300 ms after the last tick, 50 ms after the last fire: a new commit shows at once.
    clock.advance(45);
    t.push();
    expect(fired).toEqual([start, start + 250, start + 345]);
  });

  it('cancel drops the pending fire', () => {
    const clock = fakeClock();
    let fired = 0;
    const t = new Throttle(() => fired++, 250, clock);
    t.push();
    t.push();
    t.cancel();
    clock.advance(1000);
    expect(fired).toBe(1);
  });
});

describe('Backoff (reopening the change stream)', () => {
  it('doubles from 0.5 s to 10 s while the stream cannot open', () => {
    const b = new Backoff();
    expect([1, 2, 3, 4, 5, 6, 7].map(() => b.next(undefined))).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('keeps backing off when the server accepts the stream and ends it at once (no reconnect every 0.5 s)', () => {
    const b = new Backoff();
    expect([1, 2, 3, 4, 5, 6].map(() => b.next(5))).toEqual([500, 1000, 2000, 4000, 8000, 10_000]);
    expect(b.next(9_999)).toBe(10_000);
  });

  it('starts afresh after a connection that stayed up 10 s', () => {
    const b = new Backoff();
    b.next(undefined);
    b.next(undefined);
    b.next(undefined);
    expect(b.next(10_000)).toBe(500);
    expect(b.next(undefined)).toBe(1000);
    expect(b.next(60_000)).toBe(500);
  });
});
