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
