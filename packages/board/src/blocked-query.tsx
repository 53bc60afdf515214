import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { type Query, useQuery } from './api.ts';
import type { BlockedDoc } from './task-types.ts';

const BlockedContext = createContext<Query<BlockedDoc> | undefined>(undefined);

/**
 * One `orch blocked` (every run that is not done or cancelled) for the whole signed-in app: the
 * nav's count and the Blocked page read the same answer, so a change tick asks once, and opening
 * the Blocked page shows what is already known at once. Not asked for a worker token (it sees
 * only My work).
 */
export function BlockedProvider({ leader, children }: { leader: boolean; children: ComponentChildren }) {
  const q = useQuery<BlockedDoc>('orch/blocked', leader ? {} : undefined);
  return <BlockedContext.Provider value={q}>{children}</BlockedContext.Provider>;
}

/** The shared `orch blocked` answer (inside <BlockedProvider>). */
export function useBlocked(): Query<BlockedDoc> {
  const q = useContext(BlockedContext);
  if (!q) throw new Error('useBlocked() outside <BlockedProvider>');
  return q;
}
