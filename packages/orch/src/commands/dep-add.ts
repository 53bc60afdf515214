import { defineCommand, idSchema } from '@orch/store';
import { z } from 'zod';
import { addDependency } from '../ops/dependencies.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'dep add',
  summary: 'Record that a task cannot start until another is done',
  description:
    'Both tasks must exist in the run (exit 3). A task cannot depend on itself (exit 2), and an edge that would close ' +
    'a cycle is refused with the cycle named (exit 4). Adding an existing edge changes nothing (created: false).',
  flags: {
    run: runFlag,
    task: { type: 'string', describe: 'The task that waits', required: true },
    'depends-on': { type: 'string', describe: 'The task it waits for', required: true },
  },
  examples: ['--db ./coord.db --json dep add --run blog_mvp_001 --task T2 --depends-on T1'],
  input: z.object({ run: idSchema, task: idSchema, dependsOn: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => addDependency(orch, { runId: input.run, taskId: input.task, dependsOn: input.dependsOn })),
  text: (r) => `${r.created ? 'added' : 'already there:'} ${r.task} depends on ${r.depends_on} (now depends on ${r.dependencies.join(', ')})`,
});
