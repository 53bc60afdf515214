// `inbox work`: claims threads for one agent and runs a command for each as a supervised
// subprocess: brief on stdin, lease kept alive, output logged, outcome posted back.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, LeaseLostError, MAX_TEXT_BYTES, ValidationError, isoTime } from '@orch/store';
import type { Inbox } from './inbox.ts';
import { DEFAULT_LEASE_SECONDS, claim, heartbeat, postFailure, postResult, progress, release, type ClaimResult } from './leases.ts';
import { showThread } from './threads.ts';
import type { MessageView, ThreadView } from './views.ts';

/** How long children get between SIGTERM and SIGKILL when the runner stops or a command times out. */
export const GRACE_SECONDS = 10;
/** At most one progress message from a command's output per this many seconds. */
export const OUTPUT_PROGRESS_SECONDS = 30;
/** How much of a command's output is kept for its result or failure message. */
const TAIL_BYTES = 16 * 1024;

export interface WorkOptions {
  agent: string;
  /** The command and its arguments, run without a shell. */
  command: string[];
  /** Threads handled at the same time. Default 1. */
  concurrency?: number;
  /** Handle at most one thread, then exit. */
  once?: boolean;
  /** Exit after this long with nothing to do (default: keep waiting). */
  idleExitSeconds?: number | undefined;
  /** Kill a command (its whole process group) that runs longer, and fail its thread. */
  maxSeconds?: number | undefined;
  /** Lease length; the runner heartbeats at a third of it. Default 900. */
  leaseSeconds?: number | undefined;
  /** The database path given to commands (absolute). */
  dbPath: string;
  /** How commands run the inbox CLI ($INBOX_BIN). */
  inboxBin: string;
  /** Where logs and scratch directories go: `<workDir>/<agent>/<thread>/`. */
  workDir: string;
  /** Between SIGTERM and SIGKILL. Default GRACE_SECONDS. */
  graceSeconds?: number;
  /** Aborting stops the runner: no new claims, children signalled, held threads released. */
  signal?: AbortSignal;
  /** The runner's own messages (to stderr in the CLI). */
  log?: (line: string) => void;
}

export type Outcome = 'done' | 'failed' | 'posted' | 'released' | 'lease_lost';

export interface HandledThread {
  thread_id: string;
  subject: string;
  /**
   * done / failed: the runner posted the result or failure; posted: the command posted it itself;
   * released: the runner was stopped and gave the thread back; lease_lost: the thread was
   * cancelled, reassigned or its lease ran out, so nothing was posted.
   */
  outcome: Outcome;
  /** The thread's state when the runner let go of it (done, failed, open, cancelled, ...). */
  thread_state: string;
  exit_code: number | null;
  signal: string | null;
  timed_out: boolean;
  work_dir: string;
  log_file: string;
  started_at: string;
  ended_at: string;
}

export interface WorkResult {
  agent: string;
  handled: HandledThread[];
  /** Why the runner ended: once (one thread handled, or none to handle), idle, or stopped (a signal). */
  stopped: 'once' | 'idle' | 'stopped';
}

