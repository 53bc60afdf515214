import { DEFAULT_LEASE_SECONDS } from '@orch/inbox';
import { NoOrchTablesError, openOrch, showAttempt, type DispatchResult } from '@orch/orch';
import { ConflictError, NotFoundError, ValidationError, idSchema, type Clock } from '@orch/store';
import path from 'node:path';
import { z } from 'zod';

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
  /** Database path, as the worker should pass it (made absolute). */
  dbPath: string;
  /** How the worker runs the inbox CLI (a path to the bundled executable, or `inbox`). */
  inbox: string;
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
 * Renders the worker's prompt for a saved dispatch result. The database is the source of truth
 * (goal, task, acceptance, body, worktree); the dispatch JSON only names the attempt, and must
 * agree with the database. The same input always renders the same text.
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
  const db = path.resolve(input.dbPath);
  let found: DispatchResult;
  try {
    const orch = await openOrch({
      path: db,
      createTables: false,
      ...(input.clock ? { clock: input.clock } : {}),
      ...(input.nativeBinding ? { nativeBinding: input.nativeBinding } : {}),
    });
    try {
      found = await showAttempt(orch, { attemptId: want.attempt.id });
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
  return {
    worker: a.assigned_to,
    run: found.run.id,
    task: found.task.id,
    attempt: a.id,
    thread_id: a.thread_id,
    execution_mode: a.execution_mode,
    worktree_path: a.worktree_path,
    db,
    inbox: input.inbox,
    brief: briefText(found, db, input.inbox),
  };
}

/** Quotes a value for a POSIX shell command line, only when it needs it. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

function briefText(d: DispatchResult, db: string, inbox: string): string {
  const { run, task, attempt: a } = d;
  const thread = a.thread_id;
  const agent = a.assigned_to;
  const cli = `${shellQuote(inbox)} --db ${shellQuote(db)} --json`;
  const acceptance = task.acceptance === null ? 'None given: use the instructions above.' : JSON.stringify(task.acceptance, null, 2);
  const where =
    a.execution_mode === 'code'
      ? [
          `This is a code task. Work only in your own git worktree:`,
          ``,
          `    cd ${shellQuote(a.worktree_path ?? '(missing worktree path)')}`,
          ``,
          `It is checked out on branch ${a.branch ?? '?'}, created for this attempt from ${a.base_ref ?? '?'} at commit ${a.base_commit ?? '?'}.`,
          `Commit your work on that branch, in that directory. Do not switch branches, and do not touch the main`,
          `checkout or other worktrees. Only committed work counts: the leader reviews and merges your branch`,
          `(\`orch diff\`, \`orch merge\`); uncommitted changes are left behind. Keep your report file outside`,
          `the worktree (step 4 names one), where it would be an uncommitted change.`,
        ]
      : [
          `This is an analysis task: read, run and investigate as needed, but change no repository.`,
          `Your findings go in your result.`,
        ];
  const lines = [
    `You are ${agent}, a worker on run ${run.id}.`,
    ``,
    `# The run`,
    `Goal: ${run.goal}`,
    ...(run.summary ? [run.summary] : []),
    ``,
    `# Your task: ${task.id} (attempt ${a.number})`,
    task.title,
    ...(task.summary ? ['', task.summary] : []),
    ``,
    `## Instructions from the leader`,
    a.body.trimEnd(),
    ``,
    `## Acceptance criteria`,
    acceptance,
    ``,
    `## Where to work`,
    ...where,
    ``,
    `# Reporting through the inbox`,
    `Your thread is ${thread}. Use exactly these commands (they print JSON):`,
    ``,
    `1. Claim the thread, once, before you start. Keep the lease token it returns ("lease": {"token": ...}):`,
    `    ${cli} claim --agent ${agent} --thread ${thread}`,
    `   If it answers {"claimed": false}, another worker holds it: stop.`,
    ``,
    `2. Post progress as you go; it also keeps your lease alive (${DEFAULT_LEASE_SECONDS / 60} minutes unless you claimed with --lease-seconds):`,
    `    ${cli} progress --thread ${thread} --lease LEASE --body "what is done, what is next"`,
    `   During long silent stretches, renew the lease instead:`,
    `    ${cli} heartbeat --thread ${thread} --lease LEASE`,
    ``,
    `3. If only the leader can unblock you, ask, then wait for the answer (note the question's message id):`,
    `    ${cli} ask --thread ${thread} --lease LEASE --body "your question, with the options you see"`,
    `    ${cli} wait --thread ${thread} --lease LEASE --after-message QUESTION_ID --timeout-seconds 900`,
    `   wait keeps the lease alive; if it times out ({"timed_out": true}), run it again.`,
    ``,
    `4. When the work is done, post the result as your last step (a report file is easiest):`,
    `    ${cli} result --thread ${thread} --lease LEASE --body-file ${shellQuote(a.execution_mode === 'code' ? `${a.worktree_path ?? a.id}.report.md` : 'report.md')}`,
    ``,
    `5. If you cannot do the task, say why instead:`,
    `    ${cli} fail --thread ${thread} --lease LEASE --body "what blocked you"`,
    ``,
    `# Rules`,
    `- Exit code 5 (lease lost) means the task was cancelled, reassigned, or your lease ran out: stop working on it.`,
    `- Exit code 4 on result or fail means the thread is already finished: do not post again.`,
    `- Values that start with "-" must be attached: --body="- item". Bodies and payloads are at most 1 MiB.`,
    `- Write only to your own thread (${thread}).`,
  ];
  return `${lines.join('\n')}\n`;
}
