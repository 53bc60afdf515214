import { defineCommand, idSchema, intFlag } from '@orch/store';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS } from '../leases.ts';
import { GRACE_SECONDS, OUTPUT_PROGRESS_SECONDS, work } from '../work.ts';
import { withInbox } from './shared.ts';

export const workInput = z.object({
  agent: idSchema,
  concurrency: intFlag(1, 64).default(1),
  once: z.boolean().optional(),
  idleExitSeconds: intFlag(0, MAX_LEASE_SECONDS).optional(),
  maxSeconds: intFlag(1, 7 * MAX_LEASE_SECONDS).optional(),
  leaseSeconds: intFlag(3, MAX_LEASE_SECONDS).optional(),
  workDir: z.string().min(1, 'must not be empty').optional(),
  command: z.array(z.string().refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')).min(1, 'give the command to run after --, e.g. `-- claude -p`'),
});

export const workCommand = defineCommand({
  name: 'work',
  summary: 'Run a command for each thread assigned to an agent, as a supervised subprocess',
  rest: { key: 'command', usage: 'COMMAND [ARG...]' },
  description:
    'Claims threads assigned to --agent (waiting cheaply when there are none), up to --concurrency at a time, and for ' +
    'each runs COMMAND without a shell: in the attempt\'s git worktree for code mode, else in a scratch directory ' +
    '(<work-dir>/<agent>/<thread>/scratch). The command gets a brief on stdin (the task as the leader wrote it and how ' +
    'to report) and in its environment INBOX_DB, INBOX_BIN (this inbox CLI), INBOX_AGENT, INBOX_THREAD_ID, INBOX_LEASE, ' +
    'INBOX_RUN, INBOX_TASK, INBOX_ATTEMPT (id), INBOX_ATTEMPT_NUMBER, INBOX_WORKTREE, INBOX_WORK_DIR, INBOX_RESULT_FILE and INBOX_LOG_FILE, so it ' +
    'can post progress, ask and wait itself. The runner heartbeats the lease (every third of --lease-seconds) while ' +
    'the command runs, also while it waits for an answer; logs stdout and stderr to <work-dir>/<agent>/<thread>/output.log ' +
    `(posted as progress) and posts the last output line as progress at most every ${OUTPUT_PROGRESS_SECONDS} s. ` +
    'When the command exits, background jobs it left in its process group get SIGTERM. ' +
    'Outcome: a result or failure the command posted itself stands; otherwise exit 0 posts the result (the file ' +
    '$INBOX_RESULT_FILE if written, else the end of stdout; a file over 1 MiB is named, not copied) and anything else posts a failure with the exit status ' +
    'and the end of stderr. --max-seconds kills the command\'s whole process group and fails the thread. If the ' +
    'thread is cancelled or reassigned, the command is stopped within about a second and nothing is posted. ' +
    `On SIGINT or SIGTERM: no new claims; commands get SIGTERM, then SIGKILL after ${GRACE_SECONDS} s; their threads ` +
    'are released (open again for the next claim; a blocked one stays blocked, its question pending); then it exits 0. ' +
    'If the runner is killed outright, its leases ' +
    'run out and the threads become claimable again. Exit 0, or 4 when a thread it handled ended failed (whoever ' +
    'posted the failure) or lost its lease.',
  flags: {
    agent: { type: 'string', describe: 'The agent whose threads to work on', required: true },
    concurrency: { type: 'string', describe: 'Threads at the same time (default 1, max 64)' },
    once: { type: 'boolean', describe: 'Handle one thread (or none, if nothing is claimable) and exit' },
    'idle-exit-seconds': { type: 'string', describe: 'Exit after this long with nothing to do (default: keep waiting)' },
    'max-seconds': { type: 'string', describe: 'Kill a command running longer than this and fail its thread' },
    'lease-seconds': { type: 'string', describe: `Lease length (default ${DEFAULT_LEASE_SECONDS}); the runner heartbeats at a third of it` },
    'work-dir': { type: 'string', describe: 'Where logs and scratch directories go (default: .inbox-work beside the database)' },
  },
  examples: [
    '--db ./coord.db work --agent qa-worker --once -- claude -p --permission-mode acceptEdits',
    '--db ./coord.db work --agent backend-worker --concurrency 2 --idle-exit-seconds 600 -- codex exec --full-auto -',
    '--db ./coord.db --json work --agent script-worker --max-seconds 300 -- ./scripts/do-task.sh',
  ],
  input: workInput,
  run: (ctx, input) => {
    const dbPath = path.resolve(ctx.cwd, ctx.dbPath);
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return withInbox(ctx, (inbox) =>
      work(inbox, {
        agent: input.agent,
        // A program given as a path (./agent.sh) is found from here, not from the command's working directory.
        command: [resolveProgram(ctx.cwd, input.command[0] ?? ''), ...input.command.slice(1)],
        concurrency: input.concurrency,
        once: input.once === true,
        idleExitSeconds: input.idleExitSeconds,
        maxSeconds: input.maxSeconds,
        leaseSeconds: input.leaseSeconds,
        dbPath,
        inboxBin: path.resolve(process.argv[1] ?? 'inbox'),
        workDir: path.resolve(ctx.cwd, input.workDir ?? path.join(path.dirname(dbPath), '.inbox-work')),
        signal: controller.signal,
        log: (line) => process.stderr.write(`inbox work: ${line}\n`),
      }),
    ).finally(() => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    });
  },
  text: (r) =>
    [
      ...r.handled.map((h) => `${h.thread_id}  ${h.outcome}${h.exit_code !== null ? ` (exit ${h.exit_code})` : h.signal ? ` (${h.signal})` : ''}  log ${h.log_file}`),
      `${r.handled.length} thread(s) handled; stopped: ${r.stopped}`,
    ].join('\n'),
  exitCode: (r) => (r.handled.some((h) => h.outcome === 'failed' || h.outcome === 'lease_lost' || h.thread_state === 'failed') ? 4 : 0),
});

function resolveProgram(cwd: string, program: string): string {
  return program.includes('/') || program.includes(path.sep) ? path.resolve(cwd, program) : program;
}
