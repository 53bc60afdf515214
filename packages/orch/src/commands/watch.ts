import { defineCommand, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { reconcile } from '../ops/reconcile.ts';
import { eventsText, messageText, statusText } from '../render.ts';
import { EVENT_TYPES, type EventType } from '../schema.ts';
import { blocked } from '../ops/blocked.ts';
import { status } from '../ops/status.ts';
import { waitEvents } from '../ops/wait.ts';
import { runFlag, withRun } from './shared.ts';

/** How long `orch wait` waits when no --timeout-seconds is given. */
export const DEFAULT_WAIT_SECONDS = 300;
const MAX_WAIT_SECONDS = 86_400;

export const statusCommand = defineCommand({
  name: 'status',
  summary: 'The main operational view: reconcile, then the run, every task, its latest attempt and message',
  description:
    'Folds new worker activity in first (like reconcile), then shows the run, task counts, every task with its state, ' +
    'readiness, latest attempt (and thread, null if it was deleted; merged_into/merge_commit for code) and latest ' +
    'message, unmerged (done code tasks not merged yet, named in unmerged_tasks), and last_event (the run\'s newest ' +
    'event): pass it to `wait --after-event`.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json status --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => status(orch, { runId: input.run })),
  text: statusText,
});

export const reconcileCommand = defineCommand({
  name: 'reconcile',
  summary: 'Fold new worker activity (claims, progress, questions, results, expired leases) into task state and events',
  description:
    'Idempotent: running it again writes nothing new. status, wait, ready, blocked and the commands that change tasks ' +
    'reconcile by themselves; this command is for doing it explicitly.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json reconcile --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => reconcile(orch, input.run)),
  text: (r) => (r.events_written === 0 ? `run ${r.run}: nothing new` : `run ${r.run}: ${r.events_written} new event(s)`),
});

const typeList = z
  .string()
  .transform((s, ctx) => {
    const types = s.split(',').map((t) => t.trim()).filter((t) => t !== '');
    const unknown = types.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
    if (types.length === 0 || unknown.length > 0) {
      ctx.addIssue({ code: 'custom', message: `${unknown.length > 0 ? `unknown event type ${unknown.join(', ')}; ` : ''}use a comma-separated list of: ${EVENT_TYPES.join(', ')}` });
      return z.NEVER;
    }
    return types as EventType[];
  });

export const waitCommand = defineCommand({
  name: 'wait',
  summary: 'Block until the run has new events of the given types (instead of sleep loops)',
  description:
    'Reconciles, then returns every event of the --for types with a number greater than --after-event, waiting for ' +
    'one if there is none yet. Returns early when the run is done or cancelled. On timeout prints ' +
    '{"events": [], "timed_out": true, ...} with exit 0. last_event is the newest event number examined (every event ' +
    'after --after-event up to it was returned or is not of the --for types): pass it (or status\'s last_event) as ' +
    '--after-event next time; without --after-event only events after the call starts count. An --after-event past the ' +
    'run\'s newest event is refused (exit 2, naming the newest). Cheap while waiting ' +
    '(a commit wakes it through a file watch on the WAL file, backed by polling PRAGMA data_version, never the tables). Event types: ' +
    `${EVENT_TYPES.join(', ')}.`,
  flags: {
    run: runFlag,
    for: { type: 'string', describe: 'Comma-separated event types, e.g. task_blocked,task_done,task_failed (default: all)' },
    'after-event': { type: 'string', describe: "Only events numbered after this, at most the run's newest (default: the newest event when wait starts)" },
    'timeout-seconds': { type: 'string', describe: `Give up after this long (default ${DEFAULT_WAIT_SECONDS}, max ${MAX_WAIT_SECONDS})` },
  },
  examples: ['--db ./coord.db --json wait --run blog_mvp_001 --for task_blocked,task_done,task_failed --after-event 0 --timeout-seconds 900'],
  input: z.object({
    run: idSchema,
    for: typeList.optional(),
    afterEvent: intFlag(0, Number.MAX_SAFE_INTEGER).optional(),
    timeoutSeconds: intFlag(0, MAX_WAIT_SECONDS).default(DEFAULT_WAIT_SECONDS),
  }),
  run: (ctx, input) =>
    withRun(ctx, input.run, (orch) =>
      waitEvents(orch, { runId: input.run, types: input.for, afterEvent: input.afterEvent, timeoutSeconds: input.timeoutSeconds }),
    ),
  text: (r) => {
    if (r.timed_out) return `timed out; no matching events after ${r.last_event} in run ${r.run}`;
    if (r.events.length === 0) return `run ${r.run} is ${r.run_state}; no matching events after ${r.last_event}`;
    return `${eventsText(r.events)}\n\nnext: --after-event ${r.last_event}`;
  },
});

export const blockedCommand = defineCommand({
  name: 'blocked',
  summary: 'List blocked tasks with their pending questions',
  description: 'Reconciles first. Each entry has the task, its blocked attempt, and the question: body, payload, who asked and when. Answer with `answer`.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json blocked --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => blocked(orch, { runId: input.run })),
  text: (r) =>
    r.tasks.length === 0
      ? `no blocked tasks in run ${r.run}`
      : r.tasks
          .map((b) => {
            const q = b.question;
            const head = `${b.task.id} (attempt ${b.attempt.number}, ${b.attempt.assigned_to}, thread ${b.attempt.thread_id}): ${b.task.title}`;
            return q
              ? `${head}\n${messageText({ id: q.message_id, thread_id: b.attempt.thread_id, author: q.asked_by, kind: 'question', body: q.body, payload: q.payload, created_at: q.asked_at }).replace(/^/gm, '  ')}`
              : head;
          })
          .join('\n\n'),
});
