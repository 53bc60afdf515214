import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { inboxMigrations } from '@orch/inbox';
import {
  type Clock,
  ExitCode,
  type IdGenerator,
  LONG_LIVED_RECONNECT_MS,
  assertSchemaCurrent,
  isPostgresUrl,
  openDatabase,
  randomIds,
  schemaVersions,
  systemClock,
  toAppError,
  type Store,
} from '@orch/store';
import { type Principal, authenticate, isCrossSite, isLoopbackHost } from './auth.ts';
import { BoardFiles, findBoardDir } from './board.ts';
import { addBoardRoutes } from './board-routes.ts';
import { openStream, type StreamKind } from './events.ts';
import { type ServerCommandEnv, commandContext, handleCommand, principalKey, untilStopping } from './handle.ts';
import { handleMcp } from './mcp-http.ts';
import { Hono, serve } from './http-lib.ts';
import type { Context } from 'hono';
import { Idempotency, ensureIdempotencyTable } from './idempotency.ts';
import { DEFAULT_LIMITS, type LimitOptions, Limits } from './limits.ts';
import { openApiDocument } from './openapi.ts';
import { CommitPulse } from './pulse.ts';
import { type HttpAnswer, ServerError, errorAnswer, jsonText, listenError, sseResponse, unknownRoute } from './responses.ts';
import { routeTable } from './routes.ts';

/** The largest request body (a command's input with a --body, --payload-json and --body-file of 1 MiB each, JSON-escaped). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** orch-worker-brief's --dispatch-json may be up to 64 MiB. */
const MAX_BRIEF_BODY_BYTES = 66 * 1024 * 1024;
/** PostgreSQL connections the server's commands share. */
const PG_POOL_SIZE = 10;
/** Requests still running at shutdown get this long before the server stops anyway. */
export const SHUTDOWN_GRACE_MS = 5000;

export interface ServerOptions {
  /** The served database: a SQLite file path (absolute) or a PostgreSQL URL. */
  dbPath: string;
  host: string;
  /** 0: any free port. */
  port: number;
  /** The URL briefs point workers at (default: the URL each request came to). */
  publicUrl?: string | undefined;
  /** `--insecure-http`: tokens are accepted over plain HTTP from other machines (behind a TLS proxy). */
  insecureHttp?: boolean | undefined;
  /** PEM text of the certificate (chain) and its private key: serve HTTPS. */
  tls?: { cert: string; key: string } | undefined;
  cwd: string;
  nativeBinding?: string | undefined;
  limits?: Partial<LimitOptions>;
  /** Tests inject these; otherwise the store's clock and random ids. */
  clock?: Clock | undefined;
  ids?: IdGenerator | undefined;
  /** Where one line per refused or failed request goes (default nowhere). */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** `http://127.0.0.1:7420` (the port chosen when 0 was asked for). */
  url: string;
  port: number;
  /** The board's URL (`<url>/`), or undefined when the server has no board files (not built). */
  board: string | undefined;
  /** Stops accepting, ends waits and streams, lets running requests finish within the grace; closes the database. */
  close(graceMs?: number): Promise<{ unfinished: number }>;
}

