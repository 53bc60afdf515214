import type { Generated } from 'kysely';

export const RUN_STATES = ['active', 'done', 'cancelled'] as const;
export type RunState = (typeof RUN_STATES)[number];

/**
 * pending: not dispatched yet (or its dependencies are not done); dispatched: an attempt waits
 * for a worker to claim it; running: claimed; blocked: the worker asked a question; expired: the
 * worker's lease ran out (retryable); failed: the worker gave up (retryable).
 */
export const TASK_STATES = ['pending', 'dispatched', 'running', 'blocked', 'done', 'failed', 'expired', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const ATTEMPT_STATES = ['dispatched', 'running', 'blocked', 'done', 'failed', 'expired', 'cancelled'] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];
/** An attempt in one of these states holds its task: the task is not ready while it exists. */
export const LIVE_ATTEMPT_STATES: readonly AttemptState[] = ['dispatched', 'running', 'blocked'];

export const EXECUTION_MODES = ['analysis', 'code'] as const;
export type ExecutionMode = (typeof EXECUTION_MODES)[number];

export const EVENT_TYPES = [
  'run_created',
  'task_added',
  'dependency_added',
  'task_dispatched',
  'task_claimed',
  'task_progress',
  'task_blocked',
  'task_answered',
  'task_released',
  'task_done',
  'task_failed',
  'task_cancelled',
  'task_reopened',
  'attempt_expired',
  'attempt_cancelled',
  'attempt_merged',
  'attempt_cleaned',
  'run_done',
  'run_reopened',
  'run_cancelled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The orch tables. Times are milliseconds since the epoch; JSON columns hold JSON text. */
export interface OrchDatabase {
  orch_runs: OrchRunsTable;
  orch_tasks: OrchTasksTable;
  orch_dependencies: OrchDependenciesTable;
  orch_attempts: OrchAttemptsTable;
  orch_events: OrchEventsTable;
  orch_meta: OrchMetaTable;
}

/** Settings of the database, one row per key (`database_id`: made once by migration 3). */
export interface OrchMetaTable {
  key: string;
  value: string;
}

export interface OrchRunsTable {
  seq: Generated<number>;
  id: string;
  goal: string;
  summary: string | null;
  state: RunState;
  created_at: number;
  updated_at: number;
}

export interface OrchTasksTable {
  /** Insertion order, the tie-breaker after priority. */
  seq: Generated<number>;
  run_id: string;
  id: string;
  title: string;
  summary: string | null;
  default_to: string | null;
  acceptance: string | null;
  /** Higher is dispatched first. */
  priority: number;
  state: TaskState;
  created_at: number;
  updated_at: number;
}

export interface OrchDependenciesTable {
  run_id: string;
  task_id: string;
  depends_on: string;
  created_at: number;
}

export interface OrchAttemptsTable {
  seq: Generated<number>;
  id: string;
  run_id: string;
  task_id: string;
  /** 1, 2, ... per task. */
  number: number;
  assigned_to: string;
  execution_mode: ExecutionMode;
  thread_id: string;
  state: AttemptState;
  /** The leader's instructions for this attempt (retry reuses them by default). */
  body: string;
  repo_path: string | null;
  workspace_root: string | null;
  base_ref: string | null;
  base_commit: string | null;
  worktree_path: string | null;
  branch: string | null;
  /** Code mode across machines: the git remote (URL) the branch travels through; null when the worktree is on the leader's disk. */
  remote_url: string | null;
  /** When `orch merge` brought the branch in, into which branch, and the resulting commit. */
  merged_at: number | null;
  merged_into: string | null;
  merge_commit: string | null;
  /** The attempt branch's head when it was merged (a squash leaves its commits on no other branch). */
  merged_head: string | null;
  /** When `orch cleanup` removed the worktree / deleted the branch. */
  worktree_removed_at: number | null;
  branch_deleted_at: number | null;
  /** JSON `{body, payload}` of the worker's result or failure message. */
  result: string | null;
  /** Reconcile cursor: the thread's claim count already folded in. */
  claims_seen: number;
  /** Reconcile cursor: the last thread message already folded in. */
  last_message_id: number;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
}

export interface OrchEventsTable {
  /** Global order over all runs. */
  id: Generated<number>;
  run_id: string;
  /** 1, 2, 3, ... per run with no gaps: the `--after-event` cursor. */
  seq: number;
  task_id: string | null;
  attempt_id: string | null;
  type: EventType;
  /** JSON object. */
  data: string;
  created_at: number;
}
