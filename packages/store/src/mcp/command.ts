// The `mcp` command of a CLI (`orch mcp`, `inbox mcp --agent NAME`): serves the CLI's MCP tool set
// over stdio. Defined once here; each CLI gives its own spec and says whether it acts as one agent.
import { z } from 'zod';
import { defineCommand, type CliSpec, type CommandContext, type CommandDefinition } from '../command.ts';
import { LONG_LIVED_RECONNECT_MS } from '../engine.ts';
import { AppError, ExitCode } from '../errors.ts';
import { idSchema } from '../ids.ts';
import { buildToolSet } from './tools.ts';

/** Calls still running at shutdown get this long to finish before the process ends anyway. */
const SHUTDOWN_GRACE_MS = 2000;

export interface McpCommandOptions {
  /** The CLI whose commands the tools are. */
  spec: () => CliSpec;
  summary: string;
  description: string;
  examples: string[];
  /** `inbox mcp` takes `--agent NAME` and acts only as that agent. */
  agent: boolean;
  /**
   * Opens the database once before serving, so that a wrong --db is one error and its exit code
   * (6) at start rather than a server whose every call fails. Throws what opening throws.
   */
  check(ctx: CommandContext): Promise<void>;
}

/**
 * The SDK side (mcp/server.ts), loaded only now: a bundled CLI keeps it in mcp-sdk.cjs beside itself.
 *
 * @throws AppError INTERNAL (1) when it cannot load, saying what file belongs where.
 */
export async function loadMcpServer(): Promise<typeof import('./server.ts')> {
  try {
    return await import('./server.ts');
  } catch (err) {
    throw new AppError(
      'INTERNAL',
      ExitCode.internal,
      `the MCP server cannot load (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); copy the whole folder the executable came from (mcp-sdk.cjs belongs beside it)`,
      { cause: err },
    );
  }
}

export function mcpCommand(options: McpCommandOptions): CommandDefinition {
  const input = options.agent ? z.object({ agent: idSchema }) : z.object({});
  return defineCommand({
    name: 'mcp',
    summary: options.summary,
    description: options.description,
    flags: options.agent ? { agent: { type: 'string', describe: 'Act as this agent: its threads only', required: true } } : {},
    examples: options.examples,
    input,
    ownsStdio: true,
    run: async (ctx, given: { agent?: string }) => {
      await options.check(ctx);
      const spec = options.spec();
      const set = await buildToolSet(spec, {
        ...ctx,
        // Every call opens the database as a long-lived process does: a PostgreSQL restart is ridden out.
        reconnectMs: LONG_LIVED_RECONNECT_MS,
        ...(given.agent !== undefined ? { actingAgent: given.agent } : {}),
      });
      const { serveStdio } = await loadMcpServer();
      const log = (line: string) => {
        try {
          process.stderr.write(`${line}\n`);
        } catch {
          // nowhere left to write
        }
      };
      const ended = await serveStdio(set, { log, graceMs: SHUTDOWN_GRACE_MS });
      // Waits end at once when the server stops; a call still running past the grace period is
      // stuck on something else (a PostgreSQL server being reconnected to) and would hold the
      // process open with nobody left to answer: the process ends shortly even so (a write in it
      // commits whole or not at all). The timer is unreferenced: without such a call the process
      // ends at once.
      if (ended.unfinished > 0) setTimeout(() => process.exit(), 500).unref();
      return { reason: ended.reason, unfinished: ended.unfinished };
    },
    text: () => '',
  });
}
