import { EXIT_CODES_HELP } from '@orch/inbox';
import type { CliSpec } from '@orch/store';
import type { DispatchResult } from './ops/dispatch.ts';
import type { RunResult } from './ops/runs.ts';
import { command as answer } from './commands/answer.ts';
import { command as blocked } from './commands/blocked.ts';
import { command as cancel } from './commands/cancel.ts';
import { command as cleanup } from './commands/cleanup.ts';
import { command as depAdd } from './commands/dep-add.ts';
import { command as diff } from './commands/diff.ts';
import { command as dispatch } from './commands/dispatch.ts';
import { doctorCommand as doctor } from './commands/doctor.ts';
import { command as merge } from './commands/merge.ts';
import { command as ready } from './commands/ready.ts';
import { command as reassign } from './commands/reassign.ts';
import { command as reconcile } from './commands/reconcile.ts';
import { command as retry } from './commands/retry.ts';
import { command as runInit } from './commands/run-init.ts';
import { command as runList } from './commands/run-list.ts';
import { command as runShow } from './commands/run-show.ts';
import { command as status } from './commands/status.ts';
import { command as taskAdd } from './commands/task-add.ts';
import { command as taskShow } from './commands/task-show.ts';
import { command as wait } from './commands/wait.ts';

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
  // The registry, in help order.
  commands: [
    runInit,
    runShow,
    runList,
    taskAdd,
    taskShow,
    depAdd,
    ready,
    dispatch(options),
    reconcile,
    status,
    wait,
    blocked,
    answer,
    retry(options),
    reassign(options),
    cancel,
    diff,
    merge,
    cleanup,
    doctor,
  ],
});

/** The orch CLI with briefs that run `inbox` from PATH. */
export const orchCli: CliSpec = createOrchCli({ workerInbox: 'inbox' });
