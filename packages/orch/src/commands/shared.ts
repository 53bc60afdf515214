// What several command modules share: opening the database, the common flags, and the CLI options
// and input schema of the commands that make a new attempt (dispatch, retry, reassign).
import { bodyFields, resolveBody } from '@orch/inbox';
import { NotFoundError, idSchema, isPostgresUrl, redactLocation, type CommandContext, type FlagSpec } from '@orch/store';
import path from 'node:path';
import { z } from 'zod';
import type { BriefSettings } from '../brief.ts';
import { NoOrchTablesError, attachOrch, openOrch, type Orch } from '../orch.ts';

export interface WithOrchOptions<T> {
  /** Create the orch tables if the database has none yet (only `run init`). */
  createTables?: boolean;
  /** The answer when the database has no orch tables (so no runs); default: run `run` not found. */
  whenEmpty?: () => T;
  /** The run the command is about, for the not-found message. */
  run?: string;
  /** PostgreSQL: how long a lost connection is tried again (long-lived commands: LONG_LIVED_RECONNECT_MS). */
  reconnectMs?: number;
}

/**
 * Opens the orchestration database named by `--db`, runs `fn`, and always closes it. Only `run
 * init` creates the orch tables: any other command on a database without them answers as for a
 * database without runs, writing nothing.
 */
export async function withOrch<T>(ctx: CommandContext, fn: (orch: Orch) => Promise<T>, options: WithOrchOptions<T> = {}): Promise<T> {
  let orch: Orch;
  // A host's shared store (ctx.store) is used as it is, and left open.
  const shared = ctx.store;
  try {
    orch = shared
      ? await attachOrch(shared, {
          clock: ctx.clock,
          ids: ctx.ids,
          createTables: options.createTables ?? false,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
          ...(ctx.author !== undefined ? { author: ctx.author } : {}),
        })
      : await openOrch({
          path: ctx.dbPath,
          clock: ctx.clock,
          ids: ctx.ids,
          createTables: options.createTables ?? false,
          ...(ctx.signal ? { signal: ctx.signal } : {}),
          ...(ctx.author !== undefined ? { author: ctx.author } : {}),
          ...(options.reconnectMs || ctx.reconnectMs ? { reconnectMs: Math.max(options.reconnectMs ?? 0, ctx.reconnectMs ?? 0) } : {}),
          ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}),
        });
  } catch (err) {
    if (!(err instanceof NoOrchTablesError)) throw err;
    if (options.whenEmpty) return options.whenEmpty();
    throw new NotFoundError(options.run !== undefined ? `no run ${options.run} (${err.message})` : err.message, { run: options.run ?? null });
  }
  try {
    return await fn(orch);
  } finally {
    if (!shared) await orch.close();
  }
}

export const runFlag: FlagSpec = { type: 'string', describe: 'Run id (from run init)', required: true };
export const taskFlag: FlagSpec = { type: 'string', describe: 'Task id (from task add)', required: true };
export const runField = { run: idSchema };

/** withOrch for a command about one run. */
export function withRun<T>(ctx: CommandContext, run: string, fn: (orch: Orch) => Promise<T>, options: { reconnectMs?: number } = {}): Promise<T> {
  return withOrch(ctx, fn, { run, ...options });
}

export const attemptFlag = { type: 'string' as const, describe: "Attempt id (default: the task's latest attempt)" };

/** What the CLI knows that the library cannot: how the workers it briefs should run the inbox CLI. */
export interface DispatchCommandOptions {
  /** Written into every brief (see defaultWorkerInbox). */
  workerInbox: string;
}

/**
 * The brief's settings for a command: the --db path made absolute (a PostgreSQL URL as given, without
 * its password: the worker brings its own credentials, PGPASSWORD or ~/.pgpass), and the CLI's worker inbox.
 */
export function briefSettings(ctx: CommandContext, options: DispatchCommandOptions): BriefSettings {
  if (ctx.publicDb !== undefined) return { db: ctx.publicDb, inbox: options.workerInbox };
  return { db: isPostgresUrl(ctx.dbPath) ? redactLocation(ctx.dbPath) : path.resolve(ctx.cwd, ctx.dbPath), inbox: options.workerInbox };
}

/** The input of retry and reassign: the body, agent and base ref default to the previous attempt's. */
export const optionalBody = z
  .object({ run: idSchema, task: idSchema, to: idSchema.optional(), ...bodyFields, baseRef: z.string().min(1, 'must not be empty').optional() })
  .superRefine((v, ctx) => {
    if (v.body !== undefined && v.bodyFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['body'], message: 'give either --body or --body-file, not both' });
    }
  });

/** The body retry or reassign was given, if any (from --body or --body-file). */
export function optionalBodyText(ctx: CommandContext, v: { body?: string | undefined; bodyFile?: string | undefined }): string | undefined {
  return v.body === undefined && v.bodyFile === undefined ? undefined : resolveBody(ctx, v);
}
