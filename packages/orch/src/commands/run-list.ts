import { defineCommand, formatTable, intFlag } from '@orch/store';
import { z } from 'zod';
import { listRuns } from '../ops/runs.ts';
import { countsText } from '../render.ts';
import { RUN_STATES } from '../schema.ts';
import { withOrch } from './shared.ts';

export const command = defineCommand({
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
