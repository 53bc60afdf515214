import { createHash } from 'node:crypto';
import {
  type Clock,
  type CommandContext,
  type CommandDefinition,
  ExitCode,
  ForbiddenError,
  type IdGenerator,
  type Store,
  LONG_LIVED_RECONNECT_MS,
  ValidationError,
  parseBoundedJson,
  validateCommandInput,
} from '@orch/store';
import { z } from 'zod';
import { type Principal, authorize, principalContext } from './auth.ts';
import { type Idempotency, checkKey } from './idempotency.ts';
import type { Limits } from './limits.ts';
import { EXIT_CODE_HEADER, type HttpAnswer, ServerError, errorAnswer, jsonText } from './responses.ts';
import type { Route } from './routes.ts';

/** What every command a server runs shares. */
export interface ServerCommandEnv {
  /** The served database (an absolute file path or a PostgreSQL URL). */
  dbPath: string;
  cwd: string;
  nativeBinding?: string | undefined;
  /** Injected by tests; otherwise undefined (the store's clock judges leases). */
  clock?: Clock | undefined;
  ids: IdGenerator;
  routes: Map<string, Route>;
  idempotency: Idempotency;
  limits: Limits;
  /** Aborts when the server stops: every wait ends as at its timeout. */
  stopping: AbortSignal;
  /**
   * The store the commands share (on SQLite one connection, apart from the server's own, which
   * watches for commits; on PostgreSQL the server's pool), or undefined: each opens its own.
   */
  shared?: (() => Store | undefined) | undefined;
}

/** One request to run a command. */
export interface CommandRequest {
  principal: Principal;
  /** The URL path after `/v1/`: `inbox/claim`, `orch/run/init`, `orch-worker-brief`. */
  path: string;
  /** The request body as sent (JSON text). */
  body: string;
  /** The Idempotency-Key header, if any. */
  idempotencyKey?: string | undefined;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  /** What briefs rendered by this request tell workers to pass as --db: the server's URL. */
  publicDb: string;
}

/** The key the limits and kept answers of `principal` are filed under. */
export function principalKey(principal: Principal): string {
  return principal.kind === 'local' ? 'local' : `token:${principal.id}`;
}

/**
 * Runs one command for a request and answers as the CLI would: 200 with its `--json` document, or
 * the CLI's error document with a status by its exit code; header `Orch-Exit-Code` either way.
 * Never throws. The framework-agnostic core of the server: the HTTP library only moves bytes.
 */
export async function handleCommand(env: ServerCommandEnv, request: CommandRequest): Promise<HttpAnswer> {
  try {
    const route = env.routes.get(request.path);
    if (!route) {
      throw new ServerError(404, 'UNKNOWN_COMMAND', ExitCode.usage, `no command at /v1/${request.path}; see /openapi.json`);
    }
    const command = route.command === '$0' ? route.program : `${route.program} ${route.command}`;
    authorize(request.principal, route.program, route.command);
    const who = principalKey(request.principal);
    env.limits.take(who);
    const run = () => runCommand(env, route, request);
    if (request.idempotencyKey === undefined) return await run();
    const key = checkKey(request.idempotencyKey);
    const bodySha256 = createHash('sha256').update(request.body).digest('hex');
    return await env.idempotency.run({ principal: who, key, command, bodySha256 }, keepAnswer(route, request.body), run);
  } catch (err) {
    return errorAnswer(err);
  }
}

/**
 * Whether the answer to this request is kept for a retry (route.keep), but never for `inbox show`
 * without `lease`: it writes nothing, and keeping its pages (up to 8 MiB each, for 24 hours) let
 * any reader grow the database by that much per call.
 */
function keepAnswer(route: Route, body: string): boolean {
  if (!route.keep) return false;
  if (route.path !== 'inbox/show') return true;
  try {
    const lease = (JSON.parse(body) as { lease?: unknown } | null)?.lease;
    return lease !== undefined && lease !== null;
  } catch {
    return true;
  }
}

/** Parses, validates and runs the command of `route`. Never throws. */
async function runCommand(env: ServerCommandEnv, route: Route, request: CommandRequest): Promise<HttpAnswer> {
  let release: (() => void) | undefined;
  try {
    const def = await route.load();
    const { input: raw, files } = parseBody(def, request.body);
    if (request.principal.kind === 'token' && request.principal.role === 'worker' && route.program === 'inbox' && route.command === 'list') {
      forceAgent(raw, request.principal.agent);
    }
    const input = validateCommandInput(def, raw);
    const long = isLong(route, input);
    if (long) release = env.limits.open(principalKey(request.principal));
    const waiting = untilStopping(env, request.signal);
    let result: unknown;
    try {
      result = await def.run(commandContext(env, request.principal, waiting.signal, request.publicDb, { files, waits: long }), input);
    } finally {
      waiting.release();
    }
    const exitCode = def.exitCode?.(result) ?? ExitCode.ok;
    return { status: 200, headers: { 'content-type': 'application/json; charset=utf-8', [EXIT_CODE_HEADER]: String(exitCode) }, body: jsonText(result) };
  } catch (err) {
    return errorAnswer(err);
  } finally {
    release?.();
  }
}

/**
 * `signal`, also aborted once the server stops (env.stopping), until `release()`: what a request's
 * command waits with. Not AbortSignal.any(): on Node 20 every signal it makes stays referenced from
 * each source for as long as that source lives, so one per request on the server's own signal would
 * grow the heap with every request ever answered.
 */