/** Runs until `once` is satisfied, the idle timeout passes, or `signal` aborts. Never throws for a command's failure. */
export async function work(inbox: Inbox, options: WorkOptions): Promise<WorkResult> {
  // A work directory that cannot be created (a file, too long, a NUL byte) is refused before anything is claimed.
  try {
    fs.mkdirSync(path.join(options.workDir, options.agent), { recursive: true });
  } catch (err) {
    const why = (err as Error).message;
    throw new ValidationError(`--work-dir ${options.workDir}: ${why}`, [{ path: '--work-dir', message: why }]);
  }
  const concurrency = options.concurrency ?? 1;
  const log = options.log ?? (() => undefined);
  const active = new Map<string, Promise<void>>();
  const jobs = new Set<Job>();
  const handled: HandledThread[] = [];
  let claimedAny = false;
  let idleSince = inbox.clock.now();
  let stopped: WorkResult['stopped'] | undefined;
  let lastVersion = -1;
  let lastLook = 0;

  const aborted = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  options.signal?.addEventListener(
    'abort',
    () => {
      log(`stopping: no new claims; signalling ${jobs.size} command(s)`);
      for (const job of jobs) job.stop(options.graceSeconds ?? GRACE_SECONDS);
    },
    { once: true },
  );

  while (stopped === undefined) {
    if (options.signal?.aborted) {
      stopped = 'stopped';
      break;
    }
    // Claim while there is room. Skip the query when nothing was committed since the last look,
    // except once a second (a lease running out makes a thread claimable without a commit).
    const version = inbox.store.dataVersion();
    const now = inbox.clock.now();
    if (version !== lastVersion || now - lastLook >= 1000) {
      lastVersion = version;
      lastLook = now;
      while (active.size < concurrency && !(options.once && claimedAny) && !options.signal?.aborted) {
        const c = await claim(inbox, { agent: options.agent, leaseSeconds: options.leaseSeconds ?? DEFAULT_LEASE_SECONDS });
        if (!c.claimed) break;
        if (options.signal?.aborted) {
          await release(inbox, { threadId: c.thread.id, lease: c.lease.token }).catch(() => undefined);
          break;
        }
        claimedAny = true;
        const job = new Job(inbox, options, c);
        jobs.add(job);
        log(`claimed ${c.thread.id}: ${c.thread.subject}`);
        active.set(
          c.thread.id,
          job.run().then((h) => {
            handled.push(h);
            jobs.delete(job);
            active.delete(c.thread.id);
            log(`${h.thread_id}: ${h.outcome}${h.exit_code !== null ? ` (exit ${h.exit_code})` : h.signal ? ` (${h.signal})` : ''}`);
          }),
        );
      }
    }
    if (active.size > 0) idleSince = inbox.clock.now();
    if (options.once && active.size === 0) {
      stopped = 'once';
      break;
    }
    if (active.size === 0 && options.idleExitSeconds !== undefined && inbox.clock.now() - idleSince >= options.idleExitSeconds * 1000) {
      stopped = 'idle';
      break;
    }
    await Promise.race([...active.values(), aborted, sleep(100)]);
  }
  await Promise.all(active.values());
  return { agent: options.agent, handled, stopped };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One claimed thread and the command running for it. */
class Job {
  private child: ChildProcess | undefined;
  private stopping = false;
  private leaseLost = false;
  private timedOut = false;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly threadId: string;
  private readonly lease: string;

  constructor(
    private readonly inbox: Inbox,
    private readonly options: WorkOptions,
    private readonly claimed: Extract<ClaimResult, { claimed: true }>,
  ) {
    this.threadId = claimed.thread.id;
    this.lease = claimed.lease.token;
  }

  /** SIGTERM the command's process group now, SIGKILL it after `graceSeconds`. */
  stop(graceSeconds: number): void {
    this.stopping = true;
    this.terminate(graceSeconds);
  }

  private terminate(graceSeconds: number): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    killGroup(child, 'SIGTERM');
    this.killTimer ??= setTimeout(() => killGroup(child, 'SIGKILL'), graceSeconds * 1000);
  }

  async run(): Promise<HandledThread> {
    const { options, inbox, claimed } = this;
    const started = inbox.clock.now();
    const dir = path.join(options.workDir, options.agent, this.threadId);
    fs.mkdirSync(dir, { recursive: true });
    const logFile = path.join(dir, 'output.log');
    const resultFile = path.join(dir, 'result.md');
    fs.rmSync(resultFile, { force: true });
    const task = taskInfo(claimed.messages);
    const worktree = task.worktree_path !== null && fs.existsSync(task.worktree_path) ? task.worktree_path : null;
    const cwd = worktree ?? path.join(dir, 'scratch');
    fs.mkdirSync(cwd, { recursive: true });

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      INBOX_DB: options.dbPath,
      INBOX_BIN: options.inboxBin,
      INBOX_AGENT: options.agent,
      INBOX_THREAD_ID: this.threadId,
      INBOX_LEASE: this.lease,
      INBOX_RUN: task.run ?? '',
      INBOX_TASK: task.task ?? '',
      INBOX_ATTEMPT: task.attempt ?? '',
      INBOX_ATTEMPT_NUMBER: task.attemptNumber === null ? '' : String(task.attemptNumber),
      INBOX_WORKTREE: worktree ?? '',
      INBOX_WORK_DIR: cwd,
      INBOX_RESULT_FILE: resultFile,
      INBOX_LOG_FILE: logFile,
    };
    const finish = async (outcome: Outcome, exit: { code: number | null; signal: string | null }): Promise<HandledThread> => ({
      thread_id: this.threadId,
      subject: claimed.thread.subject,
      outcome,
      thread_state: (await showThread(inbox, { threadId: this.threadId })).thread.state,
      exit_code: exit.code,
      signal: exit.signal,
      timed_out: this.timedOut,
      work_dir: cwd,
      log_file: logFile,
      started_at: isoTime(started),
      ended_at: isoTime(inbox.clock.now()),
    });

    const logStream = fs.createWriteStream(logFile, { flags: 'a' });
    const stdout = new Tail();
    const stderr = new Tail();
    const [program = '', ...args] = options.command;
    try {
      await progress(inbox, {
        threadId: this.threadId,
        lease: this.lease,
        body: `inbox work (${options.agent}) started: ${options.command.join(' ')}\nworking in ${cwd}\nlog: ${logFile}`,
        payload: { runner: 'inbox work', log_file: logFile, work_dir: cwd, pid: process.pid },
        role: 'runner',
      });
    } catch (err) {
      if (err instanceof LeaseLostError || err instanceof ConflictError) return finish('lease_lost', { code: null, signal: null });
      throw err;
    }

    let unsupervise = (): void => undefined;
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      let child: ChildProcess;
      try {
        // detached: the command leads its own process group, so stopping it reaches its children too.
        child = spawn(program, args, { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
      } catch (err) {
        stderr.push(Buffer.from(`could not start ${program}: ${(err as Error).message}\n`));
        resolve({ code: 127, signal: null });
        return;
      }
      this.child = child;
      unsupervise = this.supervise(stdout);
      child.on('error', (err) => {
        stderr.push(Buffer.from(`could not start ${program}: ${err.message}\n`));
        resolve({ code: 127, signal: null });
      });
      child.stdin?.on('error', () => undefined); // a command that never reads its brief is fine
      child.stdin?.end(brief(claimed.thread, claimed.messages, { ...options, cwd, worktree, resultFile }));
      child.stdout?.on('data', (d: Buffer) => {
        stdout.push(d);
        logStream.write(d);
      });
      child.stderr?.on('data', (d: Buffer) => {
        stderr.push(d);
        logStream.write(d);
      });
      // The command's exit is what counts, not its pipes closing: a background job it started may
      // hold them open. Let the output drain briefly, then stop whatever is left of its process group.
      child.on('exit', (code, signal) => {
        const done = () => {
          killGroup(child, 'SIGTERM');
          resolve({ code, signal });
        };
        const drained = setTimeout(done, 500);
        child.once('close', () => {
          clearTimeout(drained);
          done();
        });
      });
      if (this.stopping) this.terminate(options.graceSeconds ?? GRACE_SECONDS);
    });
    unsupervise();
    return this.after(exit, { stdout, stderr, resultFile, finish, logStream });
  }

  private async after(
    exit: { code: number | null; signal: string | null },
    io: { stdout: Tail; stderr: Tail; resultFile: string; finish: (o: Outcome, e: typeof exit) => Promise<HandledThread>; logStream: fs.WriteStream },
  ): Promise<HandledThread> {
    clearTimeout(this.killTimer);
    await new Promise<void>((resolve) => io.logStream.end(resolve));
    const { inbox } = this;
    const state = (await showThread(inbox, { threadId: this.threadId })).thread.state;
    if (this.leaseLost || state === 'cancelled') return io.finish('lease_lost', exit);
    if (state === 'done' || state === 'failed') return io.finish('posted', exit);
    try {
      if (this.stopping) {
        await release(inbox, { threadId: this.threadId, lease: this.lease });
        return io.finish('released', exit);
      }
      if (exit.code === 0 && !this.timedOut) {
        const file = readResultFile(io.resultFile);
        const body =
          file.unfit !== undefined
            ? `The result is in ${io.resultFile} (${file.size} bytes: ${file.unfit}).`
            : file.text.trim() !== ''
              ? file.text
              : io.stdout.text().trim() !== ''
                ? io.stdout.text()
                : '(the command exited 0 and printed nothing)';
        const payload = { runner: 'inbox work', exit_code: 0, ...(file.unfit !== undefined ? { result_file: io.resultFile, result_bytes: file.size } : {}) };
        await postResult(inbox, { threadId: this.threadId, lease: this.lease, body, payload, role: 'runner' });
        return io.finish('done', exit);
      }
      const why = this.timedOut
        ? `timed out after ${this.options.maxSeconds ?? 0} s and was killed`
        : exit.signal
          ? `was killed by ${exit.signal}`
          : `exited with status ${exit.code ?? '?'}`;
      const tail = io.stderr.text().trim();
      await postFailure(inbox, {
        threadId: this.threadId,
        lease: this.lease,
        body: `The command ${why}.${tail ? `\n\nEnd of its stderr:\n${tail}` : ''}`,
        payload: { runner: 'inbox work', exit_code: exit.code, signal: exit.signal, timed_out: this.timedOut },
        role: 'runner',
      });
      return io.finish('failed', exit);
    } catch (err) {
      if (err instanceof LeaseLostError || err instanceof ConflictError) return io.finish('lease_lost', exit);
      throw err;
    }
  }

  /** Heartbeats, output progress and the time limit, for as long as the command runs. */
  private supervise(stdout: Tail): () => void {
    const { inbox, options } = this;
    const leaseSeconds = options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    const beat = setInterval(() => {
      heartbeat(inbox, { threadId: this.threadId, lease: this.lease }).catch((err: unknown) => {
        if (err instanceof LeaseLostError) {
          this.leaseLost = true;
          this.terminate(options.graceSeconds ?? GRACE_SECONDS);
        }
        // ConflictError: the command posted its result or failure itself; the lease ended with it.
      });
    }, Math.max(1000, (leaseSeconds * 1000) / 3));
    // A cancelled (reassigned) thread stops the command within about a second: look at the thread
    // whenever another process has committed.
    let version = inbox.store.dataVersion();
    const watch = setInterval(() => {
      const now = inbox.store.dataVersion();
      if (now === version) return;
      version = now;
      showThread(inbox, { threadId: this.threadId })
        .then((r) => {
          if (r.thread.state === 'cancelled') {
            this.leaseLost = true;
            this.terminate(options.graceSeconds ?? GRACE_SECONDS);
          }
        })
        .catch(() => undefined);
    }, 1000);
    let posted = 0;
    const talk = setInterval(() => {
      const line = stdout.lastLine();
      if (stdout.received === posted || line === '') return;
      posted = stdout.received;
      progress(inbox, { threadId: this.threadId, lease: this.lease, body: line.slice(0, 500), role: 'runner' }).catch(() => undefined);
    }, OUTPUT_PROGRESS_SECONDS * 1000);
    const limit =
      options.maxSeconds !== undefined
        ? setTimeout(() => {
            const child = this.child;
            if (!child || child.exitCode !== null || child.signalCode !== null) return;
            this.timedOut = true;
            this.terminate(options.graceSeconds ?? GRACE_SECONDS);
          }, options.maxSeconds * 1000)
        : undefined;
    return () => {
      clearInterval(watch);
      clearInterval(beat);
      clearInterval(talk);
      clearTimeout(limit);
    };
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** The last TAIL_BYTES of a stream, plus how many bytes were seen. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  received = 0;

  push(d: Buffer): void {
    this.chunks.push(d);
    this.size += d.length;
    this.received += d.length;
    while (this.size > TAIL_BYTES && this.chunks.length > 1) this.size -= this.chunks.shift()?.length ?? 0;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - TAIL_BYTES)).toString('utf8');
  }

  lastLine(): string {
    return (
      this.text()
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .at(-1) ?? ''
    );
  }
}

