// `inbox work`: posting a command's outcome on its thread (its result, its failure, or the thread
// given back when the runner stops) and the record the runner keeps of each claim it let go of.
import path from 'node:path';
import { ConflictError, LeaseLostError, isoTime } from '@orch/store';
import type { WorkBackend } from './work-backend.ts';
import { isOddEntry, readResultFile, removeAny, removeScratch, sameDir, type ClaimFiles } from './work-dir.ts';
import type { HandledThread, Outcome, WorkOptions } from './work-options.ts';
import type { PushOutcome } from './work-git.ts';
import type { Tail } from './work-output.ts';

export type Exit = { code: number | null; signal: string | null };

/** What posting under a job's claim needs to know of it; the flags are read when the outcome is posted. */
export interface JobClaim {
  readonly inbox: WorkBackend;
  readonly options: WorkOptions;
  readonly threadId: string;
  readonly lease: string;
  readonly claimNumber: number;
  readonly subject: string;
  /** The thread was cancelled, reassigned, claimed again or its lease ran out while the command ran. */
  readonly leaseLost: boolean;
  /** The runner is stopping: the thread goes back unfinished. */
  readonly stopping: boolean;
  /** --max-seconds passed and the command was killed. */
  readonly timedOut: boolean;
}

/** Where a claim's command ran and what it left behind. */
export interface ClaimRun {
  started: number;
  files: ClaimFiles;
  cwd: string;
  leftPids: number[];
}

/** The record of a claim the runner lets go of; removes the claim's scratch directories once the thread is finished. */
export async function finishClaim(job: JobClaim, run: ClaimRun, outcome: Outcome, exit: Exit): Promise<HandledThread> {
  const { inbox, options, threadId, claimNumber } = job;
  const { files } = run;
  const thread = (await inbox.showThread({ threadId })).thread;
  if (sameDir(files) && isOddEntry(files.resultFile)) removeAny(files.resultFile);
  if (thread.state === 'done' || thread.state === 'failed' || thread.state === 'cancelled') {
    for (const why of removeScratch(options.workDir, options.agent, threadId, claimNumber))
      options.log?.(`${threadId}: could not remove a scratch directory: ${why}`);
  }
  return {
    thread_id: threadId,
    subject: job.subject,
    claim: claimNumber,
    outcome,
    thread_state: thread.state,
    exit_code: exit.code,
    signal: exit.signal,
    timed_out: job.timedOut,
    work_dir: run.cwd,
    log_file: files.logFile,
    left_pids: run.leftPids,
    started_at: isoTime(run.started),
    ended_at: isoTime(inbox.clock.now()),
  };
}

