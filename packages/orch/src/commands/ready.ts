import { defineCommand, formatTable, idSchema } from '@orch/store';
import { z } from 'zod';
import { readyTasks } from '../ops/readiness.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'ready',
  summary: 'List tasks that can be dispatched now, highest priority first',
  description:
    'Ready: every dependency is done, the task is not done or cancelled, and it has no live attempt. A failed or ' +
    'expired task is ready again (see `attempts`); dispatch it anew or use retry. Reconciles first.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json ready --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => readyTasks(orch, { runId: input.run })),
  text: (r) =>
    r.tasks.length === 0
      ? `nothing is ready in run ${r.run}`
      : formatTable([
          ['TASK', 'PRIORITY', 'STATE', 'ATTEMPTS', 'DEFAULT AGENT', 'TITLE'],
          ...r.tasks.map((t) => [t.id, String(t.priority), t.state, String(t.attempts), t.default_to ?? '-', t.title]),
        ]),
});
