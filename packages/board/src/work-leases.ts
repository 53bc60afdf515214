import type { Lease } from './task-types.ts';

/**
 * The leases this tab holds, by thread id, in sessionStorage (`orch.leases`): a reload keeps them,
 * another tab or a closed browser does not, and they never go into the URL. A lease token is what
 * every later write on the thread needs (`--lease`).
 */
const KEY = 'orch.leases';

export interface HeldLease extends Lease {
  agent: string;
}

export function readLeases(): Record<string, HeldLease> {
  try {
    const parsed = JSON.parse(sessionStorage.getItem(KEY) ?? '{}') as unknown;
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, HeldLease>) : {};
  } catch {
    return {};
  }
}

function write(leases: Record<string, HeldLease>): void {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(leases));
  } catch {
    // Storage full or disabled: the lease still lives in the page's memory until a reload.
  }
}

export function saveLease(thread: string, lease: HeldLease): Record<string, HeldLease> {
  const next = { ...readLeases(), [thread]: lease };
  write(next);
  return next;
}

export function dropLease(thread: string): Record<string, HeldLease> {
  const next = { ...readLeases() };
  delete next[thread];
  write(next);
  return next;
}

/** Forgets every lease of this tab (sign-out: the next identity in the tab must not renew them). */
export function clearLeases(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: nothing was kept.
  }
}

/**
 * Calls `onCopy` once if this tab turns out to be a copy of another open tab: the browser's
 * "Duplicate tab" (and a link opened in a new tab with its opener) copies sessionStorage, leases
 * and all, and the copy must not renew or, at its sign-out, release the leases the first tab is
 * still working on. Each tab keeps an id in sessionStorage (`orch.tab`, so a reload keeps it) and
 * asks once over a BroadcastChannel whether an open tab has it; one that answers is the original,
 * and the asker takes a new id. Two tabs asking at once both keep theirs (each answers the other
 * first). Returns the stop function.
 */
export function watchForCopy(onCopy: () => void): () => void {
  if (typeof BroadcastChannel === 'undefined') return () => undefined;
  let id = tabId();
  let asking = true;
  const channel = new BroadcastChannel('orch.tabs');
  channel.onmessage = (event: MessageEvent) => {
    const message = event.data as { kind?: string; id?: string } | null;
    if (message?.id !== id) return;
    if (message.kind === 'who') {
      asking = false;
      channel.postMessage({ kind: 'me', id });
    } else if (message.kind === 'me' && asking) {
      asking = false;
      id = newTabId();
      onCopy();
    }
  };
  channel.postMessage({ kind: 'who', id });
  return () => channel.close();
}

function tabId(): string {
  try {
    return sessionStorage.getItem(TAB_KEY) ?? newTabId();
  } catch {
    return 'no-storage';
  }
}

function newTabId(): string {
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  try {
    sessionStorage.setItem(TAB_KEY, id);
  } catch {
    // Storage disabled: nothing is copied either.
  }
  return id;
}

const TAB_KEY = 'orch.tab';

/** The agent name the My work page was last used with (localStorage `orch.agent`). */
export function rememberedAgent(): string {
  try {
    return localStorage.getItem('orch.agent') ?? '';
  } catch {
    return '';
  }
}

export function rememberAgent(agent: string): void {
  try {
    localStorage.setItem('orch.agent', agent);
  } catch {
    // Not remembered; the page still works with the name typed.
  }
}
