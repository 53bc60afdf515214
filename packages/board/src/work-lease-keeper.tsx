import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type ApiError, ApiFailure, call } from './api.ts';
import type { Lease } from './task-types.ts';
import { clearLeases, type HeldLease, dropLease, readLeases, saveLease, watchForCopy } from './work-leases.ts';

/** A lease's last heartbeat: when it was renewed, or the passing failure of the last try. */
export interface Beat {
  at?: string;
  error?: ApiError;
}

/** Why this tab no longer holds a thread: the lease was lost (the refusal), or the work ended (a note). */
export interface Gone {
  lost?: ApiError;
  done?: string;
}

/** Exit codes of a heartbeat that mean the lease is gone for good: lost (5), thread ended (4), no such thread (3). */
const FINAL_EXIT_CODES = new Set([3, 4, 5]);

function toApiError(err: unknown): ApiError {
  return err instanceof ApiFailure ? err.error : { status: 0, exitCode: 1, code: 'INTERNAL', message: String((err as Error)?.message ?? err) };
}

/** Every lease this tab holds and what became of the ones it held (useLeases()). */
export interface Leases {
  held: Record<string, HeldLease>;
  beats: Record<string, Beat>;
  gone: Record<string, Gone>;
  /** A claim succeeded: keep its lease alive from now on. */
  hold(thread: string, lease: HeldLease): void;
  /** The lease ended (posted, released, lost): stop renewing it and say why. */
  end(thread: string, why: Gone): void;
  /** Heartbeat now (the thread looks cancelled or expired: find out). */
  check(thread: string): void;
}

const LeasesContext = createContext<Leases | undefined>(undefined);

/** The leases of the signed-in tab (inside <LeaseProvider>). */
export function useLeases(): Leases {
  const leases = useContext(LeasesContext);
  if (!leases) throw new Error('useLeases() outside <LeaseProvider>');
  return leases;
}

/**
 * Keeps every lease this tab holds alive while the tab is open, whichever page is on screen (a
 * person who claimed a thread on My work and went to look at a run still holds it): one
 * LeaseKeeper per held lease, here in the signed-in app rather than in My work, which only shows
 * their state.
 */
export function LeaseProvider({ children }: { children: ComponentChildren }) {
  const [held, setHeld] = useState<Record<string, HeldLease>>(readLeases);
  const [beats, setBeats] = useState<Record<string, Beat>>({});
  const [gone, setGone] = useState<Record<string, Gone>>({});
  const [checks, setChecks] = useState<Record<string, number>>({});

  const hold = useCallback((thread: string, lease: HeldLease) => {
    setHeld(saveLease(thread, lease));
    setGone(({ [thread]: _, ...rest }) => rest);
  }, []);
  const end = useCallback((thread: string, why: Gone) => {
    setHeld(dropLease(thread));
    setGone((g) => ({ ...g, [thread]: why }));
  }, []);
  const check = useCallback((thread: string) => setChecks((c) => ({ ...c, [thread]: (c[thread] ?? 0) + 1 })), []);
  const onBeat = useCallback((thread: string, beat: Beat, renewed?: HeldLease) => {
    setBeats((b) => ({ ...b, [thread]: { ...b[thread], ...beat, error: beat.error } }));
    // Only a lease still held is renewed in storage (a result may have ended it meanwhile).
    if (renewed && readLeases()[thread]?.token === renewed.token) setHeld(saveLease(thread, renewed));
  }, []);
  const onLost = useCallback((thread: string, error: ApiError) => end(thread, { lost: error }), [end]);

  // A duplicated tab forgets the leases it copied (without releasing them): the first tab holds them.
  useEffect(
    () =>
      watchForCopy(() => {
        clearLeases();
        setHeld({});
      }),
    [],
  );

  const value = useMemo<Leases>(() => ({ held, beats, gone, hold, end, check }), [held, beats, gone, hold, end, check]);
  return (
    <LeasesContext.Provider value={value}>
      {Object.entries(held).map(([id, lease]) => (
        <LeaseKeeper key={id} thread={id} lease={lease} check={checks[id] ?? 0} onBeat={onBeat} onGone={onLost} />
      ))}
      {children}
    </LeasesContext.Provider>
  );
}

/**
 * Keeps one held lease alive: `inbox heartbeat` at once (a reloaded page checks the lease it
 * kept), then every third of the lease's length, and again whenever `check` changes. Renders
 * nothing. A refusal that means the lease is gone calls `onGone`; a passing failure (the server
 * restarting) is reported and tried again.
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

/**
 * Gives back every lease this tab holds (`inbox release`, so the threads are open again for their
 * agents at once rather than after the lease runs out), waiting at most `waitMs` so a slow or gone
 * server cannot hang sign-out, then forgets them all.
 */
export async function releaseAll(waitMs = 2000): Promise<void> {
  const held = Object.entries(readLeases());
  if (held.length > 0) {
    const released = Promise.allSettled(held.map(([thread, lease]) => call('inbox/release', { thread, lease: lease.token })));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([released, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }
  clearLeases();
}
