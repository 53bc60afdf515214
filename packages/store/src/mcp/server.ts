// An MCP server over a tool set (mcp/tools.ts), and serving it over stdio. The server is
// transport-agnostic: `createMcpServer` gives an SDK Server that any transport can connect to.
import { CallToolRequestSchema, ListToolsRequestSchema, Server, StdioServerTransport } from './sdk.ts';
import type { McpCallOutcome, McpToolSet } from './tools.ts';

export interface McpServerOptions {
  /** Where diagnostics go (never stdout: that is the protocol's). */
  log(line: string): void;
  /** Called with every tool call's promise while it runs (to wait for them at shutdown). */
  track?(call: Promise<unknown>): void;
}

/** The tool result of an outcome: the JSON document as text, and as structured content. */
export function toolResult(outcome: McpCallOutcome) {
  const json = outcome.json as Record<string, unknown>;
  return { content: [{ type: 'text' as const, text: JSON.stringify(json) }], structuredContent: json, isError: outcome.isError };
}

/** An SDK server answering `tools/list` and `tools/call` from `set`. */
export function createMcpServer(set: McpToolSet, options: McpServerOptions): Server {
  const server = new Server({ name: set.name, version: set.version }, { capabilities: { tools: {} }, instructions: set.instructions });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: set.tools }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const call = set.call(request.params.name, request.params.arguments ?? {});
    options.track?.(call);
    const outcome = await call;
    if (outcome.isError && outcome.cause !== undefined) {
      const cause = outcome.cause;
      options.log(`${set.name} mcp: tool ${request.params.name} failed: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
    }
    return toolResult(outcome);
  });
  return server;
}

export interface ServeStdioOptions extends McpServerOptions {
  /** How long calls still running at shutdown may take to finish (default 2000 ms). */
  graceMs?: number;
}

/**
 * Serves `set` on this process's stdin/stdout until the client goes away (stdin ends, or stdout
 * is closed) or SIGINT/SIGTERM arrives; then gives the calls still running up to `graceMs` to
 * finish (their answers can no longer be sent) and resolves with how many did not.
 */
export async function serveStdio(set: McpToolSet, options: ServeStdioOptions): Promise<{ reason: string; unfinished: number }> {
  const running = new Set<Promise<unknown>>();
  const server = createMcpServer(set, {
    log: options.log,
    track: (call) => {
      running.add(call);
      void call.finally(() => running.delete(call));
    },
  });
  let stop: (reason: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    stop = resolve;
  });
  const onEnd = () => stop('stdin ended');
  const onStdoutError = (err: Error) => stop(`stdout failed (${(err as { code?: string }).code ?? err.message})`);
  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  process.stdin.on('end', onEnd);
  process.stdin.on('close', onEnd);
  process.stdout.on('error', onStdoutError);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  server.onclose = () => stop('closed');
  server.onerror = (err) => options.log(`${set.name} mcp: ${err.message}`);
  try {
    await server.connect(new StdioServerTransport(process.stdin, process.stdout));
    const reason = await stopped;
    await server.close().catch(() => undefined);
    // An unreferenced timer: when nothing else keeps the process alive, it does not either.
    const graceMs = options.graceMs ?? 2000;
    await Promise.race([Promise.allSettled([...running]), new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]);
    return { reason, unfinished: running.size };
  } finally {
    process.stdin.off('end', onEnd);
    process.stdin.off('close', onEnd);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // stdout keeps a listener: a late write by a call still running must not crash the process.
    process.stdout.off('error', onStdoutError);
    process.stdout.on('error', () => undefined);
  }
}
