// `orch serve`: the HTTP server. Loaded only when `serve` runs (the orch registry imports this
// module lazily); the server itself (app.ts and the HTTP library) is a file of its own beside the
// bundled executable, orch-server.cjs (scripts/build.mjs), with its own copy of the store: an error
// it throws is carried over as this bundle's AppError (sameError).
import path from 'node:path';
import {
  AppError,
  ExitCode,
  type ExitCodeValue,
  UsageError,
  readTextFile,
  defineCommand,
  intFlag,
  isPostgresUrl,
  openDatabase,
  type CommandContext,
} from '@orch/store';
import { z } from 'zod';
import { countActiveTokens } from './auth.ts';
import { DEFAULT_LIMITS } from './limits.ts';

const input = z
  .object({
    host: z.string().min(1, 'must not be empty').default('127.0.0.1'),
    port: intFlag(0, 65_535).default(7420),
    publicUrl: z
      .string()
      .regex(/^https?:\/\/[A-Za-z0-9.\-[\]:]+(\/[A-Za-z0-9._~\-/]*)?$/, 'must be an http:// or https:// URL (host, port, path)')
      .transform((u) => u.replace(/\/+$/, ''))
      .optional(),
    tlsCert: z.string().min(1, 'must not be empty').optional(),
    tlsKey: z.string().min(1, 'must not be empty').optional(),
    insecureHttp: z.boolean().default(false),
    rateLimit: intFlag(0, 1_000_000).default(DEFAULT_LIMITS.ratePerSecond),
    rateBurst: intFlag(1, 1_000_000).default(DEFAULT_LIMITS.burst),
    maxStreams: intFlag(1, 100_000).default(DEFAULT_LIMITS.maxLong),
  })
  .superRefine((v, ctx) => {
    if ((v.tlsCert === undefined) !== (v.tlsKey === undefined))
      ctx.addIssue({ code: 'custom', path: ['tlsCert'], message: 'give --tls-cert and --tls-key together' });
  });

/** Whether `host` is a loopback address (only this machine can connect). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === '[::1]';
}

async function loadApp(): Promise<typeof import('./app.ts')> {
  try {
    return await import('./app.ts');
  } catch (err) {
    throw new AppError(
      'INTERNAL',
      ExitCode.internal,
      `the HTTP server cannot load (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); copy the whole folder the executable came from (orch-server.cjs belongs beside it)`,
      { cause: err },
    );
  }
}

/**
 * Refuses a set-up that would expose the database: a non-loopback bind without tokens, or without
 * TLS; and --insecure-http (a reverse proxy in front, whose requests all come from loopback) without tokens.
 */
async function checkExposure(ctx: CommandContext, v: z.output<typeof input>): Promise<void> {
  if (isLoopbackHost(v.host) && !v.insecureHttp) return;
  if (v.tlsCert === undefined && !v.insecureHttp) {
    throw new UsageError(
      `--host ${v.host} is reachable from other machines: give --tls-cert and --tls-key (or put a TLS reverse proxy in front and pass --insecure-http)`,
    );
  }
  const store = await openDatabase({ path: ctx.dbPath, ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}) });
  try {
    if ((await countActiveTokens(store)) === 0) {
      throw new UsageError(
        `${isLoopbackHost(v.host) ? '--insecure-http says a reverse proxy forwards other machines to this server' : `--host ${v.host} is reachable from other machines`} and the database has no token yet: create one first with \`orch --db ${ctx.dbPath} token create --role leader\``,
      );
    }
  } finally {
    await store.close();
  }
}