/**
 * Starts `orch serve`'s HTTP server on an open, initialised database. Resolves once it listens.
 *
 * @throws DatabaseUnavailableError (exit 6) when the database cannot be opened or is not initialised.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  // One store for the server's own reads and writes and the commit watch; on PostgreSQL also the pool
  // every command shares (a connection costs tens of milliseconds to open). On SQLite the commands
  // share a second connection (opening one per request, with its prepared statements, was about a
  // fifth of a claim's time), except waits, which open their own (see commandContext): the watch
  // and the waits see the shared connection's commits, since PRAGMA data_version moves only for
  // other connections' commits.
  const store = await openDatabase({
    path: options.dbPath,
    reconnectMs: LONG_LIVED_RECONNECT_MS,
    ...(isPostgresUrl(options.dbPath) ? { poolSize: PG_POOL_SIZE } : {}),
    ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}),
  });
  let pulse: CommitPulse | undefined;
  let shared: Store | undefined;
  try {
    await assertSchemaCurrent(store, inboxMigrations, `run \`inbox --db ${options.dbPath} init\` first`);
    await ensureIdempotencyTable(store);
    const clock = options.clock ?? systemClock;
    shared =
      store.kind === 'postgres'
        ? store
        : await openDatabase({ path: options.dbPath, ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}) });
    const idempotency = new Idempotency(
      store,
      () => (options.clock ?? store.clock).now(),
      (err) => options.log?.(`orch serve: an answer could not be kept for its Idempotency-Key: ${err instanceof Error ? err.message : String(err)}`),
    );
    await idempotency.prune();
    pulse = new CommitPulse(store, clock);
    const stopping = new AbortController();
    // Every open wait and stream listens for the server stopping (and stops listening when it ends): many
    // at once is the design, not a leak, so Node's warning past ten listeners would only mislead.
    setMaxListeners(0, stopping.signal);
    const env: ServerCommandEnv = {
      dbPath: options.dbPath,
      cwd: options.cwd,
      nativeBinding: options.nativeBinding,
      clock: options.clock,
      ids: options.ids ?? randomIds,
      routes: routeTable(),
      idempotency,
      limits: new Limits({ ...DEFAULT_LIMITS, ...options.limits }, clock),
      stopping: stopping.signal,
      shared: sameFile(shared, options.dbPath),
    };
    const board = new BoardFiles(findBoardDir());
    const app = buildApp(env, store, pulse, clock, options, board);
    let inFlight = 0;
    const counted = async (request: Request, bindings: unknown) => {
      inFlight++;
      try {
        return await app.fetch(request, bindings as Bindings);
      } finally {
        inFlight--;
      }
    };
    let httpServer: ReturnType<typeof serve> | undefined;
    const listening = new Promise<AddressInfo>((resolve, reject) => {
      const server = serve(
        {
          fetch: counted,
          port: options.port,
          hostname: options.host,
          ...(options.tls ? { createServer: https.createServer, serverOptions: { cert: options.tls.cert, key: options.tls.key } } : {}),
        },
        (info) => resolve(info),
      );
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, options.host, options.port)));
      httpServer = server;
    });
    const info = await listening;
    const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
    const url = `${options.tls ? 'https' : 'http'}://${shownHost}:${info.port}`;
    const prune = setInterval(() => void idempotency.prune().catch(() => undefined), 60 * 60 * 1000);
    prune.unref();
    const openedPulse = pulse;
    return {
      url,
      port: info.port,
      board: board.dir === undefined ? undefined : `${url}/`,
      close: async (graceMs = SHUTDOWN_GRACE_MS) => {
        clearInterval(prune);
        const server = httpServer as unknown as import('node:http').Server;
        let done = false;
        const closed = new Promise<void>((resolve) => server.close(() => resolve())).then(() => {
          done = true;
        });
        stopping.abort();
        // Answers still being written finish; a connection goes once it is idle (keep-alive ones at once).
        const deadline = systemClock.monotonicMs() + graceMs;
        while (!done && systemClock.monotonicMs() < deadline) {
          server.closeIdleConnections();
          await Promise.race([closed, systemClock.sleep(50)]);
        }
        const unfinished = inFlight;
        server.closeAllConnections();
        await closed;
        await openedPulse.close();
        if (shared !== store) await shared?.close();
        await store.close();
        return { unfinished };
      },
    };
  } catch (err) {
    await pulse?.close();
    if (shared !== store) await shared?.close();
    await store.close();
    throw err;
  }
}

export type Bindings = { incoming: import('node:http').IncomingMessage };

function buildApp(env: ServerCommandEnv, store: Store, pulse: CommitPulse, clock: Clock, options: ServerOptions, board: BoardFiles) {
  const app = new Hono<{ Bindings: Bindings }>();
  const send = (answer: HttpAnswer) => new Response(answer.body, { status: answer.status, headers: answer.headers });
  const refuse = (err: unknown) => {
    const answer = errorAnswer(err);
    if (answer.status >= 500 && toAppError(err).code === 'INTERNAL') options.log?.(`orch serve: ${String((err as Error)?.stack ?? err)}`);
    return send(answer);
  };
  // Bound beyond loopback, or behind a reverse proxy (--insecure-http): a request from loopback may be
  // the proxy's, forwarding anyone, so never the tokenless local user.
  const loopbackServer =
    options.insecureHttp !== true && isLoopbackHost(options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host);
  const peer = (c: { env: Bindings }) => {
    const address = c.env.incoming.socket.remoteAddress ?? '';
    return {
      loopback: /^(127\.|::1$|::ffff:127\.)/.test(address),
      tls: options.tls !== undefined,
      insecureHttp: options.insecureHttp === true,
      loopbackServer,
    };
  };
  const who = (c: { env: Bindings; req: { header(name: string): string | undefined } }): Promise<Principal> =>
    authenticate(store, c.req.header('authorization'), {
      ...peer(c),
      host: c.req.header('host') ?? '',
      proxied: ['forwarded', 'x-forwarded-for', 'x-real-ip'].some((name) => c.req.header(name) !== undefined),
      crossSite: isCrossSite(c.req.header('sec-fetch-site'), c.req.header('origin')),
    });
  const publicDb = (c: { req: { header(name: string): string | undefined } }) => {
    if (options.publicUrl !== undefined) return options.publicUrl;
    const host = c.req.header('host') ?? '';
    // What a brief tells a worker: only a plain host[:port] from the request, never other text.
    const safe = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host) ? host : `${options.host}:${options.port}`;
    return `${options.tls ? 'https' : 'http'}://${safe}`;
  };

  // The request target as sent, before any URL clean-up: a path that would only be served once
  // `..`, `.` or escaped separators were resolved is refused, not resolved.
  app.use('*', async (c, next) => {
    const raw = (c.env.incoming.url ?? '').split('?')[0] ?? '';
    if (!/^(\/[A-Za-z0-9_.~-]+)+$|^\/$/.test(raw) || /(^|\/)\.\.?(\/|$)/.test(raw)) return refuse(unknownRoute(raw));
    await next();
  });
  app.get('/healthz', () => send({ status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: jsonText({ ok: true }) }));
  app.get('/readyz', async () => {
    try {
      await assertSchemaCurrent(store, inboxMigrations, `run \`inbox --db ${options.dbPath} init\``);
      const schema = await schemaVersions(store);
      return send({ status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: jsonText({ ok: true, schema }) });
    } catch (err) {
      return refuse(err);
    }
  });
  let openapi: Promise<unknown> | undefined;
  app.get('/openapi.json', async () => {
    openapi ??= openApiDocument(env.routes);
    return send({ status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: jsonText(await openapi) });
  });
  app.post('/v1/*', async (c) => {
    try {
      const pathname = new URL(c.req.url).pathname;
      const m = /^\/v1\/([a-z][a-z-]*(?:\/[a-z][a-z-]*)*)$/.exec(pathname);
      if (!m) throw unknownRoute(pathname);
      const path = m[1] as string;
      if (!env.routes.has(path)) throw unknownRoute(pathname);
      const principal = await who(c);
      // No default: a web page can POST a body without a Content-Type (an untyped Blob, `no-cors`)
      // and no preflight, so a missing one would let any site drive a tokenless loopback server.
      const type = c.req.header('content-type') ?? '';
      if (!/^application\/json\s*(;|$)/i.test(type)) {
        throw new ServerError(415, 'VALIDATION', ExitCode.usage, 'the request body must be JSON (Content-Type: application/json)', {
          details: [{ path: 'Content-Type', message: 'must be application/json' }],
        });
      }
      const max = path === 'orch-worker-brief' ? MAX_BRIEF_BODY_BYTES : MAX_BODY_BYTES;
      // What one caller's bodies may hold at once, read and being run (a body is kept whole): one
      // of the largest fits, and then BODY_BUDGET_BYTES more; past it 429 (a client waits and retries).
      const releases: (() => void)[] = [];
      const hold = (bytes: number) => releases.push(env.limits.holdBody(principalKey(principal), bytes, max + BODY_BUDGET_BYTES));
      let answer: HttpAnswer;
      try {
        const body = await readBody(c.req.raw, max, hold);
        answer = await handleCommand(env, {
          principal,
          path,
          body,
          idempotencyKey: c.req.header('idempotency-key'),
          signal: c.req.raw.signal,
          publicDb: publicDb(c),
        });
      } finally {
        for (const release of releases) release();
      }
      if (answer.status === 500) options.log?.(`orch serve: /v1/${path}: ${answer.body.trim()}`);
      return send(answer);
    } catch (err) {
      return refuse(err);
    }
  });
  const stream = (kind: StreamKind) => async (c: Context<{ Bindings: Bindings }, '/v1/x/:id/y'>) => {
    try {
      const principal = await who(c);
      const id = c.req.param('id');
      const body = await openStream(env, pulse, clock, {
        principal,
        kind,
        id: decodeURIComponent(id),
        after: c.req.query('after'),
        lastEventId: c.req.header('last-event-id'),
        signal: c.req.raw.signal,
        publicDb: publicDb(c),
        reauthenticate: async () => void (await who(c)),
      });
      return sseResponse(body);
    } catch (err) {
      return refuse(err);
    }
  };
  // MCP over Streamable HTTP: the token decides the tool set (packages/server/src/mcp-http.ts).
  app.all('/mcp', async (c) => {
    try {
      const principal = await who(c);
      env.limits.take(principalKey(principal));
      // A tool call may wait (up to its timeout): each one holds one of the caller's long-request slots.
      const release = env.limits.open(principalKey(principal));
      const waiting = untilStopping(env, c.req.raw.signal);
      try {
        return await handleMcp(c.req.raw, principal, commandContext(env, principal, waiting.signal, publicDb(c), { waits: true }));
      } finally {
        waiting.release();
        release();
      }
    } catch (err) {
      return refuse(err);
    }
  });
  addBoardRoutes(app, { board, env, pulse, clock, who, refuse });
  const runs = stream('run');
  const threads = stream('thread');
  app.get('/v1/runs/:id/events', (c) => runs(c as unknown as Context<{ Bindings: Bindings }, '/v1/x/:id/y'>));
  app.get('/v1/threads/:id/messages', (c) => threads(c as unknown as Context<{ Bindings: Bindings }, '/v1/x/:id/y'>));
  app.all('*', (c) => refuse(unknownRoute(new URL(c.req.url).pathname)));
  app.onError((err) => refuse(err));
  return app;
}

/**
 * The shared store while it is still the file at `dbPath`; undefined once that file was moved,
 * deleted or replaced (a command then opens the path itself, and says what is wrong with it),
 * so nothing is written into a file nobody will read again. A stat per request: microseconds.
 */
