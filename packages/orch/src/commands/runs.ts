import { defineCommand, formatTable, idSchema, intFlag, labelFlag, textFlag } from '@orch/store';
import { z } from 'zod';
import { countsText, runText } from '../render.ts';
import { initRun, listRuns, showRun } from '../ops/runs.ts';
import { RUN_STATES } from '../schema.ts';
import { runFlag, withOrch, withRun } from './shared.ts';

export const runInitCommand = defineCommand({
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

export const runShowCommand = defineCommand({
  name: 'run show',
  summary: 'Show a run and how many of its tasks are in each state (light; no reconcile)',
  description:
    'The lighter aggregate view: it does not fold in worker activity first. Use `status` for the full, reconciled view. ' +
    'unmerged counts the done tasks whose latest attempt is a code attempt not merged yet (unmerged_tasks names them); ' +
    'last_event is the run\'s newest event.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json run show --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => showRun(orch, { runId: input.run })),
  text: (r) => runText(r.run, r.counts, r.last_event, r.unmerged_tasks),
});

export const runListCommand = defineCommand({
  name: 'run list',
  summary: 'List runs, newest first, with task counts',
  flags: {
    state: { type: 'string', describe: `Only runs in this state: ${RUN_STATES.join('|')}` },
    limit: { type: 'string', describe: 'At most this many runs (default 100)' },
  },
  examples: ['--db ./coord.db run list', '--db ./coord.db --json run list --state active'],
  input: z.object({
    state: z.enum(RUN_STATES, { error: `must be one of ${RUN_STATES.join(', ')}` }).optional(),
    limit: intFlag(1, 10_000).optional(),
  }),
  run: (ctx, input) => withOrch(ctx, (orch) => listRuns(orch, input), { whenEmpty: () => ({ runs: [] }) }),
  text: (r) =>
    r.runs.length === 0
      ? 'no runs'
      : formatTable([['RUN', 'STATE', 'CREATED', 'TASKS', 'GOAL'], ...r.runs.map((x) => [x.id, x.state, x.created_at, countsText(x.counts), x.goal])]),
});