export const command = defineCommand({
  name: 'serve',
  summary: 'Serve the database over HTTP: the commands of orch and inbox, live events, for workers on other machines',
  description:
    'Runs until SIGINT or SIGTERM (then stops accepting, ends waits and event streams, lets running requests finish ' +
    'for up to 5 s, and exits 0). Prints one line with the URL and the board URL once listening (--json: {"url", "db", "board"}; board null when its files were not built). Every command ' +
    'of orch and inbox (not init, work, copy, mcp, serve, token) is POST /v1/<program>/<command words> with a JSON ' +
    'body of its flags in camelCase, answering exactly the --json document of the CLI, with header Orch-Exit-Code; ' +
    'GET /v1/runs/RUN/events, /v1/threads/THREAD/messages and /v1/changes are Server-Sent Events; GET / is the live ' +
    'web board (docs/board.md); /, /assets/*, /healthz, /readyz and /openapi.json need no token. A CLI given --db http://HOST:PORT speaks to it. Loopback (the default --host) ' +
    'without any token: every local caller is the leader. Any other --host needs a token in the database (`orch ' +
    'token create`) and TLS (--tls-cert/--tls-key), or --insecure-http behind a TLS reverse proxy (which also needs a token ' +
    'on a loopback --host: every request then needs one). Limits per token: ' +
    '--rate-limit requests a second (burst --rate-burst; 429 with Retry-After past them) and --max-streams waits and ' +
    'event streams open at once. See docs/server.md.',
  flags: {
    host: { type: 'string', describe: 'Address to listen on (default 127.0.0.1; anything else needs a token and TLS)' },
    port: { type: 'string', describe: 'Port (default 7420; 0 picks a free one, printed)' },
    'public-url': {
      type: 'string',
      describe: 'The URL workers reach this server at, put in the briefs dispatch renders (default: the URL each request came to)',
    },
    'tls-cert': { type: 'string', describe: 'TLS certificate file (PEM); with --tls-key' },
    'tls-key': { type: 'string', describe: 'TLS private key file (PEM); with --tls-cert' },
    'insecure-http': {
      type: 'boolean',
      describe: 'A TLS reverse proxy is in front: allow plain HTTP on a non-loopback --host; on any --host, every request needs a token',
    },
    'rate-limit': { type: 'string', describe: `Requests a second per token (default ${DEFAULT_LIMITS.ratePerSecond}; 0: no limit)` },
    'rate-burst': { type: 'string', describe: `Requests at once above the rate per token (default ${DEFAULT_LIMITS.burst})` },
    'max-streams': { type: 'string', describe: `Waits and event streams open at once per token (default ${DEFAULT_LIMITS.maxLong})` },
  },
  examples: [
    '--db ./coord.db serve',
    '--db ./coord.db serve --host 0.0.0.0 --port 7420 --tls-cert cert.pem --tls-key key.pem --public-url https://orch.example:7420',
  ],
  input,
  ownsStdio: true,
  run: async (ctx, v) => {
    if (/^https?:\/\//i.test(ctx.dbPath))
      throw new UsageError('`orch serve` serves a database: give --db a SQLite file or a postgres:// URL, not a server URL');
    await checkExposure(ctx, v);
    const { startServer } = await loadApp();
    const dbPath = isPostgresUrl(ctx.dbPath) ? ctx.dbPath : path.resolve(ctx.cwd, ctx.dbPath);
    const server = await sameError(() =>
      startServer({
        dbPath,
        host: v.host,
        port: v.port,
        publicUrl: v.publicUrl,
        insecureHttp: v.insecureHttp,
        tls:
          v.tlsCert !== undefined && v.tlsKey !== undefined ? { cert: readPem(ctx, v.tlsCert, 'tls-cert'), key: readPem(ctx, v.tlsKey, 'tls-key') } : undefined,
        cwd: ctx.cwd,
        nativeBinding: ctx.nativeBinding,
        limits: { ratePerSecond: v.rateLimit, burst: v.rateBurst, maxLong: v.maxStreams },
        ...(ctx.clock ? { clock: ctx.clock } : {}),
        ids: ctx.ids,
        log: (line) => say(process.stderr, `${line}\n`),
      }),
    );
    const shown = isPostgresUrl(dbPath) ? '(PostgreSQL)' : dbPath;
    const board = server.board ?? null;
    say(
      process.stdout,
      ctx.json
        ? `${JSON.stringify({ url: server.url, db: shown, board })}\n`
        : `orch serve: listening on ${server.url} (db ${shown}); board: ${board ?? 'not built (npm run build)'}\n`,
    );
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const stop = (s: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve(s);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      ctx.signal?.addEventListener('abort', () => stop('SIGTERM'), { once: true });
    });
    const { unfinished } = await server.close();
    say(process.stderr, `orch serve: stopped (${signal}${unfinished > 0 ? `, ${unfinished} request(s) cut off` : ''})\n`);
    if (unfinished > 0) setTimeout(() => process.exit(), 500).unref();
    return { stopped: signal, unfinished };
  },
  text: () => '',
});

/** A PEM file of the server's own configuration. @throws ValidationError (2) when it cannot be read. */
function readPem(ctx: CommandContext, file: string, flag: string): string {
  return readTextFile({ cwd: ctx.cwd }, file, flag);
}

/**
 * `work()`, with an error of the server's bundle (its own AppError class: same code, exit code,
 * message and details) thrown again as this bundle's AppError, so it is reported as such.
 */
async function sameError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AppError || typeof err !== 'object' || err === null) throw err;
    const e = err as { code?: unknown; exitCode?: unknown; message?: unknown; details?: unknown };
    if (typeof e.code === 'string' && typeof e.exitCode === 'number' && typeof e.message === 'string') {
      throw new AppError(e.code, e.exitCode as ExitCodeValue, e.message, { details: e.details, cause: err });
    }
    throw err;
  }
}

function say(stream: NodeJS.WritableStream, text: string): void {
  try {
    stream.write(text);
  } catch {
    // nowhere left to write
  }
}
