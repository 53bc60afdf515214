import { defineCommand, idSchema } from '@orch/store';
import { z } from 'zod';
import { blocked } from '../ops/blocked.ts';
import { messageText } from '../render.ts';
import { withOrch, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'blocked',
  summary: 'List blocked tasks with their pending questions',
  description:
    'Reconciles first. Without --run: every run that is not done or cancelled, oldest run first ({"run": null, ...}). ' +
    'Each entry has its run, the task, its blocked attempt, and the question: body, payload, who asked and when. ' +
    'Answer with `answer --run RUN --task TASK`. `count` is how many tasks are blocked; with --count, only that (tasks is empty): ' +
    'what a badge needs, without every question.',
  flags: {
    run: { type: 'string', describe: 'Run id (default: every run that is not done or cancelled)' },
    count: { type: 'boolean', describe: 'Only count the blocked tasks (tasks: [])' },
  },
  examples: ['--db ./coord.db --json blocked --run blog_mvp_001', '--db ./coord.db blocked', '--db ./coord.db --json blocked --count'],
  input: z.object({ run: idSchema.optional(), count: z.boolean().optional() }),
  run: (ctx, input) =>
    input.run === undefined
      ? withOrch(ctx, (orch) => blocked(orch, { countOnly: input.count === true }), { whenEmpty: () => ({ run: null, count: 0, tasks: [] }) })
      : withRun(ctx, input.run, (orch) => blocked(orch, { runId: input.run, countOnly: input.count === true })),
  text: (r) =>
    r.tasks.length === 0 && r.count > 0
      ? `${r.count} blocked task${r.count === 1 ? '' : 's'}${r.run === null ? '' : ` in run ${r.run}`}`
      : r.tasks.length === 0
        ? r.run === null
          ? 'no blocked tasks in any active run'
          : `no blocked tasks in run ${r.run}`
        : r.tasks
            .map((b) => {
              const q = b.question;
              const head = `${r.run === null ? `${b.run}/` : ''}${b.task.id} (attempt ${b.attempt.number}, ${b.attempt.assigned_to}, thread ${b.attempt.thread_id}): ${b.task.title}`;
              return q
                ? `${head}\n${messageText({ id: q.message_id, thread_id: b.attempt.thread_id, author: q.asked_by, kind: 'question', body: q.body, payload: q.payload, created_at: q.asked_at }).replace(/^/gm, '  ')}`
                : head;
            })
            .join('\n\n'),
});
