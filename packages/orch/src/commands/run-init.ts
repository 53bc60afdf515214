import { defineCommand, idSchema, labelFlag, textFlag } from '@orch/store';
import { z } from 'zod';
import { initRun } from '../ops/runs.ts';
import { runText } from '../render.ts';
import { withOrch } from './shared.ts';

export const command = defineCommand({
  name: 'run init',
  summary: 'Create a run: the goal a graph of tasks works towards',
  description: 'The run id is yours to choose (letters, digits, ".", "_", "-"); it must be new. Exit 4 if it exists.',
  flags: {
    run: { type: 'string', describe: 'New run id, e.g. blog_mvp_001', required: true },
    goal: { type: 'string', describe: 'One-line goal of the run', required: true },
    summary: { type: 'string', describe: 'Longer description' },
  },
  examples: ['--db ./coord.db --json run init --run blog_mvp_001 --goal "Build blog MVP" --summary "Public blog plus admin CRUD"'],
  input: z.object({ run: idSchema, goal: labelFlag(), summary: textFlag('the summary').optional() }),
  run: (ctx, input) => withOrch(ctx, (orch) => initRun(orch, { runId: input.run, goal: input.goal, summary: input.summary }), { createTables: true }),
  text: (r) => `created ${runText(r.run, r.counts, r.last_event)}`,
});
