import crypto from 'node:crypto';
import type { Agent, IncomingHttpHeaders } from 'node:http';
import { systemClock } from '../clock.ts';
import { AppError, ExitCode, type ExitCodeValue } from '../errors.ts';
import type { RemoteTarget } from './target.ts';

// The HTTP side of remote mode: one POST per command to `orch serve` (see docs/remote.md), with
// the idempotency key of the invocation, retried on connection errors, 502-504 and 429 with backoff
// for the target's retry budget. node:http(s) is loaded on the first call only: a CLI call on a
// SQLite file never loads it.

/** An HTTP answer of the server: status, `Orch-Exit-Code`, and the body as text. */
export interface RemoteAnswer {
  status: number;
  /** The `Orch-Exit-Code` header, when the server sent a valid one. */
  exitCode: ExitCodeValue | undefined;
  /** `Idempotency-Replayed: true`: the server answered with what it stored for this key. */
  replayed: boolean;
  body: string;
}

export interface PostOptions {
  /** Reused on every retry of one invocation: the server applies the call once. Default: a new random key. */
  idempotencyKey?: string;
  /** Longest silence of one attempt on the socket (a command's own wait + 30 s). Default 30 s. */
  timeoutMs?: number;
  /** Aborting ends the call at once (no retry): the server sees the disconnect and ends a wait. */
  signal?: AbortSignal | undefined;
  /** Overrides the target's retry budget, in seconds. */
  retrySeconds?: number;
}

/** A new idempotency key: 128 random bits, 22 base64url characters. */
export function newIdempotencyKey(): string {
  return crypto.randomBytes(16).toString('base64url');
}

const RETRY_STATUS = new Set([429, 502, 503, 504]);
const RETRY_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'REMOTE_TIMEOUT',
]);

/** The keep-alive agents of this process, one per scheme. */
const agents = new Map<string, Agent>();

function agentFor(https: boolean): Agent {
  const key = https ? 'https' : 'http';
  let agent = agents.get(key);
  if (!agent) {
    const mod = https ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
    agent = new mod.Agent({ keepAlive: true, keepAliveMsecs: 1000 }) as Agent;
    agents.set(key, agent);
  }
  return agent;
}

/**
 * POSTs `body` (JSON text) to `target.base + path` and returns the server's answer; retries what may
 * pass (connection refused or reset, a timeout, 502/503/504, 429 after its Retry-After) with
 * backoff from 100 ms doubling to 2 s, with jitter, for at most the retry budget, always with the
 * same Idempotency-Key. A 503 the server sent for a command's own error (exit 6 with a DB_ code)
 * is an answer, not retried.
 *
 * @throws AppError SERVER_UNREACHABLE (6) once the budget is spent without an answer (the message
 *   names the URL and the last reason, never the token); RATE_LIMITED (6) when the server still
 *   answered 429 then; INTERRUPTED (6) when `signal` aborted.
 */
