import { NoOrchTablesError, attemptBrief, openOrch, renderWorkerBrief, type AttemptBrief } from '@orch/orch';
import { ConflictError, NotFoundError, ValidationError, absoluteLocation, idSchema, isPostgresUrl, type Clock } from '@orch/store';
import { z } from 'zod';

export { shellQuote } from '@orch/orch';

/** The parts of a saved `orch dispatch --json` output the brief needs (extra fields are ignored). */
export const dispatchJsonSchema = z.object({
  run: z.object({ id: idSchema }),
  task: z.object({ id: idSchema }),
  attempt: z.object({
    id: idSchema,
    number: z.number().int().positive(),
    thread_id: idSchema,
    assigned_to: idSchema,
    execution_mode: z.enum(['analysis', 'code']),
  }),
});

export interface BriefInput {
  /** The dispatch output, parsed but not yet validated. */
  dispatch: unknown;
  /** The database to read: a file (made absolute) or a PostgreSQL URL (its password never shown). */
  dbPath: string;
  /**
   * How the worker runs the inbox CLI. Default: as in the brief stored at dispatch. Another value
   * renders that brief again with this command in every command line.
   */
  inbox?: string | undefined;
  /** For an attempt dispatched before briefs were stored: how its brief runs the inbox CLI. */
  defaultInbox?: string | undefined;
  clock?: Clock;
  nativeBinding?: string;
}

export interface BriefResult {
  worker: string;
  run: string;
  task: string;
  attempt: string;
  thread_id: string;
  execution_mode: 'analysis' | 'code';
  worktree_path: string | null;
  db: string;
  inbox: string;
  /** The prompt to give the worker. */
  brief: string;
}

/**
 * The worker's prompt for a saved dispatch result: the brief orch rendered into the attempt's task
 * message at dispatch (the text `inbox work` hands its command), or that brief rendered again with
 * another `inbox` command. The database is the source of truth; the dispatch JSON only names the
 * attempt, and must agree with the database. The same input always gives the same text.
 *
 * @throws ValidationError (2) for a dispatch JSON missing fields; NotFoundError (3) when the
 *   database has no such attempt; ConflictError (4) when the JSON and the database disagree.
 */
export async function renderBrief(input: BriefInput): Promise<BriefResult> {
  const parsed = dispatchJsonSchema.safeParse(input.dispatch);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(document)', message: i.message }));
    throw new ValidationError(
      `--dispatch-json is not the output of \`orch --json dispatch\`: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      problems,
    );
  }
  const want = parsed.data;
  // What messages and the brief name: the absolute file, or the URL without its password.
  const db = absoluteLocation(input.dbPath);
  let found: AttemptBrief;
  try {
    const orch = await openOrch({
      path: isPostgresUrl(input.dbPath) ? input.dbPath : db,
      createTables: false,
      ...(input.clock ? { clock: input.clock } : {}),
      ...(input.nativeBinding ? { nativeBinding: input.nativeBinding } : {}),
    });
    try {
      found = await attemptBrief(orch, { attemptId: want.attempt.id });
    } finally {
      await orch.close();
    }
  } catch (err) {
    if (err instanceof NoOrchTablesError) throw new NotFoundError(`no attempt ${want.attempt.id} in ${db} (it has no runs)`, { attempt: want.attempt.id });
    throw err;
  }
  const a = found.attempt;
  const mismatch = (
    [
      ['run.id', want.run.id, found.run.id],
      ['task.id', want.task.id, found.task.id],
      ['attempt.thread_id', want.attempt.thread_id, a.thread_id],
      ['attempt.number', want.attempt.number, a.number],
      ['attempt.assigned_to', want.attempt.assigned_to, a.assigned_to],
      ['attempt.execution_mode', want.attempt.execution_mode, a.execution_mode],
    ] as const
  ).filter(([, x, y]) => x !== y);
  if (mismatch.length > 0) {
    throw new ConflictError(
      `the dispatch JSON does not match attempt ${a.id} in ${db}: ${mismatch.map(([k, x, y]) => `${k} is ${String(x)} there but ${String(y)} in the database`).join('; ')}`,
      { mismatches: mismatch.map(([field, json, database]) => ({ field, json, database })) },
    );
  }
  const stored = found.stored;
  const inbox = input.inbox ?? stored?.inbox ?? input.defaultInbox ?? 'inbox';
  const settings = { db: stored?.db ?? db, inbox };
  const brief = stored !== null && stored.inbox === inbox ? stored.text : renderWorkerBrief({ ...found.source, settings });
  return {
    worker: a.assigned_to,
    run: found.run.id,
    task: found.task.id,
    attempt: a.id,
    thread_id: a.thread_id,
    execution_mode: a.execution_mode,
    worktree_path: a.worktree_path,
    db: settings.db,
    inbox,
    brief,
  };
}
