import { defineCommand, idSchema } from '@orch/store';
import { z } from 'zod';
import { blocked } from '../ops/blocked.ts';
import { messageText } from '../render.ts';
import { runFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'blocked',
  summary: 'List blocked tasks with their pending questions',
  description: 'Reconciles first. Each entry has the task, its blocked attempt, and the question: body, payload, who asked and when. Answer with `answer`.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json blocked --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => blocked(orch, { runId: input.run })),
  text: (r) =>
    r.tasks.length === 0
      ? `no blocked tasks in run ${r.run}`
      : r.tasks
          .map((b) => {
            const q = b.question;
            const head = `${b.task.id} (attempt ${b.attempt.number}, ${b.attempt.assigned_to}, thread ${b.attempt.thread_id}): ${b.task.title}`;
            return q
              ? `${head}\n${messageText({ id: q.message_id, thread_id: b.attempt.thread_id, author: q.asked_by, kind: 'question', body: q.body, payload: q.payload, created_at: q.asked_at }).replace(/^/gm, '  ')}`
              : head;
          })
          .join('\n\n'),
});
