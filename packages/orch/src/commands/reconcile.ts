import { defineCommand, idSchema } from '@orch/store';
import { z } from 'zod';
import { reconcile } from '../ops/reconcile.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'reconcile',
  summary: 'Fold new worker activity (claims, progress, questions, results, expired leases) into task state and events',
  description:
    'Idempotent: running it again writes nothing new. status, wait, ready, blocked and the commands that change tasks ' +
    'reconcile by themselves; this command is for doing it explicitly.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json reconcile --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => reconcile(orch, input.run)),
  text: (r) => (r.events_written === 0 ? `run ${r.run}: nothing new` : `run ${r.run}: ${r.events_written} new event(s)`),
});
