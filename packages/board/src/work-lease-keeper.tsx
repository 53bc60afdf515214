import { useEffect, useRef } from 'preact/hooks';
import { type ApiError, ApiFailure, call } from './api.ts';
import type { Lease } from './task-types.ts';
import type { HeldLease } from './work-leases.ts';

/** A lease's last heartbeat: when it was renewed, or the passing failure of the last try. */
export interface Beat {
  at?: string;
  error?: ApiError;
}

/** Exit codes of a heartbeat that mean the lease is gone for good: lost (5), thread ended (4), no such thread (3). */
const FINAL_EXIT_CODES = new Set([3, 4, 5]);

function toApiError(err: unknown): ApiError {
  return err instanceof ApiFailure ? err.error : { status: 0, exitCode: 1, code: 'INTERNAL', message: String((err as Error)?.message ?? err) };
}

/**
 * Keeps one held lease alive while the page is open, whichever thread is on screen: `inbox
 * heartbeat` at once (a reloaded page checks the lease it kept), then every third of the lease's
 * length, and again whenever `check` changes. Renders nothing. A refusal that means the lease is
 * gone calls `onGone`; a passing failure (the server restarting) is reported and tried again.
 */
export function LeaseKeeper({
  thread,
  lease,
  check,
  onBeat,
  onGone,
}: {
  thread: string;
  lease: HeldLease;
  check: number;
  onBeat: (thread: string, beat: Beat, renewed?: HeldLease) => void;
  onGone: (thread: string, error: ApiError) => void;
}) {
  const latest = useRef({ lease, onBeat, onGone });
  latest.current = { lease, onBeat, onGone };
  const tick = useRef<() => Promise<void>>(async () => {});

  useEffect(() => {
    let stopped = false;
    tick.current = async () => {
      try {
        const r = await call<{ lease: Lease }>('inbox/heartbeat', { thread, lease: latest.current.lease.token });
        if (!stopped) latest.current.onBeat(thread, { at: new Date().toISOString() }, { ...latest.current.lease, ...r.lease });
      } catch (err) {
        if (stopped) return;
        const e = toApiError(err);
        if (FINAL_EXIT_CODES.has(e.exitCode)) latest.current.onGone(thread, e);
        else latest.current.onBeat(thread, { error: e });
      }
    };
    const timer = setInterval(() => void tick.current(), Math.max(1000, (lease.seconds * 1000) / 3));
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [thread, lease.token, lease.seconds]);
  // At once, and whenever the page asks (the thread looks cancelled or expired).
  useEffect(() => {
    void tick.current();
  }, [check, lease.token]);
  return null;
}
