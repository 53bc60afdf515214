import { defineCommand, idSchema, textFlag } from '@orch/store';
import { z } from 'zod';
import { cancel } from '../ops/cancel.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'cancel',
  summary: 'Cancel one task (and its live attempt), or the whole run',
  description:
    "With --task, cancels that task; every live attempt's thread is cancelled, so the worker's next write fails with " +
    'exit 5. Without --task, cancels every unfinished task and the run. Already cancelled: nothing changes. A done ' +
    'task or run cannot be cancelled (exit 4). `stranded` lists unfinished tasks that depend on a cancelled one and so ' +
    'can never become ready: cancel them too, or re-plan.',
  flags: {
    run: runFlag,
    task: { type: 'string', describe: 'Cancel only this task' },
    reason: { type: 'string', describe: "Why (posted to the worker's thread and logged)" },
  },
  examples: ['--db ./coord.db --json cancel --run blog_mvp_001 --task T3 --reason "Out of scope"', '--db ./coord.db --json cancel --run blog_mvp_001'],
  input: z.object({ run: idSchema, task: idSchema.optional(), reason: textFlag('the reason').optional() }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => cancel(orch, { runId: input.run, taskId: input.task, reason: input.reason })),
  text: (r) => {
    const lines = [r.cancelled.length === 0 ? 'nothing to cancel (already cancelled)' : `cancelled ${r.cancelled.join(', ')}`];
    if (r.cancelled_attempts.length > 0) lines.push(`revoked attempts ${r.cancelled_attempts.join(', ')}`);
    if (r.stranded.length > 0) lines.push(`stranded (depend on a cancelled task): ${r.stranded.join(', ')}`);
    lines.push(`run ${r.run.id} is ${r.run.state}`);
    return lines.join('\n');
  },
});
