// An MCP server over a tool set (mcp/tools.ts), and serving it over stdio or, one request at a
// time, over Streamable HTTP. The server is transport-agnostic: `createMcpServer` gives an SDK
// Server that any transport can connect to.
import {
  CallToolRequestSchema,
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  Server,
  StdioServerTransport,
  WebStandardStreamableHTTPServerTransport,
} from './sdk.ts';
import type { McpCallOutcome, McpToolSet } from './tools.ts';

/** The JSON-RPC error code MCP gives a resource that does not exist. */
const RESOURCE_NOT_FOUND = -32002;

export interface McpServerOptions {
  /** Where diagnostics go (never stdout: that is the protocol's). */
  log(line: string): void;
  /** Called with every tool call's promise while it runs (to wait for them at shutdown). */
  track?(call: Promise<unknown>): void;
  /** Aborts every call still running (the server is stopping): waits end as at their timeout. */
  stopping?: AbortSignal;
}

/** The tool result of an outcome: the JSON document as text, and as structured content. */
export function toolResult(outcome: McpCallOutcome) {
  const json = outcome.json as Record<string, unknown>;
  return { content: [{ type: 'text' as const, text: JSON.stringify(json) }], structuredContent: json, isError: outcome.isError };
}

/** An SDK server answering `tools/list` and `tools/call` from `set`. */
export function createMcpServer(set: McpToolSet, options: McpServerOptions): Server {
  const withResources = set.resourceTemplates.length > 0;
  const server = new Server(
    { name: set.name, version: set.version },
    { capabilities: { tools: {}, ...(withResources ? { resources: {} } : {}) }, instructions: set.instructions },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: set.tools }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    // The client cancelling the call (or giving up on it) ends a wait at once, as does a shutdown.
    const signal = options.stopping ? AbortSignal.any([extra.signal, options.stopping]) : extra.signal;
    const call = set.call(request.params.name, request.params.arguments ?? {}, signal);
    options.track?.(call);
    const outcome = await call;
    if (outcome.isError && outcome.cause !== undefined) {
      const cause = outcome.cause;
      options.log(`${set.name} mcp: tool ${request.params.name} failed: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
    }
    return toolResult(outcome);
  });
  if (withResources) {
    // Resources are read by URI (templates); there is no fixed list of them.
    server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: [] }));
    server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: set.resourceTemplates }));
    server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
      const uri = request.params.uri;
      const outcome = await set.read(uri);
      if (outcome === undefined) {
        throw new McpError(RESOURCE_NOT_FOUND, `no resource ${uri}`, { error: { code: 'NOT_FOUND', message: `no resource ${uri}` } });
      }
      if (outcome.isError) {
        const { code, message } = outcome.json.error;
        if (outcome.cause !== undefined) options.log(`${set.name} mcp: reading ${uri} failed: ${String((outcome.cause as Error).stack ?? outcome.cause)}`);
        // The JSON-RPC error carries the CLI's error document as its data.
        throw new McpError(
          code === 'NOT_FOUND' ? RESOURCE_NOT_FOUND : code === 'INTERNAL' ? ErrorCode.InternalError : ErrorCode.InvalidParams,
          message,
          outcome.json,
        );
      }
      return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(outcome.json) }] };
    });
  }
  return server;
}

/**
 * Answers one HTTP request of MCP's Streamable HTTP transport from `set`, statelessly: a server and
 * a transport for this request alone (no session), answering with JSON rather than a stream, so the
 * response ends when the calls it carries end. Only POST: a stateless server has no stream for a GET
 * to open and no session for a DELETE to end (405). A call still running when `options.stopping`
 * aborts (the client went away, the server is stopping) ends as a wait does at its timeout.
 */
export async function serveHttpRequest(set: McpToolSet, request: Request, options: McpServerOptions): Promise<Response> {
  if (request.method !== 'POST') {
    return new Response(
      JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: this MCP endpoint is stateless; send POST' }, id: null }),
      {
        status: 405,
        headers: { 'content-type': 'application/json', allow: 'POST' },
      },
    );
  }
  const server = createMcpServer(set, options);
  server.onerror = (err) => options.log(`${set.name} mcp: ${err.message}`);
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await server.connect(transport);
  try {
    return await transport.handleRequest(request);
  } finally {
    await server.close().catch(() => undefined);
  }
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
  const stopping = new AbortController();
  const server = createMcpServer(set, {
    log: options.log,
    stopping: stopping.signal,
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
    // Waits end at once; the calls still running (one that came with the last bytes of stdin has
    // just started) get the grace period to finish, and their answers are sent while the
    // connection is still open: a client that closed its side after its last request still gets
    // the answers. An unreferenced timer: when nothing else keeps the process alive, it does not either.
    stopping.abort();
    await new Promise((resolve) => setImmediate(resolve));
    const graceMs = options.graceMs ?? 2000;
    await Promise.race([Promise.allSettled([...running]), new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]);
    await new Promise((resolve) => setImmediate(resolve));
    await server.close().catch(() => undefined);
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
