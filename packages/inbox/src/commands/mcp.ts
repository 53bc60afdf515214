import { mcpCommand } from '@orch/store';
import { inboxCli } from '../cli.ts';
import { MCP_DEFAULT_WAIT_SECONDS, MCP_MAX_WAIT_SECONDS } from '../mcp/tools.ts';
import { withInbox } from './shared.ts';

export const command = mcpCommand({
  spec: () => inboxCli,
  agent: true,
  check: (ctx) => withInbox(ctx, async () => undefined),
  summary: "Serve one agent's worker tools over MCP (stdio) until the client goes away",
  description:
    'An MCP server on stdin/stdout for a client that takes tools rather than running commands: claim, show, heartbeat, ' +
    "post (progress | ask | result | fail), wait, release. Every tool acts only as --agent: another agent's thread is " +
    'refused (FORBIDDEN, exit 4 in the CLI). Results are exactly the --json documents of the commands; errors are tool ' +
    `errors carrying the same {error: {code, message}}. wait waits ${MCP_DEFAULT_WAIT_SECONDS} s unless told (at most ` +
    `${MCP_MAX_WAIT_SECONDS}) and says timed_out: call it again. Nothing wakes an idle agent between calls: for ` +
    'unattended workers use `inbox work`. Resource: inbox://threads/{thread} (the show document). Ends on stdin EOF, SIGINT or SIGTERM. Logs go to stderr only.',
  examples: ['--db ./coord.db mcp --agent qa-worker'],
});
