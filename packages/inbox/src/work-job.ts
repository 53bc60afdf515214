// `inbox work`: one claimed thread and the command running for it, in a process group of its own:
// its claim directory and environment, the brief on its stdin, its output, the heartbeats and lease
// watch while it runs, and stopping it. Its outcome is posted by work-outcome.ts.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { LeaseLostError, ConflictError } from '@orch/store';
import { DEFAULT_LEASE_SECONDS, type ClaimResult } from './leases.ts';
import type { WorkBackend } from './work-backend.ts';
import { brief, taskInfo } from './work-brief.ts';
import { pushAttemptBranch, remoteAttempt, remoteWorktree } from './work-git.ts';
import { makeClaimDir, makeScratch, type ClaimFiles } from './work-dir.ts';
import { GRACE_SECONDS, OUTPUT_PROGRESS_SECONDS, type HandledThread, type WorkOptions } from './work-options.ts';
import { failUnprepared, finishClaim, postOutcome, type ClaimRun, type Exit, type JobClaim } from './work-outcome.ts';
import { DRAIN_MS, Tail, closeStream } from './work-output.ts';
import { groupAlive, killGroup, processesLeft } from './work-procs.ts';

/** One claimed thread and the command running for it. */
export class Job implements JobClaim {
  private child: ChildProcess | undefined;
  private stopped = false;
  private hurried = false;
  private lost = false;
  private timeUp = false;
  private killTimer: NodeJS.Timeout | undefined;
  readonly threadId: string;
  readonly lease: string;
  readonly claimNumber: number;
  readonly subject: string;

  constructor(
    readonly inbox: WorkBackend,
    readonly options: WorkOptions,
    private readonly claimed: Extract<ClaimResult, { claimed: true }>,
  ) {
    this.threadId = claimed.thread.id;
    this.lease = claimed.lease.token;
    this.claimNumber = claimed.thread.claim_count;
    this.subject = claimed.thread.subject;
  }

  get stopping(): boolean {
    return this.stopped;
  }

  get leaseLost(): boolean {
    return this.lost;
  }

  get timedOut(): boolean {
    return this.timeUp;
  }

  /** SIGTERM the command's process group now, SIGKILL it after `graceSeconds`. */
  stop(graceSeconds: number): void {
    this.stopped = true;
    this.terminate(graceSeconds);
  }

  /** SIGKILL the command's process group now (the end of the grace period, brought forward). */
  kill(): void {
    this.stopped = true;
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
    if (this.lost) return;
    this.lost = true;
    this.terminate(this.options.graceSeconds ?? GRACE_SECONDS);
  }

  async run(): Promise<HandledThread> {
    const { options, inbox, claimed } = this;
    const started = inbox.clock.now();
    const task = taskInfo(claimed.messages);
    const remote = remoteAttempt(claimed.messages);
    let worktree = task.worktree_path !== null && fs.existsSync(task.worktree_path) ? task.worktree_path : null;
    let files: ClaimFiles;
    let logFd: number;
    try {
      ({ files, logFd } = makeClaimDir(options.workDir, options.agent, this.threadId, this.claimNumber));
    } catch (err) {
      return failUnprepared(this, started, (err as Error).message);
    }
    try {
      if (remote) worktree = await remoteWorktree(options.repo, remote);
      if (worktree === null) makeScratch(files);
    } catch (err) {
      fs.closeSync(logFd);
      return failUnprepared(this, started, (err as Error).message);
    }
    const cwd = worktree ?? files.scratch;

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      INBOX_DB: options.dbPath,
      ...(options.dbPassword !== undefined ? { PGPASSWORD: options.dbPassword } : {}),
      ...options.env,
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
    const claim: ClaimRun = { started, files, cwd, leftPids: [] };

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
      await inbox.progress({
        threadId: this.threadId,
        lease: this.lease,
        body: `inbox work (${options.agent}) started: ${options.command.join(' ')}\nworking in ${cwd}\nlog: ${files.logFile}`,
        payload: { runner: 'inbox work', log_file: files.logFile, work_dir: cwd, claim: this.claimNumber, pid: process.pid },
        role: 'runner',
      });
    } catch (err) {
      await closeStream(logStream);
      if (err instanceof LeaseLostError || err instanceof ConflictError) return finishClaim(this, claim, 'lease_lost', { code: null, signal: null });
      throw err;
    }

    let unsupervise = (): void => undefined;
    let heldOpen = false;
    // Loaded here, not at the top: every orch and inbox command loads this package, only the runner spawns.
    const { spawn } = process.getBuiltinModule('node:child_process');
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
      child.stdin?.end(brief(claimed.thread, claimed.messages, { ...options, cwd, worktree, resultFile: files.resultFile, pushes: remote !== null }));
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
      else if (this.stopped) this.terminate(options.graceSeconds ?? GRACE_SECONDS);
    });
    unsupervise();
    clearTimeout(this.killTimer);
    await closeStream(logStream);
    // Look for leftovers (a scan of /proc) only when there is a sign of them: the output still held
    // open after the drain, or members left in the process group.
    const pid = this.child?.pid;
    if (pid !== undefined && (heldOpen || groupAlive(pid))) claim.leftPids = await this.leftovers(pid);
    const pushed = remote && worktree !== null ? await pushAttemptBranch(this, worktree, remote) : undefined;
    if (pushed && !pushed.pushed) options.log?.(`${this.threadId}: ${pushed.why}; the work stays in ${pushed.worktree}`);
    return postOutcome(this, { ...claim, stdout, stderr }, exit, pushed);
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

  /** Heartbeats, the lease watch, output progress and the time limit, for as long as the command runs. */
  private supervise(stdout: Tail): () => void {
    const { inbox, options } = this;
    const leaseSeconds = options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    const beat = setInterval(
      () => {
        inbox.heartbeat({ threadId: this.threadId, lease: this.lease }).catch((err: unknown) => {
          if (err instanceof LeaseLostError) this.loseLease();
          // ConflictError: the command posted its result or failure itself; the lease ended with it.
        });
      },
      Math.max(1000, (leaseSeconds * 1000) / 3),
    );
    // A lease lost any way (cancelled, reassigned, run out after a clock jump or a pause, claimed
    // by another runner) stops the command within about a second, not at the next heartbeat: the
    // thread row is one indexed read.
    const watch = setInterval(() => {
      inbox
        .claimLost(this.threadId, this.lease, this.claimNumber)
        .then((lost) => {
          if (lost) this.loseLease();
        })
        .catch(() => undefined);
    }, 1000);
    let posted = 0;
    const talk = setInterval(() => {
      const line = stdout.lastLine();
      if (stdout.received === posted || line === '') return;
      posted = stdout.received;
      inbox.progress({ threadId: this.threadId, lease: this.lease, body: line.slice(0, 500), role: 'runner' }).catch(() => undefined);
    }, OUTPUT_PROGRESS_SECONDS * 1000);
    const limit =
      options.maxSeconds !== undefined
        ? setTimeout(() => {
            const child = this.child;
            if (!child || child.exitCode !== null || child.signalCode !== null) return;
            this.timeUp = true;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
