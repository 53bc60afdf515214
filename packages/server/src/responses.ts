import { AppError, ConflictError, ExitCode, type ErrorJson, toAppError, UsageError, writeJson } from '@orch/store';

/** What the server answers: a status, headers and a body (a JSON document and a newline). */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Header carrying the exit code the CLI would have ended with. */
export const EXIT_CODE_HEADER = 'Orch-Exit-Code';

/**
 * The HTTP status of a command's error, by its exit code: 2 → 400, 3 → 404, 4 → 409 (FORBIDDEN →
 * 403, UNAUTHENTICATED → 401), 5 → 409 (LEASE_LOST), 6 → 503, anything else → 500.
 */
export function statusOf(error: AppError): number {
  switch (error.exitCode) {
    case ExitCode.usage:
      return 400;
    case ExitCode.notFound:
      return 404;
    case ExitCode.conflict:
      return error.code === 'FORBIDDEN' ? 403 : error.code === 'UNAUTHENTICATED' ? 401 : 409;
    case ExitCode.leaseLost:
      return 409;
    case ExitCode.unavailable:
      return 503;
    default:
      return 500;
  }
}

/** A JSON document as the CLI prints it with --json (the same bytes), with its newline. */
export function jsonText(value: unknown): string {
  const parts: string[] = [];
  writeJson({ write: (chunk: string) => void parts.push(chunk) }, value);
  parts.push('\n');
  return parts.join('');
}

/** The CLI's error document for `error`. */
export function errorJson(error: AppError): ErrorJson {
  const body: ErrorJson = { error: { code: error.code, message: error.message } };
  if (error.details !== undefined) body.error.details = error.details;
  return body;
}

/** The answer for anything a command (or the server around it) threw. */
export function errorAnswer(err: unknown, extra: Record<string, string> = {}): HttpAnswer {
  const error = err instanceof ServerError ? err : toAppError(err);
  const status = err instanceof ServerError ? err.status : statusOf(error);
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      [EXIT_CODE_HEADER]: String(error.exitCode),
      // RFC 6750: a 401 says which scheme to use.
      ...(error.code === 'UNAUTHENTICATED' ? { 'www-authenticate': 'Bearer realm="orch"' } : {}),
      ...extra,
      ...(err instanceof ServerError ? err.headers : {}),
    },
    // As the CLI prints an error with --json: one line.
    body: `${JSON.stringify(errorJson(error))}\n`,
  };
}

/**
 * A refusal by the server itself (no command ran): its own status, and the exit code a remote CLI
 * ends with (UNAUTHENTICATED 401 → 4, UNKNOWN_COMMAND 404 → 2, TOO_LARGE 413 → 2, RATE_LIMITED
 * 429 → 6, ...).
 */
export class ServerError extends AppError {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    exitCode: (typeof ExitCode)[keyof typeof ExitCode],
    message: string,
    options: { details?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(code, exitCode, message, options.details === undefined ? {} : { details: options.details });
    this.status = status;
    this.headers = options.headers ?? {};
  }
}

/** The server's 404 for a path it does not serve (exit 2 at a remote CLI). */
export function unknownRoute(pathname: string): ServerError {
  return new ServerError(
    404,
    'UNKNOWN_COMMAND',
    ExitCode.usage,
    `no such route: ${JSON.stringify(pathname.slice(0, 200))}; commands are POST /v1/<program>/<command words> (see /openapi.json)`,
  );
}

/** A 200 answer streaming Server-Sent Events (`body`): not cached, not buffered by a proxy (nginx's `X-Accel-Buffering`). */
export function sseResponse(body: ReadableStream<Uint8Array>): Response {
  return new Response(body, {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', [EXIT_CODE_HEADER]: '0' },
  });
}

/** Why the server could not listen, as an error with an exit code a user can act on; anything else stays what it is. */
export function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (err.code === 'EADDRINUSE') {
    return new ConflictError(`${where} is in use (another orch serve?): choose another --port, or --port 0 for any free one`, { host, port });
  }
  if (err.code === 'EACCES') return new UsageError(`not allowed to listen on ${where} (ports below 1024 need privileges): choose another --port`);
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') {
    return new UsageError(`--host ${JSON.stringify(host)} is not an address of this machine (${err.code})`);
  }
  return err;
}
