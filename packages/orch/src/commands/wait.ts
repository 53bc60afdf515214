import { LONG_LIVED_RECONNECT_MS, defineCommand, formatTable, idSchema, intFlag } from '@orch/store';
import { z } from 'zod';
import { waitEvents } from '../ops/wait.ts';
import { EVENT_TYPES, type EventType } from '../schema.ts';
import { eventDetail } from '../status-screen.ts';
import type { EventView } from '../views.ts';
import { runFlag, withRun } from './shared.ts';

/** How long `orch wait` waits when no --timeout-seconds is given. */
export const DEFAULT_WAIT_SECONDS = 300;
const MAX_WAIT_SECONDS = 86_400;

const typeList = z.string().transform((s, ctx) => {
  const types = s
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const unknown = types.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (types.length === 0 || unknown.length > 0) {
    ctx.addIssue({
      code: 'custom',
      message: `${unknown.length > 0 ? `unknown event type ${unknown.join(', ')}; ` : ''}use a comma-separated list of: ${EVENT_TYPES.join(', ')}`,
    });
    return z.NEVER;
  }
  return types as EventType[];
});

export const command = defineCommand({
  name: 'wait',
  summary: 'Block until the run has new events of the given types (instead of sleep loops)',
  description:
    'Reconciles, then returns every event of the --for types with a number greater than --after-event, waiting for ' +
    'one if there is none yet. Returns early when the run is done or cancelled. On timeout prints ' +
    '{"events": [], "timed_out": true, ...} with exit 0. last_event is the newest event number examined (every event ' +
    "after --after-event up to it was returned or is not of the --for types): pass it (or status's last_event) as " +
    '--after-event next time; without --after-event only events after the call starts count. An --after-event past the ' +
    "run's newest event is refused (exit 2, naming the newest). Cheap while waiting " +
    '(a commit wakes it: on SQLite through a file watch on the WAL file, backed by polling PRAGMA data_version; on PostgreSQL ' +
    'through LISTEN/NOTIFY, backed by polling; never by reading the tables). Event types: ' +
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
    withRun(
      ctx,
      input.run,
      (orch) => waitEvents(orch, { runId: input.run, types: input.for, afterEvent: input.afterEvent, timeoutSeconds: input.timeoutSeconds }),
      // A wait outlives a PostgreSQL server restart (see LONG_LIVED_RECONNECT_MS).
      { reconnectMs: LONG_LIVED_RECONNECT_MS },
    ),
  text: (r) => {
    if (r.timed_out) return `timed out; no matching events after ${r.last_event} in run ${r.run}`;
    if (r.events.length === 0) return `run ${r.run} is ${r.run_state}; no matching events after ${r.last_event}`;
    return `${eventsText(r.events)}\n\nnext: --after-event ${r.last_event}`;
  },
});

function eventsText(events: EventView[]): string {
  return formatTable([['EVENT', 'TYPE', 'TASK', 'TIME', 'DETAIL'], ...events.map((e) => [String(e.seq), e.type, e.task ?? '-', e.created_at, eventDetail(e)])]);
}
