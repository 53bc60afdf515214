import { isoTime, parseStoredJson } from '@orch/store';
import type { AttemptRow } from './queries/attempts.ts';
import type { EventRow } from './queries/events.ts';
import type { RunRow } from './queries/runs.ts';
import type { TaskRow } from './queries/tasks.ts';
import type { AttemptState, EventType, ExecutionMode, RunState, TaskState } from './schema.ts';

export interface RunView {
  id: string;
  goal: string;
  summary: string | null;
  state: RunState;
  created_at: string;
  updated_at: string;
}

export interface TaskView {
  run: string;
  id: string;
  title: string;
  summary: string | null;
  default_to: string | null;
  /** The acceptance criteria given as JSON, parsed. */
  acceptance: unknown;
  priority: number;
  state: TaskState;
  created_at: string;
  updated_at: string;
}

export interface AttemptView {
  id: string;
  run: string;
  task: string;
  number: number;
  assigned_to: string;
  execution_mode: ExecutionMode;
  thread_id: string;
  state: AttemptState;
  body: string;
  /** Code mode only (null for analysis attempts). */
  repo_path: string | null;
  workspace_root: string | null;
  base_ref: string | null;
  base_commit: string | null;
  worktree_path: string | null;
  branch: string | null;
  /** Code mode across machines: the git remote the branch travels through (dispatch --remote / --repo-url); null otherwise. */
  remote_url: string | null;
  /** The worker's result (or failure) message: its body and payload. */
  result: { body: string; payload: Record<string, unknown> | null } | null;
  /** Code mode: the branch `orch merge` brought this attempt into, the commit it made, and when; null until merged. */
  merged_into: string | null;
  merge_commit: string | null;
  merged_at: string | null;
  created_at: string;
  updated_at: string;
  ended_at: string | null;
}

export interface EventView {
  /** Position in the run's event log (1, 2, 3, ... without gaps): the `--after-event` cursor. */
  seq: number;
  run: string;
  task: string | null;
  attempt: string | null;
  type: EventType;
  /** Type-specific details; task events carry `task_state`, the task's state after the event. */
  data: Record<string, unknown>;
  created_at: string;
}

export type StateCounts = Partial<Record<TaskState, number>> & { total: number };

export function runView(row: RunRow): RunView {
  return {
    id: row.id,
    goal: row.goal,
    summary: row.summary,
    state: row.state,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

export function taskView(row: TaskRow): TaskView {
  return {
    run: row.run_id,
    id: row.id,
    title: row.title,
    summary: row.summary,
    default_to: row.default_to,
    acceptance: row.acceptance === null ? null : parseStoredJson(row.acceptance),
    priority: row.priority,
    state: row.state,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

export function attemptView(row: AttemptRow): AttemptView {
  return {
    id: row.id,
    run: row.run_id,
    task: row.task_id,
    number: row.number,
    assigned_to: row.assigned_to,
    execution_mode: row.execution_mode,
    thread_id: row.thread_id,
    state: row.state,
    body: row.body,
    repo_path: row.repo_path,
    workspace_root: row.workspace_root,
    base_ref: row.base_ref,
    base_commit: row.base_commit,
    worktree_path: row.worktree_path,
    branch: row.branch,
    remote_url: row.remote_url,
    result: row.result === null ? null : (parseStoredJson(row.result) as AttemptView['result']),
    merged_into: row.merged_into,
    merge_commit: row.merge_commit,
    merged_at: row.merged_at === null ? null : isoTime(row.merged_at),
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
    ended_at: row.ended_at === null ? null : isoTime(row.ended_at),
  };
}

export function eventView(row: EventRow): EventView {
  return {
    seq: row.seq,
    run: row.run_id,
    task: row.task_id,
    attempt: row.attempt_id,
    type: row.type,
    data: parseStoredJson(row.data) as Record<string, unknown>,
    created_at: isoTime(row.created_at),
  };
}

export function countsView(rows: { state: TaskState; n: number }[]): StateCounts {
  const counts: StateCounts = { total: 0 };
  for (const r of rows) {
    counts[r.state] = (counts[r.state] ?? 0) + r.n;
    counts.total += r.n;
  }
  return counts;
}
