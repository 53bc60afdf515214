import { LONG_LIVED_RECONNECT_MS, defineCommand, idSchema, intFlag, isPostgresUrl, redactLocation, urlPassword } from '@orch/store';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS } from '../leases.ts';
import { work } from '../work.ts';
import { GRACE_SECONDS, OUTPUT_PROGRESS_SECONDS } from '../work-options.ts';
import { remoteBackend, remoteEnv } from '../work-remote.ts';
import { withInbox } from './shared.ts';

export const workInput = z.object({
  agent: idSchema,
  concurrency: intFlag(1, 64).default(1),
  once: z.boolean().optional(),
  idleExitSeconds: intFlag(0, MAX_LEASE_SECONDS).optional(),
  maxSeconds: intFlag(1, 7 * MAX_LEASE_SECONDS).optional(),
  leaseSeconds: intFlag(3, MAX_LEASE_SECONDS).optional(),
  graceSeconds: intFlag(0, 3600).optional(),
  workDir: z.string().min(1, 'must not be empty').optional(),
  repo: z.string().min(1, 'must not be empty').optional(),
  command: z
    .array(z.string().refine((s) => !s.includes('\u0000'), 'must not contain NUL characters'))
    .min(1, 'give the command to run after --, e.g. `-- claude -p`'),
});

