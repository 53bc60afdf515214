import { idSchema, type CommandContext, type FlagSpec } from '@orch/store';
import { openOrch, type Orch } from '../orch.ts';

/** Opens the orchestration database named by `--db`, runs `fn`, and always closes it. */
export async function withOrch<T>(ctx: CommandContext, fn: (orch: Orch) => Promise<T>): Promise<T> {
  const orch = await openOrch({
    path: ctx.dbPath,
    clock: ctx.clock,
    ids: ctx.ids,
    ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}),
  });
  try {
    return await fn(orch);
  } finally {
    await orch.close();
  }
}

export const runFlag: FlagSpec = { type: 'string', describe: 'Run id (from run init)', required: true };
export const taskFlag: FlagSpec = { type: 'string', describe: 'Task id (from task add)', required: true };
export const runField = { run: idSchema };
