import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.ts';

/** Whether `location` (a `--db` value) names an `orch serve` server: it starts with `http://` or `https://`. */
export function isRemoteUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** Where remote calls go and how they authenticate. The token is never printed. */
export interface RemoteTarget {
  /** The base URL without a trailing slash, e.g. `https://host:7420` or `https://host/orch`. */
  base: string;
  /** The base URL as it may be printed (it carries no credentials: those are refused). */
  display: string;
  https: boolean;
  token: string | undefined;
  /** The token may go over plain http to a host that is not loopback (--insecure-http, ORCH_INSECURE_HTTP=1). */
  insecureHttp: boolean;
  /** Seconds the client retries connection errors, 503 and 429 (ORCH_RETRY_SECONDS, default 30). */
  retrySeconds: number;
}

/** What names the token and its transport: the global flags and the environment. */
export interface TargetOptions {
  tokenFile?: string | undefined;
  insecureHttp?: boolean | undefined;
  env: Record<string, string | undefined>;
  cwd: string;
}

export const DEFAULT_RETRY_SECONDS = 30;

/**
 * The server named by `location`, with the token from `--token-file` or ORCH_TOKEN.
 *
 * @throws UsageError (2) for a URL that does not parse, carries a user or password, a query or a
 *   fragment; a token file that cannot be read, is empty, or that group or others may read; a token
 *   that is not one line of visible ASCII; a bad ORCH_RETRY_SECONDS; and a token sent over plain
 *   http to a host that is not loopback without --insecure-http / ORCH_INSECURE_HTTP=1.
 */
export function remoteTarget(location: string, options: TargetOptions): RemoteTarget {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new UsageError('--db: not a valid http:// or https:// URL');
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError('--db: a server URL must not carry a user name or password; give the token in ORCH_TOKEN or --token-file');
  }
  if (url.search !== '' || url.hash !== '') throw new UsageError('--db: a server URL takes no query (?...) or fragment (#...)');
  const display = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  const token = readToken(options);
  const secure = url.protocol === 'https:';
  const insecureOk = options.insecureHttp === true || options.env.ORCH_INSECURE_HTTP === '1';
  if (!secure && token !== undefined && !isLoopbackHost(url.hostname) && !insecureOk) {
    throw new UsageError(
      `refusing to send a token over plain http to ${display}: anyone on the network could read it; use https://, or give --insecure-http (or ORCH_INSECURE_HTTP=1) on a network you trust`,
    );
  }
  return { base: display, display, https: secure, token, insecureHttp: insecureOk, retrySeconds: retrySeconds(options.env) };
}

/** Whether `hostname` (as URL gives it) is this machine's loopback: localhost, 127.0.0.0/8 or [::1]. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '[::1]' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function retrySeconds(env: Record<string, string | undefined>): number {
  const raw = env.ORCH_RETRY_SECONDS;
  if (raw === undefined || raw === '') return DEFAULT_RETRY_SECONDS;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) > 86_400) throw new UsageError('ORCH_RETRY_SECONDS must be a whole number of seconds from 0 to 86400');
  return Number(raw);
}

function readToken(options: TargetOptions): string | undefined {
  let token: string | undefined;
  if (options.tokenFile !== undefined) {
    const file = path.resolve(options.cwd, options.tokenFile);
    let text: string;
    try {
      const stat = fs.statSync(file);
      if (!stat.isFile()) throw new UsageError(`--token-file ${options.tokenFile}: not a regular file`);
      if ((stat.mode & 0o077) !== 0) {
        throw new UsageError(`--token-file ${options.tokenFile}: group or others may read it; make it owner-only (chmod 600 ${options.tokenFile})`);
      }
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if (err instanceof UsageError) throw err;
      const code = (err as { code?: string }).code;
      throw new UsageError(
        `--token-file ${options.tokenFile}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : 'cannot be read'}`,
      );
    }
    token = text.trim();
    if (token === '') throw new UsageError(`--token-file ${options.tokenFile}: the file is empty`);
  } else {
    const env = options.env.ORCH_TOKEN?.trim();
    token = env === undefined || env === '' ? undefined : env;
  }
  // Checked here so that no HTTP library ever sees (and quotes in an error) a token that cannot be a header.
  if (token !== undefined && !/^[\x21-\x7e]{1,4096}$/.test(token)) {
    throw new UsageError(`the token (${options.tokenFile !== undefined ? '--token-file' : 'ORCH_TOKEN'}) must be one line of visible ASCII characters`);
  }
  return token;
}
