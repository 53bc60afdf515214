import { LONG_LIVED_RECONNECT_MS, UsageError, defineCommand, idSchema, type CommandContext } from '@orch/store';
import { z } from 'zod';
import { status, type StatusResult } from '../ops/status.ts';
import { statusText } from '../status-screen.ts';
import { LEAVE_SCREEN, localSource, remoteSource, watchStatus, type WatchResult, type WatchTerminal } from '../status-watch.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'status',
  summary: 'The main operational view: reconcile, then the run, every task, its latest attempt and message',
  description:
    'Folds new worker activity in first (like reconcile), then shows the run, task counts, every task with its state, ' +
    'readiness, latest attempt (and thread, null if it was deleted; merged_into/merge_commit for code) and latest ' +
    "message, unmerged (done code tasks not merged yet, named in unmerged_tasks), and last_event (the run's newest " +
    'event): pass it to `wait --after-event`. ' +
    '--watch keeps following the run: on a terminal it redraws the table in place (an alternate screen, cut to the ' +
    "terminal's width and height, redrawn when it is resized) with a progress line (done / total, running, blocked, " +
    'failed) and the newest events; piped, it prints the table once, then one line per new event. Changes arrive as ' +
    "for `wait` (a commit wakes it; with --db https://... it long-polls the server's wait). It ends when the run is " +
    'done or cancelled (a terminal is left showing the final table) or on SIGINT (Ctrl-C) or SIGTERM, the screen ' +
    'restored, with exit 0 (a second signal ends it at once, exit 130); a closed stdout ends it with exit 7 (a pipe whose reader left is noticed at the next line written, as with tail -f). --watch is for people: with --json it is refused ' +
    '(exit 2); a program follows a run with `wait --after-event` and `status --json`.',
  flags: {
    run: runFlag,
    watch: { type: 'boolean', describe: 'Keep following the run, redrawing as it changes (a terminal) or printing each new event (piped); no --json' },
  },
  examples: ['--db ./coord.db --json status --run blog_mvp_001', '--db ./coord.db status --run blog_mvp_001 --watch'],
  input: z.object({ run: idSchema, watch: z.boolean().optional() }),
  streams: (input: { watch?: boolean }) => input.watch === true,
  run: (ctx, input): Promise<StatusResult | WatchResult> =>
    input.watch ? watch(ctx, input.run) : withRun(ctx, input.run, (orch) => status(orch, { runId: input.run })),
  // A watch wrote its own output (see `streams`).
  text: (r) => ('ended' in r ? '' : statusText(r)),
});

/**
 * `status --watch`: follows the run until it ends or SIGINT/SIGTERM. A second signal while the
 * first is still being handled (a stuck connection) restores the screen and exits at once.
 *
 * @throws UsageError (2) with --json, and where there is no CLI stdout (a server, MCP).
 */
async function watch(ctx: CommandContext, run: string): Promise<WatchResult> {
  if (ctx.json) {
    throw new UsageError(
      '--watch draws for a person and prints no JSON; a program follows a run with `orch --json wait --run RUN --after-event N` (then its last_event) and reads `orch --json status --run RUN`',
    );
  }
  const out = ctx.stdout;
  if (!out) {
    throw new UsageError('--watch runs in a terminal (the orch CLI); over the API follow GET /v1/runs/RUN/events or loop on `wait`, and read `status`');
  }
  const stop = new AbortController();
  const onSignal = () => {
    if (!stop.signal.aborted) return stop.abort();
    if (out.isTTY === true) process.stdout.write(LEAVE_SCREEN);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
  const terminal: WatchTerminal = {
    out,
    tty: out.isTTY === true,
    size: () => ({ columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 }),
    onResize: (listener) => {
      process.stdout.on('resize', listener);
      return () => process.stdout.off('resize', listener);
    },
  };
  const now = () => new Date().toISOString();
  try {
    if (ctx.remote) return await watchStatus(remoteSource(ctx.remote, run, signal), terminal, { signal, now });
    // A watch outlives a PostgreSQL server restart, as `wait` does.
    return await withRun({ ...ctx, signal }, run, (orch) => watchStatus(localSource(orch, run), terminal, { signal, now }), {
      reconnectMs: LONG_LIVED_RECONNECT_MS,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
