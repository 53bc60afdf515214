import { EXIT_CODES_HELP } from '@orch/inbox';
import type { CliSpec } from '@orch/store';
import type { DispatchResult } from './attempts.ts';
import type { RunResult } from './runs.ts';

export interface OrchCliOptions {
  /** How the briefs orch renders at dispatch tell workers to run the inbox CLI (see defaultWorkerInbox). */
  workerInbox: string;
}

/** The orch CLI; the bundled executable points workers at the inbox executable beside it. */
export const createOrchCli = (options: OrchCliOptions): CliSpec => ({
  program: 'orch',
  version: '0.1.0',
  about:
    'orch: the leader\'s control plane. Plan a run as tasks with dependencies, dispatch each ready task as an attempt\n' +
    '(an inbox thread a worker claims), then follow it with status / wait / blocked / answer / retry / reassign /\n' +
    'cancel / cleanup until the run is done. Initialise the database once with `inbox --db PATH init`; every\n' +
    'command takes --db PATH, and --json for scripts.',
  epilogue: EXIT_CODES_HELP,
  afterCommit: {
    'run init': (r: RunResult) => `run show --run ${r.run.id}`,
    'task add': (r: { task: { run: string; id: string } }) => `task show --run ${r.task.run} --task ${r.task.id}`,
    dispatch: (r: DispatchResult) => `task show --run ${r.run.id} --task ${r.task.id}`,
    retry: (r: DispatchResult) => `task show --run ${r.run.id} --task ${r.task.id}`,
    reassign: (r: DispatchResult) => `task show --run ${r.run.id} --task ${r.task.id}`,
    answer: (r: { task: { run: string; id: string } }) => `task show --run ${r.task.run} --task ${r.task.id}`,
  },
  commands: [
    { name: 'run init', load: () => import('./commands/runs.ts').then((m) => m.runInitCommand) },
    { name: 'run show', load: () => import('./commands/runs.ts').then((m) => m.runShowCommand) },
    { name: 'run list', load: () => import('./commands/runs.ts').then((m) => m.runListCommand) },
    { name: 'task add', load: () => import('./commands/tasks.ts').then((m) => m.taskAddCommand) },
    { name: 'task show', load: () => import('./commands/tasks.ts').then((m) => m.taskShowCommand) },
    { name: 'dep add', load: () => import('./commands/tasks.ts').then((m) => m.depAddCommand) },
    { name: 'ready', load: () => import('./commands/tasks.ts').then((m) => m.readyCommand) },
    { name: 'dispatch', load: () => import('./commands/dispatch.ts').then((m) => m.dispatchCommand(options)) },
    { name: 'reconcile', load: () => import('./commands/watch.ts').then((m) => m.reconcileCommand) },
    { name: 'status', load: () => import('./commands/watch.ts').then((m) => m.statusCommand) },
    { name: 'wait', load: () => import('./commands/watch.ts').then((m) => m.waitCommand) },
    { name: 'blocked', load: () => import('./commands/watch.ts').then((m) => m.blockedCommand) },
    { name: 'answer', load: () => import('./commands/control.ts').then((m) => m.answerCommand) },
    { name: 'retry', load: () => import('./commands/dispatch.ts').then((m) => m.retryCommand(options)) },
    { name: 'reassign', load: () => import('./commands/dispatch.ts').then((m) => m.reassignCommand(options)) },
    { name: 'cancel', load: () => import('./commands/control.ts').then((m) => m.cancelCommand) },
    { name: 'diff', load: () => import('./commands/code.ts').then((m) => m.diffCommand) },
    { name: 'merge', load: () => import('./commands/code.ts').then((m) => m.mergeCommand) },
    { name: 'cleanup', load: () => import('./commands/control.ts').then((m) => m.cleanupCommand) },
    { name: 'doctor', load: () => import('./commands/doctor.ts').then((m) => m.doctorCommand) },
  ],
});

/** The orch CLI with briefs that run `inbox` from PATH. */
export const orchCli: CliSpec = createOrchCli({ workerInbox: 'inbox' });