function sameFile(shared: Store, dbPath: string): () => Store | undefined {
  if (shared.kind !== 'sqlite') return () => shared;
  const inode = (file: string) => {
    try {
      const st = fs.statSync(file);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  };
  const opened = inode(dbPath);
  return () => (opened !== undefined && inode(dbPath) === opened ? shared : undefined);
}

/**
 * The body as text, refused past `max` bytes without keeping more. What follows is read and thrown
 * away up to DRAIN_FACTOR × `max` so the client gets the 413 (a client still sending would
 * otherwise see its connection cut); past that the connection is closed.
 *
 * @throws ServerError TOO_LARGE (413).
 */
async function readBody(request: Request, max: number, hold: (bytes: number) => void): Promise<string> {
  const tooLarge = (close: boolean) =>
    new ServerError(413, 'TOO_LARGE', ExitCode.usage, `the request body is larger than ${max} bytes`, { headers: close ? { connection: 'close' } : {} });
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > DRAIN_FACTOR * max) throw tooLarge(true);
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > DRAIN_FACTOR * max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(true);
    }
    if (total <= max) {
      hold(value.byteLength);
      chunks.push(value);
    }
  }
  if (total > max) throw tooLarge(false);
  return Buffer.concat(chunks).toString('utf8');
}

/** Request bodies one caller may have in memory at once beyond one of the largest (see holdBody). */
const BODY_BUDGET_BYTES = 32 * 1024 * 1024;

/** How much of an oversized body is read (and dropped) to answer 413 in order: see readBody. */
const DRAIN_FACTOR = 4;
