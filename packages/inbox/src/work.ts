// `inbox work`: claims threads for one agent and runs a command for each as a supervised
// subprocess: brief on stdin, lease kept alive, output logged, outcome posted back.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, LeaseLostError, isoTime, readNow, visible } from '@orch/store';
import type { Inbox } from './inbox.ts';
import { DEFAULT_LEASE_SECONDS, claim, heartbeat, postFailure, postResult, progress, release, type ClaimResult } from './leases.ts';
import { readTaskPayload } from './task-payload.ts';
import { requireThreadNow, showThread, type ThreadRow } from './threads.ts';
import type { MessageView, ThreadView } from './views.ts';
import { isOddEntry, makeClaimDir, makeScratch, prepareWorkDir, readResultFile, removeAny, removeScratch, sameDir, type ClaimFiles } from './work-dir.ts';
import { processesLeft } from './work-procs.ts';

/** How long children get between SIGTERM and SIGKILL when the runner stops or a command times out. */
export const GRACE_SECONDS = 10;
/** At most one progress message from a command's output per this many seconds. */
export const OUTPUT_PROGRESS_SECONDS = 30;
/** How much of a command's output is kept for its result or failure message. */
const TAIL_BYTES = 16 * 1024;
/** After the command exits, how long its output may still drain before the runner stops reading. */
const DRAIN_MS = 500;

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
  /** How commands run the inbox CLI ($INBOX_BIN). */
  inboxBin: string;
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

/**
 * Runs until `once` is satisfied, the idle timeout passes, or `signal` aborts. Never throws for a
 * command's failure.
 *
 * @throws ValidationError (2) when the work directory cannot be made, is not a directory, belongs
 *   to someone else or is writable by group or others; nothing is claimed then.
 */
