import { defineCommand, idSchema, visible } from '@orch/store';
import { z } from 'zod';
import { showTask } from '../ops/tasks.ts';
import { messageText } from '../render.ts';
import { runFlag, taskFlag, withRun } from './shared.ts';

export const command = defineCommand({
  name: 'task show',
  summary: 'Show a task, its dependencies, and every attempt with its thread and latest message',
  description: 'Reconciles first, like status.',
  flags: { run: runFlag, task: taskFlag },
  examples: ['--db ./coord.db --json task show --run blog_mvp_001 --task T2'],
  input: z.object({ run: idSchema, task: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => showTask(orch, { runId: input.run, taskId: input.task })),
  text: (r) => {
    const t = r.task;
    const lines = [
      `task ${t.run}/${t.id} [${t.state}${t.ready ? ', ready' : ''}]: ${visible(t.title)}`,
      ...(t.summary ? [`  ${visible(t.summary, { multiline: true })}`] : []),
      `  priority ${t.priority} · default agent ${t.default_to ?? '-'} · depends on ${t.depends_on.join(', ') || '-'} · needed by ${t.dependents.join(', ') || '-'}`,
      ...(t.acceptance !== null ? [`  acceptance: ${visible(JSON.stringify(t.acceptance))}`] : []),
    ];
    if (t.waiting_on.length > 0) lines.push(`  waiting on: ${t.waiting_on.join(', ')}`);
    for (const a of r.attempts) {
      lines.push(
        '',
        `attempt ${a.number} (${a.id}) [${a.state}] to ${a.assigned_to} · ${a.execution_mode} · thread ${a.thread_id} [${a.thread?.state ?? 'missing'}]`,
      );
      if (a.latest_message) lines.push(messageText(a.latest_message).replace(/^/gm, '  '));
    }
    if (r.attempts.length === 0) lines.push('', 'no attempts yet');
    return lines.join('\n');
  },
});
