import { defineCommand, formatTable, idSchema, visible } from '@orch/store';
import { z } from 'zod';
import { status, type StatusResult } from '../ops/status.ts';
import { oneLine, runText } from '../render.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'status',
  summary: 'The main operational view: reconcile, then the run, every task, its latest attempt and message',
  description:
    'Folds new worker activity in first (like reconcile), then shows the run, task counts, every task with its state, ' +
    'readiness, latest attempt (and thread, null if it was deleted; merged_into/merge_commit for code) and latest ' +
    "message, unmerged (done code tasks not merged yet, named in unmerged_tasks), and last_event (the run's newest " +
    'event): pass it to `wait --after-event`.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json status --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => status(orch, { runId: input.run })),
  text: statusText,
});

function statusText(r: StatusResult): string {
  const rows = r.tasks.map((t) => {
    const a = t.latest_attempt;
    const m = t.latest_message;
    const state = t.ready ? `${t.state} (ready)` : t.waiting_on.length > 0 && t.state === 'pending' ? `pending (waits on ${t.waiting_on.join(',')})` : t.state;
    const where =
      a?.thread === null
        ? ' (thread missing)'
        : a?.worktree_exists === false
          ? ['dispatched', 'running', 'blocked'].includes(a.state)
            ? ' (worktree missing)'
            : ' (worktree gone)'
          : a?.merged_into
            ? ` (merged into ${visible(a.merged_into)})`
            : '';
    return [t.id, state, a ? `#${a.number} ${a.assigned_to}${where}` : '-', m ? `${m.kind}: ${oneLine(m.body, 60)}` : '-', t.title];
  });
  const table = rows.length === 0 ? 'no tasks yet' : formatTable([['TASK', 'STATE', 'ATTEMPT', 'LATEST MESSAGE', 'TITLE'], ...rows]);
  return `${runText(r.run, r.counts, r.last_event, r.unmerged_tasks)}\n\n${table}`;
}
