import { EXIT_CODES_HELP, VERSION, type CliSpec } from '@orch/store';
import type { DispatchResult } from './ops/dispatch.ts';
import type { RunResult } from './ops/runs.ts';
import { orchMcp } from './mcp/tools.ts';

export interface OrchCliOptions {
  /** How the briefs orch renders at dispatch tell workers to run the inbox CLI (see defaultWorkerInbox). */
  workerInbox: string;
}

/** The orch CLI; the bundled executable points workers at the inbox executable beside it. */
export const createOrchCli = (options: OrchCliOptions): CliSpec => ({
  program: 'orch',
  version: VERSION,
  about:
    "orch: the leader's control plane. Plan a run as tasks with dependencies, dispatch each ready task as an attempt\n" +
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
    // A token whose output was lost is shown nowhere again: list it, revoke it, make another.
    'token create': (r: { id: string }) => `token list  (then: token revoke --token-id ${r.id})`,
  },
  // The leader's MCP tools: the commands with an `mcp` tool name below (`orch mcp`).
  mcp: orchMcp,
  // The registry, in help order.
  commands: [
    { name: 'run init', mcp: 'plan', load: () => import('./commands/run-init.ts').then((m) => m.command) },
    { name: 'run show', load: () => import('./commands/run-show.ts').then((m) => m.command) },
    { name: 'run list', mcp: 'status', load: () => import('./commands/run-list.ts').then((m) => m.command) },
    { name: 'task add', mcp: 'plan', load: () => import('./commands/task-add.ts').then((m) => m.command) },
    { name: 'task show', mcp: 'status', load: () => import('./commands/task-show.ts').then((m) => m.command) },
    { name: 'dep add', mcp: 'plan', load: () => import('./commands/dep-add.ts').then((m) => m.command) },
    { name: 'ready', mcp: 'status', load: () => import('./commands/ready.ts').then((m) => m.command) },
    { name: 'dispatch', mcp: 'dispatch', load: () => import('./commands/dispatch.ts').then((m) => m.command(options)) },
    { name: 'reconcile', load: () => import('./commands/reconcile.ts').then((m) => m.command) },
    { name: 'status', mcp: 'status', load: () => import('./commands/status.ts').then((m) => m.command) },
    { name: 'wait', mcp: 'wait', load: () => import('./commands/wait.ts').then((m) => m.command) },
    { name: 'blocked', mcp: 'blocked', load: () => import('./commands/blocked.ts').then((m) => m.command) },
    { name: 'answer', mcp: 'answer', load: () => import('./commands/answer.ts').then((m) => m.command) },
    { name: 'retry', mcp: 'dispatch', load: () => import('./commands/retry.ts').then((m) => m.command(options)) },
    { name: 'reassign', mcp: 'dispatch', load: () => import('./commands/reassign.ts').then((m) => m.command(options)) },
    { name: 'cancel', mcp: 'dispatch', load: () => import('./commands/cancel.ts').then((m) => m.command) },
    { name: 'diff', mcp: 'merge', load: () => import('./commands/diff.ts').then((m) => m.command) },
    { name: 'merge', mcp: 'merge', load: () => import('./commands/merge.ts').then((m) => m.command) },
    { name: 'cleanup', mcp: 'merge', load: () => import('./commands/cleanup.ts').then((m) => m.command) },
    { name: 'doctor', load: () => import('./commands/doctor.ts').then((m) => m.command) },
    // The tokens of `orch serve` (packages/server; no HTTP library is loaded for these).
    { name: 'token create', load: () => import('@orch/server/token-commands').then((m) => m.createCommand) },
    { name: 'token list', load: () => import('@orch/server/token-commands').then((m) => m.listCommand) },
    { name: 'token revoke', load: () => import('@orch/server/token-commands').then((m) => m.revokeCommand) },
    { name: 'copy', load: () => import('./commands/copy.ts').then((m) => m.command) },
    { name: 'mcp', load: () => import('./commands/mcp.ts').then((m) => m.command(options)) },
    { name: 'serve', load: () => import('@orch/server/serve-command').then((m) => m.command) },
  ],
});

/** The orch CLI with briefs that run `inbox` from PATH. */
export const orchCli: CliSpec = createOrchCli({ workerInbox: 'inbox' });