export const command = defineCommand({
  name: 'work',
  summary: 'Run a command for each thread assigned to an agent, as a supervised subprocess',
  rest: { key: 'command', usage: 'COMMAND [ARG...]' },
  description:
    'Claims threads assigned to --agent (waiting cheaply when there are none), up to --concurrency at a time, and for ' +
    "each runs COMMAND without a shell: in the attempt's git worktree for code mode, else in a scratch directory " +
    '(<work-dir>/<agent>/<thread>/<claim number>/scratch, fresh for every claim; removed once the thread is finished, while the ' +
    "claim's output.log is kept until you delete it). The work " +
    'directory is created owner-only (0700); one that belongs to someone else or that group or others may write to is ' +
    'refused (exit 2) before anything is claimed, and no link inside it is followed. The command gets a brief on stdin (the task as the leader wrote it and how ' +
    'to report) and in its environment INBOX_DB, INBOX_BIN (this inbox CLI), INBOX_AGENT, INBOX_THREAD_ID, INBOX_LEASE, ' +
    'INBOX_RUN, INBOX_TASK, INBOX_ATTEMPT (id), INBOX_ATTEMPT_NUMBER, INBOX_WORKTREE, INBOX_WORK_DIR, INBOX_RESULT_FILE and INBOX_LOG_FILE, so it ' +
    'can post progress, ask and wait itself. The runner heartbeats the lease (every third of --lease-seconds) while ' +
    'the command runs, also while it waits for an answer; logs stdout and stderr to <work-dir>/<agent>/<thread>/<claim>/output.log ' +
    `(posted as progress) and posts the last output line as progress at most every ${OUTPUT_PROGRESS_SECONDS} s. ` +
    'When the command exits its output drains for half a second, then the runner stops reading it and background jobs ' +
    'left in its process group get SIGTERM; processes it left running elsewhere (a daemon in a session of its own) are ' +
    'not stopped but listed (left_pids). ' +
    'Outcome: a result or failure the command posted itself stands; otherwise exit 0 posts the result (the file ' +
    '$INBOX_RESULT_FILE if written, else the end of stdout with NUL shown as U+FFFD; a file over 1 MiB or holding NUL is named, not ' +
    "copied; a result file that is not a regular file of the runner's user with one link - a directory, FIFO, device or link - is " +
    'never read, and fails the thread naming it) and anything else posts a failure with the exit status ' +
    "and the end of stderr. --max-seconds kills the command's whole process group and fails the thread. If the " +
    'thread is cancelled, reassigned, or claimed again after its lease ran out (a paused runner, a clock jump), the ' +
    'command is stopped within about a second and nothing is posted. ' +
    `On SIGINT or SIGTERM: no new claims; commands get SIGTERM, then SIGKILL after --grace-seconds (default ${GRACE_SECONDS}); a ` +
    'second SIGINT or SIGTERM sends SIGKILL at once; either way their threads are released (open again for the next ' +
    'claim; a blocked one stays blocked, its question pending); then it exits 0. If the runner is killed outright, its leases ' +
    'run out and the threads become claimable again. ' +
    'Code mode across machines (an attempt the leader dispatched with --remote or --repo-url): --repo PATH names your ' +
    "clone of the run's repository; the runner fetches the attempt branch from the remote the attempt names, makes its " +
    'worktree at PATH/.orch/worktrees/<run>/<task>/<attempt> (git told to ignore it; kept, and reused by a later claim), ' +
    'runs COMMAND there, and when it exits pushes the branch back (never forced, and only while it still holds the lease) ' +
    'before posting the outcome; a push git refuses turns a result into a failure that says where the work is kept. Such ' +
    'an attempt fails at once, saying why, without --repo, when the remote cannot be reached or lacks the branch, or when ' +
    'PATH shares no history with it. --repo does not change other attempts (a worktree on this machine is used as it is). Exit 0, or 4 when a thread it handled ended failed (whoever ' +
    'posted the failure) or lost its lease.',
  flags: {
    agent: { type: 'string', describe: 'The agent whose threads to work on', required: true },
    concurrency: { type: 'string', describe: 'Threads at the same time (default 1, max 64)' },
    once: { type: 'boolean', describe: 'Handle one thread (or none, if nothing is claimable) and exit' },
    'idle-exit-seconds': { type: 'string', describe: 'Exit after this long with nothing to do (default: keep waiting)' },
    'max-seconds': { type: 'string', describe: 'Kill a command running longer than this and fail its thread' },
    'lease-seconds': { type: 'string', describe: `Lease length (default ${DEFAULT_LEASE_SECONDS}); the runner heartbeats at a third of it` },
    'work-dir': {
      type: 'string',
      describe:
        'Where logs and scratch directories go (default: .inbox-work beside the database file; for a PostgreSQL URL, in the current directory); must be yours and not writable by others',
    },
    repo: {
      type: 'string',
      describe: "Your clone of the run's repository, for attempts dispatched across machines (orch dispatch --remote); checked before claiming",
    },
    'grace-seconds': { type: 'string', describe: `Between SIGTERM and SIGKILL when stopping or timing out a command (default ${GRACE_SECONDS}, max 3600)` },
  },
  examples: [
    '--db ./coord.db work --agent qa-worker --once -- claude -p --permission-mode acceptEdits',
    '--db ./coord.db work --agent backend-worker --concurrency 2 --idle-exit-seconds 600 -- codex exec --full-auto -',
    '--db ./coord.db --json work --agent script-worker --max-seconds 300 -- ./scripts/do-task.sh',
    '--db ./coord.db work --agent ci-worker --repo ~/src/project --once -- claude -p --permission-mode acceptEdits',
  ],
  input: workInput,
  run: (ctx, input) => {
    // The agents get the database's location; a PostgreSQL URL's password travels as PGPASSWORD,
    // never in INBOX_DB (which agents print and log).
    // An `orch serve` URL (ctx.remote): the agents get the URL, and the token as ORCH_TOKEN.
    const remote = ctx.remote;
    const onServer = isPostgresUrl(ctx.dbPath) || remote !== undefined;
    const dbPath = remote ? remote.display : onServer ? redactLocation(ctx.dbPath) : path.resolve(ctx.cwd, ctx.dbPath);
    const defaultWorkDir = onServer ? path.join(ctx.cwd, '.inbox-work') : path.join(path.dirname(dbPath), '.inbox-work');
    const controller = new AbortController();
    const hurry = new AbortController();
    // The first signal stops gracefully; the next one ends the grace period. Neither kills the
    // runner itself: it always releases what it holds before exiting.
    const stop = () => (controller.signal.aborted ? hurry.abort() : controller.abort());
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const log = (line: string) => process.stderr.write(`inbox work: ${line}\n`);
    const run = (inbox: Parameters<typeof work>[0]) =>
      work(inbox, {
        agent: input.agent,
        // A program given as a path (./agent.sh) is found from here, not from the command's working directory.
        command: [resolveProgram(ctx.cwd, input.command[0] ?? ''), ...input.command.slice(1)],
        concurrency: input.concurrency,
        once: input.once === true,
        idleExitSeconds: input.idleExitSeconds,
        maxSeconds: input.maxSeconds,
        leaseSeconds: input.leaseSeconds,
        graceSeconds: input.graceSeconds,
        dbPath,
        inboxBin: path.resolve(process.argv[1] ?? 'inbox'),
        workDir: path.resolve(ctx.cwd, input.workDir ?? defaultWorkDir),
        ...(input.repo !== undefined ? { repo: path.resolve(ctx.cwd, input.repo) } : {}),
        ...(onServer && !remote ? { dbPassword: urlPassword(ctx.dbPath) } : {}),
        ...(remote ? { env: remoteEnv(remote) } : {}),
        signal: controller.signal,
        hurry: hurry.signal,
        log,
      });
    if (remote) {
      return run(remoteBackend(remote, { leaseSeconds: input.leaseSeconds ?? DEFAULT_LEASE_SECONDS, log })).finally(() => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      });
    }
    return withInbox(
      ctx,
      run,
      // Jobs heartbeat and watch their leases while the runner claims: a few connections on
      // PostgreSQL; and the runner outlives a server restart (see LONG_LIVED_RECONNECT_MS).
      { poolSize: input.concurrency + 2, reconnectMs: LONG_LIVED_RECONNECT_MS },
    ).finally(() => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    });
  },
  text: (r) =>
    [
      ...r.handled.flatMap((h) => [
        `${h.thread_id}  ${h.outcome}${h.exit_code !== null ? ` (exit ${h.exit_code})` : h.signal ? ` (${h.signal})` : ''}  log ${h.log_file}`,
        ...(h.left_pids.length > 0 ? [`  left running: ${h.left_pids.join(', ')} (the runner did not stop them)`] : []),
      ]),
      `${r.handled.length} thread(s) handled; stopped: ${r.stopped}`,
    ].join('\n'),
  exitCode: (r) => (r.handled.some((h) => h.outcome === 'failed' || h.outcome === 'lease_lost' || h.thread_state === 'failed') ? 4 : 0),
});

function resolveProgram(cwd: string, program: string): string {
  return program.includes('/') || program.includes(path.sep) ? path.resolve(cwd, program) : program;
}
