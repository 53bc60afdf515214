import { defineCommand, idSchema } from '@orch/store';
import { z } from 'zod';
import { showRun } from '../ops/runs.ts';
import { runText } from '../render.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'run show',
  summary: 'Show a run and how many of its tasks are in each state (light; no reconcile)',
  description:
    'The lighter aggregate view: it does not fold in worker activity first. Use `status` for the full, reconciled view. ' +
    'unmerged counts the done tasks whose latest attempt is a code attempt not merged yet (unmerged_tasks names them); ' +
    "last_event is the run's newest event.",
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json run show --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => showRun(orch, { runId: input.run })),
  text: (r) => runText(r.run, r.counts, r.last_event, r.unmerged_tasks),
});
