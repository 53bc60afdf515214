// `inbox work`: what the runner is told (WorkOptions) and what it reports (WorkResult), with the
// time constants its parts share.

/** How long children get between SIGTERM and SIGKILL when the runner stops or a command times out. */
export const GRACE_SECONDS = 10;
/** At most one progress message from a command's output per this many seconds. */
export const OUTPUT_PROGRESS_SECONDS = 30;

export interface WorkOptions {
  agent: string;
  /** The command and its arguments, run without a shell. */
  command: string[];
  /** Threads handled at the same time. Default 1. */
  concurrency?: number;
  /** Handle at most one thread, then exit. */
  once?: boolean;
  /** Exit after this long with nothing to do (default: keep waiting). Measured on the monotonic clock. */
  idleExitSeconds?: number | undefined;
  /** Kill a command (its whole process group) that runs longer, and fail its thread. */
  maxSeconds?: number | undefined;
  /** Lease length; the runner heartbeats at a third of it. Default 900. */
  leaseSeconds?: number | undefined;
  /** The database path given to commands (absolute). */
  dbPath: string;
  /** A PostgreSQL URL's password, handed to commands as PGPASSWORD (dbPath holds the URL without it). */
  dbPassword?: string | undefined;
  /** More environment for the commands (with an `orch serve` URL: ORCH_TOKEN). */
  env?: Record<string, string> | undefined;
  /** How commands run the inbox CLI ($INBOX_BIN). */
  inboxBin: string;
  /**
   * The worker's own clone of the run's repository (its top directory): attempts dispatched across
   * machines (`orch dispatch --remote`) get their worktree made there (see work-git.ts). Unused by other attempts.
   */
  repo?: string | undefined;
  /** Where logs and scratch directories go: `<workDir>/<agent>/<thread>/<claim>/`. Made owner-only; refused if others can write to it. */
  workDir: string;
  /** Between SIGTERM and SIGKILL. Default GRACE_SECONDS. */
  graceSeconds?: number | undefined;
  /** Aborting stops the runner: no new claims, children signalled, held threads released. */
  signal?: AbortSignal;
  /** Aborting (after `signal`) ends the grace period at once: commands get SIGKILL now; threads are still released. */
  hurry?: AbortSignal;
  /** Milliseconds on a monotonic clock, for deadlines. Default: the inbox clock's `monotonicMs()`. */
  monotonic?: () => number;
  /** The runner's own messages (to stderr in the CLI). */
  log?: (line: string) => void;
}

export type Outcome = 'done' | 'failed' | 'posted' | 'released' | 'lease_lost';

export interface HandledThread {
  thread_id: string;
  subject: string;
  /** Which claim of the thread this was (1, 2, ...); it names the claim's directory. */
  claim: number;
  /**
   * done / failed: the runner posted the result or failure; posted: the command posted it itself;
   * released: the runner was stopped and gave the thread back; lease_lost: the thread was
   * cancelled, reassigned, claimed again or its lease ran out, so nothing was posted.
   */
  outcome: Outcome;
  /** The thread's state when the runner let go of it (done, failed, open, cancelled, ...). */
  thread_state: string;
  exit_code: number | null;
  signal: string | null;
  timed_out: boolean;
  work_dir: string;
  log_file: string;
  /** Processes the command left running that the runner did not stop (a daemon in a session of its own, or ones ignoring SIGTERM). */
  left_pids: number[];
  started_at: string;
  ended_at: string;
}

export interface WorkResult {
  agent: string;
  handled: HandledThread[];
  /** Why the runner ended: once (one thread handled, or none to handle), idle, or stopped (a signal). */
  stopped: 'once' | 'idle' | 'stopped';
}