interface TaskInfo {
  run: string | null;
  task: string | null;
  attempt: string | null;
  attemptNumber: number | null;
  worktree_path: string | null;
}

/** What orch put in the thread's first message (run, task, attempt, worktree), if anything. */
function taskInfo(messages: MessageView[]): TaskInfo {
  const p = messages[0]?.payload ?? null;
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {});
  const attempt = obj(p?.attempt);
  return {
    run: str(obj(p?.run).id),
    task: str(obj(p?.task).id),
    attempt: str(attempt.id),
    attemptNumber: typeof attempt.number === 'number' ? attempt.number : null,
    worktree_path: str(attempt.worktree_path),
  };
}

/** The prompt a command gets on stdin: the task as the leader wrote it, and how to report. */
export function brief(
  thread: ThreadView,
  messages: MessageView[],
  o: { agent: string; dbPath: string; inboxBin: string; cwd: string; worktree: string | null; resultFile: string },
): string {
  const first = messages[0];
  const later = messages.slice(1).filter((m) => m.kind === 'answer' || m.kind === 'note');
  const lines = [
    `You are ${o.agent}. You are working on inbox thread ${thread.id}: ${thread.subject}`,
    '',
    '# The task',
    first ? first.body.trimEnd() : '(no task message)',
  ];
  if (first?.payload) lines.push('', 'Details:', JSON.stringify(first.payload, null, 2));
  for (const m of later) lines.push('', `Earlier ${m.kind} from ${m.author}:`, m.body.trimEnd());
  lines.push(
    '',
    '# Where to work',
    o.worktree
      ? `Your current directory is your own git worktree (${o.worktree}). Commit your work there, on its branch; uncommitted changes are not part of your result.`
      : `Your current directory (${o.cwd}) is a scratch directory for this task; change no repository.`,
    '',
    '# How your work is reported',
    'A runner (inbox work) keeps your lease alive while you run and reports for you when you exit:',
    `- exit 0: your result is the file $INBOX_RESULT_FILE (${o.resultFile}) if you write it, otherwise the end of your output;`,
    '- a non-zero exit: the task fails, with the end of your stderr as the reason.',
    'You can also report yourself with the inbox CLI (all values are in your environment):',
    '  "$INBOX_BIN" --db "$INBOX_DB" --json progress --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" --body "what is done"',
    'If only the leader can unblock you, ask, note the question\'s message id, and wait for the answer:',
    '  "$INBOX_BIN" --db "$INBOX_DB" --json ask --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" --body "your question"',
    '  "$INBOX_BIN" --db "$INBOX_DB" --json wait --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" --after-message QUESTION_ID --timeout-seconds 900',
    'If you post a result or failure yourself (result / fail with --thread and --lease as above), that one stands.',
    'Exit code 5 from any inbox command means the task was taken away (cancelled or reassigned): stop.',
  );
  return `${lines.join('\n')}\n`;
}

/**
 * The command's result file, if it wrote one that fits in a message: at most MAX_TEXT_BYTES once
 * decoded, no NUL. Anything else is left where it is and only named (`unfit` says why), so nothing
 * is lost and nothing huge is loaded.
 */
function readResultFile(file: string): { text: string; size: number; unfit?: string } {
  let size = 0;
  try {
    size = fs.statSync(file).size;
  } catch {
    return { text: '', size: 0 };
  }
  if (size > MAX_TEXT_BYTES) return { text: '', size, unfit: `more than a message may hold, ${MAX_TEXT_BYTES} bytes` };
  const text = fs.readFileSync(file, 'utf8');
  if (Buffer.byteLength(text, 'utf8') > MAX_TEXT_BYTES) return { text: '', size, unfit: `more than a message may hold once decoded as UTF-8, ${MAX_TEXT_BYTES} bytes` };
  if (text.includes('\u0000')) return { text: '', size, unfit: 'it holds NUL characters, which a message may not' };
  return { text, size };
}
