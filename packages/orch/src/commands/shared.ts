import { NotFoundError, idSchema, type CommandContext, type FlagSpec } from '@orch/store';
import { NoOrchTablesError, openOrch, type Orch } from '../orch.ts';

export interface WithOrchOptions<T> {
  /** Create the orch tables if the database has none yet (only `run init`). */
  createTables?: boolean;
  /** The answer when the database has no orch tables (so no runs); default: run `run` not found. */
  whenEmpty?: () => T;
  /** The run the command is about, for the not-found message. */
  run?: string;
}

/**
 * Opens the orchestration database named by `--db`, runs `fn`, and always closes it. Only `run
 * init` creates the orch tables: any other command on a database without them answers as for a
 * database without runs, writing nothing.
 */
export async function withOrch<T>(ctx: CommandContext, fn: (orch: Orch) => Promise<T>, options: WithOrchOptions<T> = {}): Promise<T> {
  let orch: Orch;
  try {
    orch = await openOrch({
      path: ctx.dbPath,
      clock: ctx.clock,
      ids: ctx.ids,
      createTables: options.createTables ?? false,
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
    await orch.close();
  }
}

export const runFlag: FlagSpec = { type: 'string', describe: 'Run id (from run init)', required: true };
export const taskFlag: FlagSpec = { type: 'string', describe: 'Task id (from task add)', required: true };
export const runField = { run: idSchema };

/** withOrch for a command about one run. */
export function withRun<T>(ctx: CommandContext, run: string, fn: (orch: Orch) => Promise<T>): Promise<T> {
  return withOrch(ctx, fn, { run });
}
