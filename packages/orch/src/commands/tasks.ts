import { defineCommand, formatTable, idSchema, intFlag, jsonValueFlag, labelFlag, textFlag, visible } from '@orch/store';
import { z } from 'zod';
import { messageText } from '../render.ts';
import { addDependency } from '../ops/dependencies.ts';
import { readyTasks } from '../ops/readiness.ts';
import { addTask, showTask } from '../ops/tasks.ts';
import { runFlag, taskFlag, withRun } from './shared.ts';

export const taskAddCommand = defineCommand({
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

export const taskShowCommand = defineCommand({
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
      lines.push('', `attempt ${a.number} (${a.id}) [${a.state}] to ${a.assigned_to} · ${a.execution_mode} · thread ${a.thread_id} [${a.thread?.state ?? 'missing'}]`);
      if (a.latest_message) lines.push(messageText(a.latest_message).replace(/^/gm, '  '));
    }
    if (r.attempts.length === 0) lines.push('', 'no attempts yet');
    return lines.join('\n');
  },
});

export const depAddCommand = defineCommand({
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

export const readyCommand = defineCommand({
  name: 'ready',
  summary: 'List tasks that can be dispatched now, highest priority first',
  description:
    'Ready: every dependency is done, the task is not done or cancelled, and it has no live attempt. A failed or ' +
    'expired task is ready again (see `attempts`); dispatch it anew or use retry. Reconciles first.',
  flags: { run: runFlag },
  examples: ['--db ./coord.db --json ready --run blog_mvp_001'],
  input: z.object({ run: idSchema }),
  run: (ctx, input) => withRun(ctx, input.run, (orch) => readyTasks(orch, { runId: input.run })),
  text: (r) =>
    r.tasks.length === 0
      ? `nothing is ready in run ${r.run}`
      : formatTable([
          ['TASK', 'PRIORITY', 'STATE', 'ATTEMPTS', 'DEFAULT AGENT', 'TITLE'],
          ...r.tasks.map((t) => [t.id, String(t.priority), t.state, String(t.attempts), t.default_to ?? '-', t.title]),
        ]),
});
