// The leader's MCP tools (`orch mcp`): which orch commands they are (the registry's `mcp` names in
// cli.ts) is said there; what MCP needs besides the commands is said here.
import type { McpSetSpec } from '@orch/store';

/** Longest wait one tool call may make: clients give up on a call (often after 60 s). */
export const ORCH_MCP_MAX_WAIT_SECONDS = 300;
/** How long `wait` waits when not told. */
export const ORCH_MCP_DEFAULT_WAIT_SECONDS = 45;

export const orchMcp: McpSetSpec = {
  name: 'orch',
  instructions:
    'You lead a run: plan it (run_init, task_add per task, dep_add), dispatch ready tasks to worker agents, then loop: wait ' +
    'for events (timed_out: call again with after_event = last_event), answer blocked tasks, retry failed ones, merge ' +
    'finished code. status shows everything.',
  resources: [
    {
      uriTemplate: 'orch://runs/{run}/status',
      name: 'run-status',
      description: 'A run: every task, its latest attempt and message (as the status tool; reconciles).',
      command: 'status',
    },
  ],
  tools: {
    plan: {
      description: 'Plan a run: run_init (its goal), task_add for each task (default_to: the worker agent), dep_add (task waits for depends_on).',
    },
    status: {
      description: 'Read a run: status (reconciles; every task, its latest attempt and message), ready, task_show, run_list.',
      // `status --watch` draws in a terminal; a client follows a run with the wait tool.
      omit: ['watch'],
    },
    dispatch: {
      description:
        'Start or change work: dispatch a ready task (a new attempt and thread; body is the brief), retry, reassign to ' +
        'another agent, cancel a task or (without task) the run.',
      omit: ['bodyFile'],
    },
    wait: {
      description: 'Wait for run events after after_event: {events, last_event, timed_out}. timed_out: call again with after_event = last_event.',
      bounds: {
        timeoutSeconds: {
          default: ORCH_MCP_DEFAULT_WAIT_SECONDS,
          max: ORCH_MCP_MAX_WAIT_SECONDS,
          describe: `Give up after this long (default ${ORCH_MCP_DEFAULT_WAIT_SECONDS}, max ${ORCH_MCP_MAX_WAIT_SECONDS})`,
        },
      },
    },
    blocked: { description: 'Blocked tasks with their pending questions.', omit: ['count'] },
    answer: { description: "Answer a blocked task's question; the task goes back to running.", omit: ['bodyFile'] },
    merge: { description: 'Code attempts: diff (what the branch changed), merge (into a branch), cleanup (remove finished worktrees; dry_run previews).' },
  },
};