export async function work(inbox: Inbox, input: WorkOptions): Promise<WorkResult> {
  const options: WorkOptions = { ...input, workDir: prepareWorkDir(input.workDir) };
  const concurrency = options.concurrency ?? 1;
  const log = options.log ?? (() => undefined);
  const monotonic = options.monotonic ?? (() => inbox.clock.monotonicMs());
  const active = new Map<string, Promise<void>>();
  const jobs = new Set<Job>();
  const handled: HandledThread[] = [];
  let claimedAny = false;
  let idleSince = monotonic();
  let stopped: WorkResult['stopped'] | undefined;
  let lastVersion = -1;
  let lastLook = -Infinity;

  const aborted = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  options.signal?.addEventListener(
    'abort',
    () => {
      log(`stopping: no new claims; signalling ${jobs.size} command(s) (a second signal kills them at once)`);
      for (const job of jobs) job.stop(options.graceSeconds ?? GRACE_SECONDS);
    },
    { once: true },
  );
  options.hurry?.addEventListener(
    'abort',
    () => {
      log(`stopping now: killing ${jobs.size} command(s)`);
      for (const job of jobs) job.kill();
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
    const now = monotonic();
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
        log(`claimed ${c.thread.id} (claim ${c.thread.claim_count}): ${visible(c.thread.subject)}`);
        active.set(
          c.thread.id,
          job.run().then((h) => {
            handled.push(h);
            jobs.delete(job);
            active.delete(c.thread.id);
            log(`${h.thread_id}: ${h.outcome}${h.exit_code !== null ? ` (exit ${h.exit_code})` : h.signal ? ` (${h.signal})` : ''}`);
            if (h.left_pids.length > 0) log(`${h.thread_id}: the command left processes running: ${h.left_pids.join(', ')}`);
          }),
        );
      }
    }
    if (active.size > 0) idleSince = monotonic();
    if (options.once && active.size === 0) {
      stopped = 'once';
      break;
    }
    if (active.size === 0 && options.idleExitSeconds !== undefined && monotonic() - idleSince >= options.idleExitSeconds * 1000) {
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

type Exit = { code: number | null; signal: string | null };

/** One claimed thread and the command running for it. */
class Job {
  private child: ChildProcess | undefined;
  private stopping = false;
  private hurried = false;
  private leaseLost = false;
  private timedOut = false;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly threadId: string;
  private readonly lease: string;
  private readonly claimNumber: number;

  constructor(
    private readonly inbox: Inbox,
    private readonly options: WorkOptions,
    private readonly claimed: Extract<ClaimResult, { claimed: true }>,
  ) {
    this.threadId = claimed.thread.id;
    this.lease = claimed.lease.token;
    this.claimNumber = claimed.thread.claim_count;
  }

  /** SIGTERM the command's process group now, SIGKILL it after `graceSeconds`. */
  stop(graceSeconds: number): void {
    this.stopping = true;
    this.terminate(graceSeconds);
  }

  /** SIGKILL the command's process group now (the end of the grace period, brought forward). */
  kill(): void {
    this.stopping = true;
    this.hurried = true;
    clearTimeout(this.killTimer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) killGroup(child, 'SIGKILL');
  }

  private terminate(graceSeconds: number): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    killGroup(child, 'SIGTERM');
    this.killTimer ??= setTimeout(() => killGroup(child, 'SIGKILL'), graceSeconds * 1000);
  }

  private loseLease(): void {
    if (this.leaseLost) return;
    this.leaseLost = true;
    this.terminate(this.options.graceSeconds ?? GRACE_SECONDS);
  }

  async run(): Promise<HandledThread> {
    const { options, inbox, claimed } = this;
    const started = inbox.clock.now();
    const task = taskInfo(claimed.messages);
    const worktree = task.worktree_path !== null && fs.existsSync(task.worktree_path) ? task.worktree_path : null;
    let files: ClaimFiles;
    let logFd: number;
    try {
      ({ files, logFd } = makeClaimDir(options.workDir, options.agent, this.threadId, this.claimNumber));
    } catch (err) {
      return this.unprepared(started, (err as Error).message);
    }
    try {
      if (worktree === null) makeScratch(files);
    } catch (err) {
      fs.closeSync(logFd);
      return this.unprepared(started, (err as Error).message);
    }
    const cwd = worktree ?? files.scratch;

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
      INBOX_RESULT_FILE: files.resultFile,
      INBOX_LOG_FILE: files.logFile,
    };
    let leftPids: number[] = [];
    const finish = async (outcome: Outcome, exit: Exit): Promise<HandledThread> => {
      const thread = (await showThread(inbox, { threadId: this.threadId })).thread;
      if (sameDir(files) && isOddEntry(files.resultFile)) removeAny(files.resultFile);
      if (thread.state === 'done' || thread.state === 'failed' || thread.state === 'cancelled') {
        for (const why of removeScratch(options.workDir, options.agent, this.threadId, this.claimNumber)) options.log?.(`${this.threadId}: could not remove a scratch directory: ${why}`);
      }
      return {
        thread_id: this.threadId,
        subject: claimed.thread.subject,
        claim: this.claimNumber,
        outcome,
        thread_state: thread.state,
        exit_code: exit.code,
        signal: exit.signal,
        timed_out: this.timedOut,
        work_dir: cwd,
        log_file: files.logFile,
        left_pids: leftPids,
        started_at: isoTime(started),
        ended_at: isoTime(inbox.clock.now()),
      };
    };

    // A log that cannot be written (a full disk, say) stops being written; the command runs on.
    const logStream = fs.createWriteStream('', { fd: logFd });
    logStream.on('error', (err) => options.log?.(`${this.threadId}: cannot write ${files.logFile} (${err.message}); the command's output is no longer logged`));
    const toLog = (d: Buffer) => {
      if (!logStream.destroyed) logStream.write(d);
    };
    const stdout = new Tail();
    const stderr = new Tail();
    const [program = '', ...args] = options.command;
    try {
      await progress(inbox, {
        threadId: this.threadId,
        lease: this.lease,
        body: `inbox work (${options.agent}) started: ${options.command.join(' ')}\nworking in ${cwd}\nlog: ${files.logFile}`,
        payload: { runner: 'inbox work', log_file: files.logFile, work_dir: cwd, claim: this.claimNumber, pid: process.pid },
        role: 'runner',
      });
    } catch (err) {
      await closeStream(logStream);
      if (err instanceof LeaseLostError || err instanceof ConflictError) return finish('lease_lost', { code: null, signal: null });
      throw err;
    }

    let unsupervise = (): void => undefined;
    let heldOpen = false;
    const exit = await new Promise<Exit>((resolve) => {
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
      child.stdin?.end(brief(claimed.thread, claimed.messages, { ...options, cwd, worktree, resultFile: files.resultFile }));
      child.stdout?.on('data', (d: Buffer) => {
        stdout.push(d);
        toLog(d);
      });
      child.stderr?.on('data', (d: Buffer) => {
        stderr.push(d);
        toLog(d);
      });
      // The command's exit ends its turn, not its pipes closing: a background job or a daemon it
      // started may hold them open for ever. Let the output drain briefly, then stop reading and
      // SIGTERM whatever is left of its process group.
      child.on('exit', (code, signal) => {
        let ended = false;
        const done = () => {
          if (ended) return;
          ended = true;
          clearTimeout(drained);
          child.stdout?.destroy();
          child.stderr?.destroy();
          killGroup(child, 'SIGTERM');
          resolve({ code, signal });
        };
        const drained = setTimeout(() => {
          heldOpen = true;
          done();
        }, DRAIN_MS);
        child.once('close', done);
      });
      if (this.hurried) killGroup(child, 'SIGKILL');
      else if (this.stopping) this.terminate(options.graceSeconds ?? GRACE_SECONDS);
    });
    unsupervise();
    clearTimeout(this.killTimer);
    await closeStream(logStream);
    // Look for leftovers (a scan of /proc) only when there is a sign of them: the output still held
    // open after the drain, or members left in the process group.
    const pid = this.child?.pid;
    if (pid !== undefined && (heldOpen || groupAlive(pid))) leftPids = await this.leftovers(pid);
    return this.after(exit, { stdout, stderr, files, leftPids, finish });
  }

  /** The claim's directory could not be made: the command never starts and the thread fails, saying why. */
  private async unprepared(started: number, why: string): Promise<HandledThread> {
    const { inbox, options } = this;
    const dir = path.join(options.workDir, options.agent, this.threadId, String(this.claimNumber));
    options.log?.(`${this.threadId}: cannot prepare ${dir}: ${why}`);
    let outcome: Outcome = 'failed';
    try {
      await postFailure(inbox, {
        threadId: this.threadId,
        lease: this.lease,
        body: `inbox work could not prepare the directory for this claim (${dir}), so the command was not started: ${why}`,
        payload: { runner: 'inbox work', exit_code: null, signal: null, timed_out: false },
        role: 'runner',
      });
    } catch (err) {
      if (!(err instanceof LeaseLostError || err instanceof ConflictError)) throw err;
      outcome = 'lease_lost';
    }
    return {
      thread_id: this.threadId,
      subject: this.claimed.thread.subject,
      claim: this.claimNumber,
      outcome,
      thread_state: (await showThread(inbox, { threadId: this.threadId })).thread.state,
      exit_code: null,
      signal: null,
      timed_out: false,
      work_dir: path.join(dir, 'scratch'),
      log_file: path.join(dir, 'output.log'),
      left_pids: [],
      started_at: isoTime(started),
      ended_at: isoTime(inbox.clock.now()),
    };
  }

  /** Processes still running from the command, once what was left in its process group had a moment to end after SIGTERM. */
  private async leftovers(leader: number): Promise<number[]> {
    const marker = `INBOX_LEASE=${this.lease}`;
    let left = processesLeft(leader, marker);
    for (let i = 0; i < 10 && left.some((p) => p.inGroup); i++) {
      await sleep(50);
      left = processesLeft(leader, marker);
    }
    return left.map((p) => p.pid).sort((a, b) => a - b);
  }

  private async after(
    exit: Exit,
    io: { stdout: Tail; stderr: Tail; files: ClaimFiles; leftPids: number[]; finish: (o: Outcome, e: Exit) => Promise<HandledThread> },
  ): Promise<HandledThread> {
    const { inbox } = this;
    const resultFile = io.files.resultFile;
    const thread = (await showThread(inbox, { threadId: this.threadId })).thread;
    if (this.leaseLost || thread.state === 'cancelled' || thread.claim_count !== this.claimNumber) return io.finish('lease_lost', exit);
    if (thread.state === 'done' || thread.state === 'failed') return io.finish('posted', exit);
    const left = io.leftPids.length > 0 ? { left_pids: io.leftPids } : {};
    try {
      if (this.stopping) {
        await release(inbox, { threadId: this.threadId, lease: this.lease });
        return io.finish('released', exit);
      }
      if (exit.code === 0 && !this.timedOut) {
        const file = readResultFile(io.files);
        if (file.kind === 'refused') {
          // Unlinked, not followed: a link or a hard link goes, what it pointed at stays.
          if (sameDir(io.files)) removeAny(resultFile);
          await postFailure(inbox, {
            threadId: this.threadId,
            lease: this.lease,
            body: `The command exited 0, but its result file $INBOX_RESULT_FILE (${resultFile}) ${file.why}; the runner does not read it. Write the result as a regular file there, or print it on stdout.`,
            payload: { runner: 'inbox work', exit_code: 0, signal: null, timed_out: false, result_file: resultFile, ...left },
            role: 'runner',
          });
          return io.finish('failed', exit);
        }
        const out = io.stdout.text();
        const body =
          file.kind === 'unfit'
            ? `The result is in ${resultFile} (${file.size} bytes: ${file.why}).`
            : file.kind === 'text'
              ? file.text
              : out.trim() !== ''
                ? out
                : '(the command exited 0 and printed nothing)';
        const payload = { runner: 'inbox work', exit_code: 0, ...(file.kind === 'unfit' ? { result_file: resultFile, result_bytes: file.size } : {}), ...left };
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
        payload: { runner: 'inbox work', exit_code: exit.code, signal: exit.signal, timed_out: this.timedOut, ...left },
        role: 'runner',
      });
      return io.finish('failed', exit);
    } catch (err) {
      if (err instanceof LeaseLostError || err instanceof ConflictError) return io.finish('lease_lost', exit);
      throw err;
    }
  }

  /** Whether the thread row says this claim's lease is gone: claimed again, cancelled, released, or run out by the wall clock. */
  private lostIn(row: ThreadRow): boolean {
    if (row.claim_count !== this.claimNumber || row.state === 'cancelled' || row.state === 'open') return true;
    if (row.state === 'done' || row.state === 'failed') return false; // the command posted it itself
    return row.lease_token !== this.lease || row.lease_expires_at === null || row.lease_expires_at <= this.inbox.clock.now();
  }

  /** Heartbeats, the lease watch, output progress and the time limit, for as long as the command runs. */
  private supervise(stdout: Tail): () => void {
    const { inbox, options } = this;
    const leaseSeconds = options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    const beat = setInterval(() => {
      heartbeat(inbox, { threadId: this.threadId, lease: this.lease }).catch((err: unknown) => {
        if (err instanceof LeaseLostError) this.loseLease();
        // ConflictError: the command posted its result or failure itself; the lease ended with it.
      });
    }, Math.max(1000, (leaseSeconds * 1000) / 3));
    // A lease lost any way (cancelled, reassigned, run out after a clock jump or a pause, claimed
    // by another runner) stops the command within about a second, not at the next heartbeat: the
    // thread row is one indexed read.
    const watch = setInterval(() => {
      readNow(inbox.store, (s) => requireThreadNow(s, this.threadId))
        .then((row) => {
          if (this.lostIn(row)) this.loseLease();
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

/** Ends a write stream and waits until its file is closed (at once if it already failed). */
function closeStream(stream: fs.WriteStream): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('close', () => resolve());
    if (!stream.destroyed) stream.end();
  });
}

/** Whether the process group `pgid` has any member left (a zombie not yet reaped counts). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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

/**
 * The last TAIL_BYTES of a stream, plus how many bytes were seen. Text taken from it has NUL
 * replaced by U+FFFD (as invalid UTF-8 is), since a message may not hold NUL.
 */
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
    return all
      .subarray(Math.max(0, all.length - TAIL_BYTES))
      .toString('utf8')
      .replaceAll('\u0000', '\uFFFD');
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

/** What orch put in the thread's first message (run, task, attempt, worktree); all null for a thread orch did not open. */
function taskInfo(messages: MessageView[]): TaskInfo {
  const p = readTaskPayload(messages[0]?.payload ?? null);
  return {
    run: p?.run.id ?? null,
    task: p?.task.id ?? null,
    attempt: p?.attempt.id ?? null,
    attemptNumber: p?.attempt.number ?? null,
    worktree_path: p?.attempt.execution_mode === 'code' ? p.attempt.worktree_path : null,
  };
}

/**
 * The prompt a command gets on stdin. For a thread orch dispatched: the brief orch rendered into
 * the task message (the text orch-worker-brief prints), then what is different under this runner.
 * For any other thread: the task as its author wrote it, and how to report.
 */
export function brief(
  thread: ThreadView,
  messages: MessageView[],
  o: { agent: string; dbPath: string; inboxBin: string; cwd: string; worktree: string | null; resultFile: string },
): string {
  const first = messages[0];
  const later = messages.slice(1).filter((m) => m.kind === 'answer' || m.kind === 'note');
  const earlier = later.flatMap((m) => ['', `Earlier ${m.kind} from ${m.author}:`, m.body.trimEnd()]);
  // A blocked thread (its last holder was stopped while waiting) keeps its question pending: say
  // so, or the agent would start over while the leader's answer is on its way.
  const question = thread.state === 'blocked' ? messages.findLast((m) => m.kind === 'question') : undefined;
  if (question) {
    earlier.push(
      '',
      `A question is pending on this thread (message ${question.id}, asked before this claim by ${question.author}); the answer has not come yet:`,
      question.body.trimEnd(),
      'Wait for the answer before you start over:',
      '  "$INBOX_BIN" --db "$INBOX_DB" --json wait --thread "$INBOX_THREAD_ID" --lease "$INBOX_LEASE" --timeout-seconds 900',
    );
  }
  const where = o.worktree
    ? `Your current directory is your own git worktree (${o.worktree}). Commit your work there, on its branch; uncommitted changes are not part of your result.`
    : `Your current directory (${o.cwd}) is a scratch directory for this task; change no repository.`;
  const outcome = [
    `- exit 0: your result is the file $INBOX_RESULT_FILE (${o.resultFile}) if you write it, otherwise the end of your output;`,
    '- a non-zero exit: the task fails, with the end of your stderr as the reason.',
  ];
  const stored = readTaskPayload(first?.payload ?? null)?.brief;
  if (stored) {
    const runner = [
      '# Started by inbox work',
      `The runner \`inbox work\` has claimed thread ${thread.id} for you and keeps its lease alive while you run: skip`,
      'step 1 above, and use "$INBOX_LEASE" wherever it says LEASE. $INBOX_BIN, $INBOX_DB and $INBOX_THREAD_ID hold the rest.',
      where,
      'When you exit, the runner reports for you, unless you posted a result or failure yourself (that one stands):',
      ...outcome,
      ...earlier,
    ];
    return `${stored.text.endsWith('\n') ? stored.text : `${stored.text}\n`}\n${runner.join('\n')}\n`;
  }
  const lines = [
    `You are ${o.agent}. You are working on inbox thread ${thread.id}: ${thread.subject}`,
    '',
    '# The task',
    first ? first.body.trimEnd() : '(no task message)',
  ];
  if (first?.payload) lines.push('', 'Details:', JSON.stringify(first.payload, null, 2));
  lines.push(
    ...earlier,
    '',
    '# Where to work',
    where,
    '',
    '# How your work is reported',
    'A runner (inbox work) keeps your lease alive while you run and reports for you when you exit:',
    ...outcome,
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

