// The payload of the task message that opens a thread orch dispatched: the one contract between
// the package that writes it (orch, at dispatch, retry and reassign) and the ones that read it
// (`inbox work`, orch-worker-brief). Both sides import this schema, so renaming a field is a type
// error on the writing side instead of a runner that silently starts a code agent outside its
// worktree.
import { idSchema, parseStoredJson, readTransaction, type Store } from '@orch/store';
import { z } from 'zod';
import { firstMessage } from './queries/messages.ts';
import { MAX_TASK_PAYLOAD_DEPTH, type InboxDatabase } from './schema.ts';

const attemptFields = {
  id: idSchema,
  number: z.number().int().positive(),
};

/**
 * Attempt details: a code attempt names its repository, base and the worktree it must work in. A
 * code attempt dispatched with `--remote`/`--repo-url` (code mode across machines) names the git
 * remote instead: `remote_url` is set, `worktree_path` and `workspace_root` are null (the worker
 * makes its own worktree in its own clone), and `repo_path` is the leader's repository.
 */
export const taskPayloadAttemptSchema = z.discriminatedUnion('execution_mode', [
  z.object({ ...attemptFields, execution_mode: z.literal('analysis') }),
  z.object({
    ...attemptFields,
    execution_mode: z.literal('code'),
    repo_path: z.string().min(1),
    workspace_root: z.string().min(1).nullable(),
    base_ref: z.string().min(1),
    base_commit: z.string().min(1),
    worktree_path: z.string().min(1).nullable(),
    branch: z.string().min(1),
    remote_url: z.string().min(1).optional(),
  }),
]);

/** The worker's prompt, rendered once at dispatch, and the settings it was rendered with. */
export const taskBriefSchema = z.object({
  /** The whole prompt: what orch-worker-brief prints and `inbox work` puts on its command's stdin. */
  text: z.string(),
  /** The absolute database path its commands use. */
  db: z.string(),
  /** How its commands run the inbox CLI. */
  inbox: z.string(),
});

/** The payload orch writes into the first (task) message of every thread it dispatches. */
export const taskPayloadSchema = z.object({
  run: z.object({ id: idSchema, goal: z.string(), summary: z.string().nullable() }),
  task: z.object({
    id: idSchema,
    title: z.string(),
    summary: z.string().nullable(),
    /** The task's acceptance criteria as given (any JSON), or null. */
    acceptance: z.unknown(),
  }),
  attempt: taskPayloadAttemptSchema,
  brief: taskBriefSchema,
});

export type TaskPayload = z.infer<typeof taskPayloadSchema>;
export type TaskPayloadAttempt = z.infer<typeof taskPayloadAttemptSchema>;
export type TaskBrief = z.infer<typeof taskBriefSchema>;

/**
 * Reads a task message's payload. Threads dispatched before briefs were stored lack `brief`; they
 * are still task payloads (with `brief` undefined). Anything else (a thread opened with `inbox
 * send`, whatever its payload) is null.
 */
export function readTaskPayload(payload: unknown): (Omit<TaskPayload, 'brief'> & { brief?: TaskBrief | undefined }) | null {
  const parsed = taskPayloadSchema.partial({ brief: true }).safeParse(payload);
  return parsed.success ? parsed.data : null;
}

/** The first message of a thread (the task), with its payload read by readTaskPayload; undefined for an unknown thread. */
export async function readTaskMessage(store: Store, threadId: string): Promise<{ body: string; payload: ReturnType<typeof readTaskPayload> } | undefined> {
  const row = await readTransaction<InboxDatabase, Awaited<ReturnType<typeof firstMessage>>>(store, (trx) => firstMessage(trx, threadId));
  if (!row) return undefined;
  return { body: row.body, payload: readTaskPayload(row.payload === null ? null : parseStoredJson(row.payload, MAX_TASK_PAYLOAD_DEPTH)) };
}
