/** The parts of `orch status --json` the run page reads. */
export interface StatusTask {
  run: string;
  id: string;
  title: string;
  summary: string | null;
  default_to: string | null;
  priority: number;
  state: string;
  created_at: string;
  updated_at: string;
  depends_on: string[];
  waiting_on: string[];
  ready: boolean;
  attempts: number;
  latest_attempt: { number: number; assigned_to: string; execution_mode: string; state: string; updated_at: string } | null;
}

export interface RunStatus {
  run: { id: string; goal: string; summary: string | null; state: string; created_at: string; updated_at: string };
  counts: Record<string, number>;
  last_event: number;
  unmerged: number;
  tasks: StatusTask[];
}

/** One event of `orch wait --json`. */
export interface RunEvent {
  seq: number;
  run: string;
  task: string | null;
  attempt: string | null;
  type: string;
  data: Record<string, unknown> | null;
  created_at: string;
}