export function untilStopping(env: Pick<ServerCommandEnv, 'stopping'>, signal: AbortSignal): { signal: AbortSignal; release(): void } {
  const merged = new AbortController();
  const abort = () => merged.abort();
  if (signal.aborted || env.stopping.aborted) abort();
  env.stopping.addEventListener('abort', abort, { once: true });
  signal.addEventListener('abort', abort, { once: true });
  return {
    signal: merged.signal,
    release: () => {
      env.stopping.removeEventListener('abort', abort);
      signal.removeEventListener('abort', abort);
    },
  };
}

/**
 * The context a served command runs with: the served database, long-lived reconnects, `signal`
 * (untilStopping's: the client going away or the server stopping) ending waits, the files the client sent (the server's disk is never
 * read for a file flag), and what the principal limits (principalContext: a worker token's agent, a
 * token's name as author).
 */
export function commandContext(
  env: ServerCommandEnv,
  principal: Principal,
  signal: AbortSignal,
  publicDb: string,
  options: { files?: ReadonlyMap<string, string>; waits?: boolean } = {},
): CommandContext {
  // A waiting command on SQLite opens its own connection: it is woken by PRAGMA data_version,
  // which moves only for other connections' commits (the shared connection's included).
  const shared = env.shared?.();
  const store = options.waits && shared?.kind === 'sqlite' ? undefined : shared;
  return {
    dbPath: env.dbPath,
    ...(env.clock ? { clock: env.clock } : {}),
    ids: env.ids,
    cwd: env.cwd,
    ...(env.nativeBinding ? { nativeBinding: env.nativeBinding } : {}),
    reconnectMs: LONG_LIVED_RECONNECT_MS,
    signal,
    files: options.files ?? new Map(),
    publicDb,
    ...(store ? { store } : {}),
    // A worker token's agent as the one agent it acts as; a token's name as the author it writes as.
    ...principalContext(principal),
  };
}

/** Waits, and claims that wait: counted against the caller's long requests. */
function isLong(route: Route, input: unknown): boolean {
  if (route.command === 'wait') return true;
  if (route.program === 'inbox' && route.command === 'claim') return Number((input as { waitSeconds?: unknown }).waitSeconds ?? 0) > 0;
  return false;
}

/** A worker token lists its own agent's threads only. */
function forceAgent(raw: Record<string, unknown>, agent: string | undefined): void {
  if (agent === undefined) return;
  if (raw.agent !== undefined && raw.agent !== agent)
    throw new ForbiddenError(`this token acts as ${agent}; it cannot list ${String(raw.agent)}'s threads`, { agent });
  raw.agent = agent;
}

/**
 * A request body as the command's raw input: one JSON object of its input keys (camelCase, as its
 * flags), flag values as strings or booleans (whole numbers also as JSON integers), a `rest`
 * command's words as an array of strings, and the files the client read under `$files`.
 *
 * @throws ValidationError (2) for a body that is not such an object, or names a key the command does not take.
 */
export function parseBody(def: CommandDefinition, text: string): { input: Record<string, unknown>; files: ReadonlyMap<string, string> } {
  let body: unknown;
  try {
    body = text.trim() === '' ? {} : parseBoundedJson(text);
  } catch (err) {
    throw new ValidationError(`the request body is not valid JSON (${(err as Error).message})`, [{ path: '(body)', message: 'not valid JSON' }]);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('the request body must be a JSON object of the command input', [{ path: '(body)', message: 'must be a JSON object' }]);
  }
  const problems: { path: string; message: string }[] = [];
  const types = new Map<string, 'string' | 'boolean'>();
  for (const [flag, spec] of Object.entries(def.flags)) types.set(camelCase(flag), spec.type);
  const integers = integerKeys(def);
  const input: Record<string, unknown> = {};
  let files = new Map<string, string>();
  for (const [key, value] of Object.entries(body)) {
    if (key === '$files') {
      files = sentFiles(value, problems);
      continue;
    }
    if (def.rest && key === def.rest.key) {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) problems.push({ path: key, message: 'must be an array of strings' });
      else input[key] = value;
      continue;
    }
    const type = types.get(key);
    if (type === undefined) {
      problems.push({ path: key, message: 'is not an input of this command' });
      continue;
    }
    if (value === null) continue;
    if (integers.has(key) && typeof value === 'number' && Number.isSafeInteger(value)) input[key] = String(value);
    else if (typeof value === type) input[key] = value;
    else problems.push({ path: key, message: integers.has(key) ? 'must be a whole number (or its digits as a string)' : `must be a ${type}` });
  }
  if (problems.length > 0) throw new ValidationError(problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems);
  return { input, files };
}

function sentFiles(value: unknown, problems: { path: string; message: string }[]): Map<string, string> {
  const files = new Map<string, string>();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push({ path: '$files', message: 'must be an object of path: text' });
    return files;
  }
  for (const [file, text] of Object.entries(value)) {
    if (typeof text !== 'string') problems.push({ path: `$files.${file}`, message: 'must be the text of the file' });
    else files.set(file, text);
  }
  return files;
}

const integerKeysOf = new WeakMap<CommandDefinition, Set<string>>();

/** The input keys whose flag takes a whole number (as the MCP tools find them: a string of digits). */
function integerKeys(def: CommandDefinition): Set<string> {
  let keys = integerKeysOf.get(def);
  if (keys === undefined) {
    const schema = z.toJSONSchema(def.input, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, { type?: string; pattern?: string }> };
    keys = new Set(Object.entries(schema.properties ?? {}).flatMap(([key, p]) => (p.type === 'string' && p.pattern === '^-?\\d+$' ? [key] : [])));
    integerKeysOf.set(def, keys);
  }
  return keys;
}

function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
