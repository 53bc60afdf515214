import { defineCommand, idSchema, intFlag, jsonValueFlag, labelFlag, textFlag } from '@orch/store';
import { z } from 'zod';
import { addTask } from '../ops/tasks.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'task add',
  summary: 'Add a task to a run',
  description:
    'The task id is yours to choose and must be new within the run (exit 4 otherwise). --default-to names the agent ' +
    'dispatch assigns it to when no --to is given. --acceptance-json is any JSON (criteria the worker is shown). ' +
    '--priority: higher is dispatched first (default 0); `ready` lists by priority, then insertion order. ' +
    'Adding a task to a run that was done reopens it.',
  flags: {
    run: runFlag,
    task: { type: 'string', describe: 'New task id, e.g. T1', required: true },
    title: { type: 'string', describe: 'One-line title', required: true },
    summary: { type: 'string', describe: 'What the task is about' },
    'default-to': { type: 'string', describe: 'Agent to dispatch it to when dispatch has no --to' },
    'acceptance-json': { type: 'string', describe: 'Acceptance criteria as JSON, e.g. \'{"kind":"analysis"}\'' },
    priority: { type: 'string', describe: 'Whole number; higher first (default 0; negative: --priority=-1)' },
  },
  examples: [
    '--db ./coord.db --json task add --run blog_mvp_001 --task T1 --title "Project skeleton" --summary "Initialize app structure" --default-to foundation-worker',
    '--db ./coord.db --json task add --run blog_mvp_001 --task T2 --title "Summarize flaky tests" --default-to qa-worker --acceptance-json \'{"kind":"analysis"}\' --priority 5',
  ],
  input: z.object({
    run: idSchema,
    task: idSchema,
    title: labelFlag(),
    summary: textFlag('the summary').optional(),
    defaultTo: idSchema.optional(),
    acceptanceJson: jsonValueFlag.optional(),
    priority: intFlag(-1_000_000, 1_000_000).optional(),
  }),
  run: (ctx, input) =>
    withRun(ctx, input.run, (orch) =>
      addTask(orch, {
        runId: input.run,
        taskId: input.task,
        title: input.title,
        summary: input.summary,
        defaultTo: input.defaultTo,
        acceptance: input.acceptanceJson,
        priority: input.priority,
      }),
    ),
  text: (r) => `added task ${r.task.run}/${r.task.id}: ${r.task.title} (priority ${r.task.priority}, event ${r.event})`,
});