/** The claim's directory could not be made: the command never starts and the thread fails, saying why. */
export async function failUnprepared(job: JobClaim, started: number, why: string): Promise<HandledThread> {
  const { inbox, options, threadId, claimNumber } = job;
  const dir = path.join(options.workDir, options.agent, threadId, String(claimNumber));
  options.log?.(`${threadId}: cannot prepare ${dir}: ${why}`);
  let outcome: Outcome = 'failed';
  try {
    await inbox.postFailure({
      threadId,
      lease: job.lease,
      body: `inbox work could not prepare the directory for this claim (${dir}), so the command was not started: ${why}`,
      payload: { runner: 'inbox work', exit_code: null, signal: null, timed_out: false },
      role: 'runner',
    });
  } catch (err) {
    if (!(err instanceof LeaseLostError || err instanceof ConflictError)) throw err;
    outcome = 'lease_lost';
  }
  return {
    thread_id: threadId,
    subject: job.subject,
    claim: claimNumber,
    outcome,
    thread_state: (await inbox.showThread({ threadId })).thread.state,
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

/**
 * After the command exited: a result or failure it posted itself stands; a lost lease posts
 * nothing; a stopping runner releases the thread; exit 0 posts the result (the result file, else
 * the end of stdout) and anything else a failure with the end of stderr. Across machines (`pushed`:
 * the attempt branch pushed to its remote, or not): a push that failed turns a result into a
 * failure saying where the work is kept; the outcome's payload says what was pushed.
 */
export async function postOutcome(
  job: JobClaim,
  run: ClaimRun & { stdout: Tail; stderr: Tail },
  exit: Exit,
  pushed?: PushOutcome | undefined,
): Promise<HandledThread> {
  const { inbox, threadId, lease } = job;
  const resultFile = run.files.resultFile;
  const thread = (await inbox.showThread({ threadId })).thread;
  if (job.leaseLost || thread.state === 'cancelled' || thread.claim_count !== job.claimNumber) return finishClaim(job, run, 'lease_lost', exit);
  if (thread.state === 'done' || thread.state === 'failed') return finishClaim(job, run, 'posted', exit);
  const left = { ...(run.leftPids.length > 0 ? { left_pids: run.leftPids } : {}), ...(pushed ? { git: pushed } : {}) };
  const notPushed =
    pushed && !pushed.pushed
      ? `The attempt branch ${pushed.branch} could not be pushed to ${pushed.remote_url}: ${pushed.why}. Nothing is lost: the work is kept in ${pushed.worktree} on that branch; push it by hand (never with --force), and the leader can still diff and merge this attempt.`
      : undefined;
  try {
    if (job.stopping) {
      await inbox.release({ threadId, lease });
      return finishClaim(job, run, 'released', exit);
    }
    if (exit.code === 0 && !job.timedOut) {
      const file = readResultFile(run.files);
      if (file.kind === 'refused') {
        // Unlinked, not followed: a link or a hard link goes, what it pointed at stays.
        if (sameDir(run.files)) removeAny(resultFile);
        await inbox.postFailure({
          threadId,
          lease,
          body: `The command exited 0, but its result file $INBOX_RESULT_FILE (${resultFile}) ${file.why}; the runner does not read it. Write the result as a regular file there, or print it on stdout.`,
          payload: { runner: 'inbox work', exit_code: 0, signal: null, timed_out: false, result_file: resultFile, ...left },
          role: 'runner',
        });
        return finishClaim(job, run, 'failed', exit);
      }
      if (notPushed !== undefined) {
        await inbox.postFailure({
          threadId,
          lease,
          body: `The command exited 0, but its work did not reach the leader. ${notPushed}`,
          payload: { runner: 'inbox work', exit_code: 0, signal: null, timed_out: false, ...left },
          role: 'runner',
        });
        return finishClaim(job, run, 'failed', exit);
      }
      const out = run.stdout.text();
      const body =
        file.kind === 'unfit'
          ? `The result is in ${resultFile} (${file.size} bytes: ${file.why}).`
          : file.kind === 'text'
            ? file.text
            : out.trim() !== ''
              ? out
              : '(the command exited 0 and printed nothing)';
      const payload = { runner: 'inbox work', exit_code: 0, ...(file.kind === 'unfit' ? { result_file: resultFile, result_bytes: file.size } : {}), ...left };
      await inbox.postResult({ threadId, lease, body, payload, role: 'runner' });
      return finishClaim(job, run, 'done', exit);
    }
    const why = job.timedOut
      ? `timed out after ${job.options.maxSeconds ?? 0} s and was killed`
      : exit.signal
        ? `was killed by ${exit.signal}`
        : `exited with status ${exit.code ?? '?'}`;
    const tail = run.stderr.text().trim();
    await inbox.postFailure({
      threadId,
      lease,
      body: `The command ${why}.${tail ? `\n\nEnd of its stderr:\n${tail}` : ''}${notPushed !== undefined ? `\n\n${notPushed}` : ''}`,
      payload: { runner: 'inbox work', exit_code: exit.code, signal: exit.signal, timed_out: job.timedOut, ...left },
      role: 'runner',
    });
    return finishClaim(job, run, 'failed', exit);
  } catch (err) {
    if (err instanceof LeaseLostError || err instanceof ConflictError) return finishClaim(job, run, 'lease_lost', exit);
    throw err;
  }
}
