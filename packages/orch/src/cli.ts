import { EXIT_CODES_HELP } from '@orch/inbox';
import type { CliSpec } from '@orch/store';
import type { DispatchResult } from './attempts.ts';
import type { RunResult } from './runs.ts';
import { diffCommand, mergeCommand } from './commands/code.ts';
import { answerCommand, cancelCommand, cleanupCommand } from './commands/control.ts';
import { command as doctorCommand } from './commands/doctor.ts';
import { dispatchCommand, reassignCommand, retryCommand } from './commands/dispatch.ts';
import { runInitCommand, runListCommand, runShowCommand } from './commands/runs.ts';
import { depAddCommand, readyCommand, taskAddCommand, taskShowCommand } from './commands/tasks.ts';
import { blockedCommand, reconcileCommand, statusCommand, waitCommand } from './commands/watch.ts';

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
    runInitCommand,
    runShowCommand,
    runListCommand,
    taskAddCommand,
    taskShowCommand,
    depAddCommand,
    readyCommand,
    dispatchCommand(options),
    reconcileCommand,
    statusCommand,
    waitCommand,
    blockedCommand,
    answerCommand,
    retryCommand(options),
    reassignCommand(options),
    cancelCommand,
    diffCommand,
    mergeCommand,
    cleanupCommand,
    doctorCommand,
  ],
});

/** The orch CLI with briefs that run `inbox` from PATH. */
export const orchCli: CliSpec = createOrchCli({ workerInbox: 'inbox' });
