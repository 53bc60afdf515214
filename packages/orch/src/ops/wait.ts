import { ValidationError, commitOutcomeUnknown, readTransaction, waitForChange } from '@orch/store';
import type { Orch } from '../orch.ts';
import { lastEventSeq, listEvents } from '../queries/events.ts';
import { getRun } from '../queries/runs.ts';
import type { EventType, OrchDatabase, RunState } from '../schema.ts';
import { eventView, type EventView } from '../views.ts';
import { reconcile } from './reconcile.ts';
import { requireRun } from './runs.ts';

export interface WaitInput {
  runId: string;
  /** Default: every type. */
  types?: readonly EventType[] | undefined;
  /** Default: the run's newest event when the call starts (only new events count). At most that event. */
  afterEvent?: number | undefined;
  timeoutSeconds: number;
}

export interface WaitResult {
  run: string;
  events: EventView[];
  timed_out: boolean;
  /**
   * The newest event number this wait examined: every event up to it was either returned or did
   * not match `types`. Pass it as `--after-event` next time (as `status`'s `last_event`).
   */
  last_event: number;
  run_state: RunState;
}

/** How often a waiting `orch wait` reconciles without a commit (to see leases run out). */
export const WAIT_RECHECK_MS = 5000;

/** Most events one wait returns; the rest come with the next call from `last_event`. */
const WAIT_LIMIT = 500;

/**
 * `orch wait`: reconciles and blocks until the run has events of the given types after the cursor,
 * the run is no longer active (done or cancelled), or the timeout passes (timed_out: true, exit 0).
 * Cheap: re-checks when another connection commits (a file watch on the WAL, backed by
 * `PRAGMA data_version`) and every WAIT_RECHECK_MS for leases running out.
 *
 * @throws NotFoundError (3); ValidationError (2) for an `afterEvent` past the run's newest event
 *   (no event could ever be numbered after it, so the wait would never end), before writing anything.
 */
export async function waitEvents(orch: Orch, input: WaitInput): Promise<WaitResult> {
  const start = await readTransaction<OrchDatabase, number>(orch.store, async (trx) => {
    const run = await requireRun(trx, input.runId);
    const newest = await lastEventSeq(trx, run.id);
    if (input.afterEvent !== undefined && input.afterEvent > newest) {
      throw new ValidationError(
        `--after-event ${input.afterEvent} is past the newest event of run ${run.id}, which is ${newest}; pass a last_event that status or wait printed`,
        [{ path: '--after-event', message: `must be at most ${newest}, the run's newest event` }],
      );
    }
    return input.afterEvent ?? newest;
  });
  let examined = start;
  const check = async (): Promise<WaitResult | undefined> => {
    try {
      await reconcile(orch, input.runId);
    } catch (err) {
      // A reconcile folds from a cursor, so one whose commit was cut off (a server restarting) is
      // simply done again by the next look; anything else ends the wait.
      if (!commitOutcomeUnknown(err)) throw err;
    }
    return readTransaction<OrchDatabase, WaitResult | undefined>(orch.store, async (trx) => {
      const rows = await listEvents(trx, { runId: input.runId, afterSeq: start, types: input.types, limit: WAIT_LIMIT });
      // A full page stops at its last event; otherwise every event up to the newest was looked at.
      examined = Math.max(start, rows.length === WAIT_LIMIT ? (rows.at(-1)?.seq ?? start) : await lastEventSeq(trx, input.runId));
      const run = await getRun(trx, input.runId);
      const runState = run?.state ?? 'cancelled';
      if (rows.length === 0 && runState === 'active') return undefined;
      return { run: input.runId, events: rows.map(eventView), timed_out: false, last_event: examined, run_state: runState };
    });
  };
  // Commits wake it at once; the timed re-check (a full reconcile) only catches leases that ran
  // out with no commit, so every few seconds is enough and keeps an idle wait cheap.
  const found = await waitForChange(orch.store, check, {
    timeoutMs: input.timeoutSeconds * 1000,
    clock: orch.clock,
    recheckMs: WAIT_RECHECK_MS,
    signal: orch.signal,
  });
  return found ?? { run: input.runId, events: [], timed_out: true, last_event: examined, run_state: 'active' };
}
