/**
 * The shapes of the orch and inbox `--json` documents the task, Blocked and My work pages read
 * (only the fields they use). The CLI's output is the source of truth; these only name it.
 */

export interface Task {
  run: string;
  id: string;
  title: string;
  summary: string | null;
  default_to: string | null;
  acceptance: unknown;
  priority: number;
  state: string;
  created_at: string;
  updated_at: string;
}

export interface TaskDetail extends Task {
  depends_on: string[];
  waiting_on: string[];
  ready: boolean;
  dependents: string[];
}

export interface Thread {
  id: string;
  subject: string;
  assigned_to: string;
  created_by: string;
  state: string;
  claimed_by: string | null;
  claim_count: number;
  lease_expires_at: string | null;
  lease_expired: boolean;
  created_at: string;
  updated_at: string;
}

export interface Message {
  id: number;
  thread_id: string;
  author: string;
  role: string;
  kind: string;
  body: string | null;
  payload: unknown;
  created_at: string;
}

export interface Attempt {
  id: string;
  run: string;
  task: string;
  number: number;
  assigned_to: string;
  execution_mode: 'analysis' | 'code';
  thread_id: string;
  state: string;
  body: string | null;
  worktree_path: string | null;
  branch: string | null;
  base_ref: string | null;
  remote_url: string | null;
  merged_into: string | null;
  merge_commit: string | null;
  merged_at: string | null;
  created_at: string;
  updated_at: string;
  ended_at: string | null;
  thread?: Thread;
}

/** `orch task show`. */
export interface TaskShow {
  task: TaskDetail;
  attempts: Attempt[];
}

/** `inbox show`. */
export interface ThreadShow {
  thread: Thread;
  messages: Message[];
  more: boolean;
  last_message_id: number | null;
}

/** `orch diff`. */
export interface DiffDoc {
  branch: string;
  base_commit: string;
  head_commit: string;
  commits: { sha: string; subject: string }[];
  files: { path: string; additions: number; deletions: number }[];
  patch?: string;
  uncommitted: string[] | null;
}

/** One item of `orch blocked` (`run` is set when listed across runs). */
export interface BlockedItem {
  run?: string;
  task: Task;
  attempt: Attempt;
  question: { message_id: number; body: string | null; payload: unknown; asked_by: string; asked_at: string } | null;
}

export interface BlockedDoc {
  run?: string;
  tasks: BlockedItem[];
}

/** A claim's lease as `inbox claim` returns it. */
export interface Lease {
  token: string;
  expires_at: string;
  seconds: number;
}
