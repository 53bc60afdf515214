import { openInbox } from '@orch/inbox';
import { mcpCommand } from '@orch/store';
import { createOrchCli } from '../cli.ts';
import { ORCH_MCP_DEFAULT_WAIT_SECONDS, ORCH_MCP_MAX_WAIT_SECONDS } from '../mcp/tools.ts';
import type { DispatchCommandOptions } from './shared.ts';

export const command = (options: DispatchCommandOptions) =>
  mcpCommand({
    spec: () => createOrchCli(options),
    agent: false,
    // The inbox tables must be there (`inbox init`); orch's appear with the first run.
    check: async (ctx) => {
      const inbox = await openInbox({ path: ctx.dbPath, ids: ctx.ids, ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}) });
      await inbox.close();
    },
    summary: "Serve the leader's tools over MCP (stdio) until the client goes away",
    description:
      'An MCP server on stdin/stdout for a client that takes tools rather than running commands: plan (run_init | ' +
      'task_add | dep_add), status (status | ready | task_show | run_list), dispatch (dispatch | retry | reassign | cancel), ' +
      'wait, blocked, answer, merge (diff | merge | cleanup). Results are exactly the --json documents of the commands; ' +
      'errors are tool errors carrying the same {error: {code, message}}. wait waits ' +
      `${ORCH_MCP_DEFAULT_WAIT_SECONDS} s unless told (at most ${ORCH_MCP_MAX_WAIT_SECONDS}) and says timed_out: call it ` +
      'again. Resource: orch://runs/{run}/status (the status document). Ends on stdin EOF, SIGINT or SIGTERM. Logs go to stderr only.',
    examples: ['--db ./coord.db mcp'],
  });