export async function postJson(target: RemoteTarget, path: string, body: string, options: PostOptions = {}): Promise<RemoteAnswer> {
  const key = options.idempotencyKey ?? newIdempotencyKey();
  const budgetMs = (options.retrySeconds ?? target.retrySeconds) * 1000;
  const started = performance.now();
  let delay = 100;
  for (let attempt = 1; ; attempt++) {
    let why: string;
    let wait = delay * (0.5 + Math.random() * 0.5);
    let last: RemoteAnswer | undefined;
    try {
      const answer = await postOnce(target, path, body, key, options);
      if (!retryable(answer)) return answer;
      last = answer;
      why = `HTTP ${answer.status}${answer.status === 429 ? ' (rate limited)' : ''}`;
      const after = answer.retryAfterSeconds;
      if (after !== undefined) wait = Math.max(wait, after * 1000);
    } catch (err) {
      if (options.signal?.aborted) {
        throw new AppError('INTERRUPTED', ExitCode.unavailable, `the call to ${target.display} was interrupted`, { cause: err });
      }
      const code = errorCode(err);
      if (code === undefined || !RETRY_ERRORS.has(code)) {
        throw new AppError('SERVER_UNREACHABLE', ExitCode.unavailable, `cannot reach the server at ${target.display}: ${describe(err)}`, {
          details: { url: target.display, reason: code ?? 'error' },
          cause: err,
        });
      }
      why = describe(err);
    }
    const spent = performance.now() - started;
    if (spent + wait > budgetMs) {
      if (last?.status === 429) {
        throw new AppError(
          'RATE_LIMITED',
          ExitCode.unavailable,
          `the server at ${target.display} kept answering 429 (rate limited) for ${Math.round(spent / 1000)} s`,
          {
            details: { url: target.display, attempts: attempt },
          },
        );
      }
      if (last !== undefined && last.exitCode !== undefined) return last;
      throw new AppError(
        'SERVER_UNREACHABLE',
        ExitCode.unavailable,
        `cannot reach the server at ${target.display}: ${why} (tried ${attempt} time(s) over ${Math.round(spent / 1000)} s; ORCH_RETRY_SECONDS sets how long)`,
        { details: { url: target.display, attempts: attempt, reason: why } },
      );
    }
    await systemClock.sleep(wait, options.signal);
    delay = Math.min(2000, delay * 2);
  }
}

type Answer = RemoteAnswer & { retryAfterSeconds: number | undefined; code: string | undefined };

/** Whether an answer may pass on a retry: 429, a proxy's 502/504, or a 503 that is not a command's own DB_ error. */
function retryable(answer: Answer): boolean {
  if (!RETRY_STATUS.has(answer.status)) return false;
  if (answer.status === 503 && answer.code !== undefined && answer.code.startsWith('DB_')) return false;
  return true;
}

function postOnce(target: RemoteTarget, path: string, body: string, key: string, options: PostOptions): Promise<Answer> {
  const mod = target.https ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
  const payload = Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(payload.length),
      accept: 'application/json',
      'idempotency-key': key,
    };
    if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
    const req = mod.request(`${target.base}${path}`, {
      method: 'POST',
      headers,
      agent: agentFor(target.https),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    req.setTimeout(options.timeoutMs ?? 30_000, () => {
      req.destroy(Object.assign(new Error(`no answer within ${Math.round((options.timeoutMs ?? 30_000) / 1000)} s`), { code: 'REMOTE_TIMEOUT' }));
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('the connection was cut before the whole answer came'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        if (!res.complete) {
          reject(Object.assign(new Error('the connection was cut before the whole answer came'), { code: 'ECONNRESET' }));
          return;
        }
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          exitCode: exitCodeHeader(res.headers),
          replayed: res.headers['idempotency-replayed'] === 'true',
          body: text,
          retryAfterSeconds: retryAfter(res.headers),
          code: errorCodeOf(text),
        });
      });
    });
    req.end(payload);
  });
}

function exitCodeHeader(headers: IncomingHttpHeaders): ExitCodeValue | undefined {
  const raw = headers['orch-exit-code'];
  if (typeof raw !== 'string' || !/^[0-7]$/.test(raw.trim())) return undefined;
  return Number(raw.trim()) as ExitCodeValue;
}

function retryAfter(headers: IncomingHttpHeaders): number | undefined {
  const raw = headers['retry-after'];
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim())) return undefined;
  return Math.min(Number(raw.trim()), 60);
}

function errorCodeOf(text: string): string | undefined {
  if (!text.startsWith('{"error"')) return undefined;
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describe(err: unknown): string {
  const code = errorCode(err);
  if (code === 'ECONNREFUSED') return 'connection refused (is `orch serve` running there?)';
  if (code === 'ECONNRESET') return 'the connection was reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  if (code === 'REMOTE_TIMEOUT') return (err as Error).message;
  const message = err instanceof Error ? err.message : String(err);
  return code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
}
