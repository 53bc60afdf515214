// MCP over Streamable HTTP at `/mcp` on `orch serve`: the same tool sets as `orch mcp` and `inbox
// mcp --agent NAME`, the token deciding which one a client gets. Stateless: every POST is answered
// by a server made for it (tools/list, tools/call, resources/read need no session).
import { inboxCli } from '@orch/inbox';
import { orchCli } from '@orch/orch';
import { LONG_LIVED_RECONNECT_MS, buildToolSet, loadMcpServer, type CliSpec, type CommandContext } from '@orch/store';
import { principalContext, type Principal } from './auth.ts';

export interface HandleMcpOptions {
  /** The leader's CLI spec (default orchCli); a server whose briefs name its URL passes its own. */
  orch?: CliSpec;
  /** Where a tool's internal error is logged (default: stderr). */
  log?: (line: string) => void;
}

function stderrLog(line: string): void {
  try {
    process.stderr.write(`${line}\n`);
  } catch {
    // nowhere left to write
  }
}

/**
 * Answers one request to `/mcp`: the local user and leader tokens get the leader's tools (orch), a
 * worker token the worker's tools (inbox) acting as its agent only. Tool calls run with `ctx` (the
 * served database) limited by the principal (principalContext); `ctx.signal` and the request's own
 * signal aborting (the client went away, the server is stopping) end a waiting call early.
 * Authentication is the caller's: `principal` is who authenticate() found.
 */
export async function handleMcp(request: Request, principal: Principal, ctx: CommandContext, options: HandleMcpOptions = {}): Promise<Response> {
  const worker = principal.kind === 'token' && principal.role === 'worker';
  const spec = worker ? inboxCli : (options.orch ?? orchCli);
  const limited: CommandContext = { ...ctx, reconnectMs: Math.max(ctx.reconnectMs ?? 0, LONG_LIVED_RECONNECT_MS), ...principalContext(principal) };
  const set = await buildToolSet(spec, limited);
  const { serveHttpRequest } = await loadMcpServer();
  const signals = [ctx.signal, request.signal].filter((s): s is AbortSignal => s !== undefined);
  return serveHttpRequest(set, request, {
    log: options.log ?? stderrLog,
    stopping: signals.length === 1 ? (signals[0] as AbortSignal) : AbortSignal.any(signals),
  });
}
