/** Task states in the order the board shows them (the kanban's columns, the counts). */
export const TASK_STATES = ['pending', 'dispatched', 'running', 'blocked', 'done', 'failed', 'expired', 'cancelled'] as const;

/**
 * The kanban's columns: pending splits into the tasks that can be dispatched now (`ready`) and
 * those still waiting on a dependency (`pending`, titled Waiting); then one column per state.
 */
export const COLUMNS: { state: string; title: string }[] = [
  { state: 'ready', title: 'Ready' },
  { state: 'pending', title: 'Waiting' },
  { state: 'dispatched', title: 'Dispatched' },
  { state: 'running', title: 'Running' },
  { state: 'blocked', title: 'Blocked' },
  { state: 'done', title: 'Done' },
  { state: 'failed', title: 'Failed' },
  { state: 'expired', title: 'Expired' },
  { state: 'cancelled', title: 'Cancelled' },
];

/** A state as a CSS class suffix: only the known letters, so agent text never becomes a class. */
export function stateClass(state: string): string {
  return /^[a-z_]{1,20}$/.test(state) ? `s-${state}` : 's-unknown';
}
