// Who a request to `orch serve` comes from (authenticate), what it may run (authorize), and how
// that limits the commands it runs (principalContext). The HTTP layer calls these for every
// request; nothing here knows about HTTP beyond the Authorization header's text.
import { ForbiddenError, UnauthenticatedError, type CommandContext, type Store } from '@orch/store';
import { countLiveTokens, findToken, TOKEN_PATTERN, touchToken } from './tokens.ts';

/**
 * Who is asking: the local user (a loopback request to a server that has no token at all), or the
 * holder of a token.
 */
export type Principal = { kind: 'local' } | { kind: 'token'; id: string; name: string; role: 'leader' | 'worker'; agent?: string };

/** What the server knows of the connection a request came on. */
export interface Peer {
  /** The peer's address is a loopback address (127.0.0.0/8, ::1). */
  loopback: boolean;
  /** The connection is TLS (the server's own `--tls-cert`). */
  tls: boolean;
  /** `--insecure-http`: tokens are accepted over plain HTTP from other machines too. */
  insecureHttp?: boolean;
  /**
   * The server listens on a loopback address only. False (bound beyond loopback, so perhaps behind
   * a reverse proxy whose requests all come from loopback): there is no tokenless local user, even
   * once every token is revoked or expired. Default true.
   */
  loopbackServer?: boolean;
  /**
   * The request's Host header, when the HTTP layer passes it: a request without a token must name
   * this machine (a loopback address or `localhost`), or it may be a web page that had its own name
   * resolve to 127.0.0.1 (DNS rebinding) to drive a tokenless server from the user's browser.
   */
  host?: string | undefined;
  /**
   * The request names a client it was forwarded for (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`):
   * a reverse proxy on this machine passed it on, so a loopback peer says nothing of who sent it.
   */
  proxied?: boolean;
  /**
   * A browser says a page of another site sent it (`Sec-Fetch-Site: cross-site` or `same-site`, or
   * an `Origin` that is not this machine): never the local user, or any web page the user opens
   * could hold the local user's waits and streams, or post a request a browser sends unasked.
   */
  crossSite?: boolean;
}

/** Whether the request's `Sec-Fetch-Site` or `Origin` header says a page of another site sent it. */
export function isCrossSite(fetchSite: string | undefined, origin: string | undefined): boolean {
  if (fetchSite !== undefined && !/^(same-origin|none)$/i.test(fetchSite.trim())) return true;
  if (origin === undefined) return false;
  try {
    return !isLoopbackHost(new URL(origin).host);
  } catch {
    return true;
  }
}

/** Whether a Host header names this machine: localhost, 127.0.0.0/8 or [::1], with or without a port. */
export function isLoopbackHost(host: string): boolean {
  const name = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(host)?.[1] ?? /^([^:]*)(?::\d{1,5})?$/.exec(host)?.[1];
  if (name === undefined) return false;
  const lower = name.toLowerCase().replace(/\.$/, '');
  return lower === 'localhost' || lower.endsWith('.localhost') || lower === '::1' || /^127(\.\d{1,3}){3}$/.test(lower);
}

/** The inbox commands a worker token may run (as its agent only). */
export const WORKER_COMMANDS: ReadonlySet<string> = new Set(['claim', 'show', 'heartbeat', 'progress', 'ask', 'result', 'fail', 'release', 'wait', 'list']);

const BEARER = /^Bearer[ ]+([^\s]+)[ ]*$/i;

/**
 * Works out who sent a request from its `Authorization` header (`Bearer orch_...`). Without one, a
 * loopback peer of a server listening on loopback only is the local user when the database has no
 * live token at all (local use needs no set-up) and the request names this machine as its host
 * (peer.host); otherwise a token is
 * required. A token is never accepted over plain HTTP from another machine unless the server runs
 * with `--insecure-http`. Records when a token was last used (at most once a minute).
 *
 * @throws UnauthenticatedError (HTTP 401, exit 4 at the client): no token where one is needed, a
 *   malformed header, an unknown, revoked or expired token, or a token over plain HTTP from
 *   another machine; DatabaseUnavailableError (6) when the database cannot be read.
 */
export async function authenticate(store: Store, header: string | undefined, peer: Peer): Promise<Principal> {
  if (header === undefined || header.trim() === '') {
    if (peer.host !== undefined && !isLoopbackHost(peer.host)) {
      throw new UnauthenticatedError(
        `a request without a token must be addressed to this machine (Host: 127.0.0.1, localhost or [::1]), not ${JSON.stringify(peer.host.slice(0, 100))}`,
      );
    }
    if (peer.crossSite === true) {
      throw new UnauthenticatedError('a request a web page of another site sent (Sec-Fetch-Site or Origin) is not the local user: send a token');
    }
    if (peer.proxied === true) {
      throw new UnauthenticatedError(
        'a request forwarded by a proxy (Forwarded or X-Forwarded-For) needs a token: make one with `orch token create` where the database is',
      );
    }
    if (peer.loopback && peer.loopbackServer !== false && (await countLiveTokens(store, store.clock.now())) === 0) return { kind: 'local' };
    throw new UnauthenticatedError('this server needs a token: send `Authorization: Bearer <token>` (a remote CLI reads it from ORCH_TOKEN or --token-file)');
  }
  const match = BEARER.exec(header);
  if (!match) throw new UnauthenticatedError('the Authorization header must be `Bearer <token>`');
  if (!peer.loopback && !peer.tls && peer.insecureHttp !== true) {
    throw new UnauthenticatedError(
      'tokens are accepted from another machine only over TLS (https://); this one crossed the network in clear text, so revoke it (`orch token revoke`) and make a new one',
    );
  }
  const text = match[1] as string;
  if (!TOKEN_PATTERN.test(text)) throw new UnauthenticatedError('that is not a token of this server (tokens look like orch_ and 43 more characters)');
  const row = await findToken(store, text);
  if (!row) throw new UnauthenticatedError('unknown token: it was never made on this server (`orch token list` shows the tokens there are)');
  const now = store.clock.now();
  if (row.revoked_at !== null) throw new UnauthenticatedError(`token ${row.id} was revoked`, { token_id: row.id });
  if (row.expires_at !== null && Number(row.expires_at) <= now) {
    throw new UnauthenticatedError(`token ${row.id} expired at ${new Date(Number(row.expires_at)).toISOString()}`, { token_id: row.id });
  }
  // Knowing when a token was last used is a convenience: a database too busy to record it does not
  // turn a valid request away.
  await touchToken(store, row, now).catch(() => undefined);
  return { kind: 'token', id: row.id, name: row.name, role: row.role, ...(row.agent !== null ? { agent: row.agent } : {}) };
}

/**
 * Whether `principal` may run `program`'s `command` (`inbox`, `claim`; `orch`, `run init`). The local
 * user and leader tokens may run everything the server serves; a worker token only the inbox
 * commands of WORKER_COMMANDS, and those only as its agent (principalContext).
 *
 * @throws ForbiddenError (HTTP 403, exit 4)
 */
export function authorize(principal: Principal, program: string, command: string): void {
  if (principal.kind === 'local' || principal.role === 'leader') return;
  if (program === 'inbox' && WORKER_COMMANDS.has(command)) return;
  const label = program === 'orch-worker-brief' ? program : `${program} ${command}`;
  throw new ForbiddenError(
    `a worker token (${principal.name}, agent ${principal.agent ?? '?'}) may run only inbox ${[...WORKER_COMMANDS].join(', ')}; not ${label}`,
    { agent: principal.agent ?? null, program, command },
  );
}

/**
 * What a principal sets in the context of the commands it runs: a worker token acts only as its
 * agent (`actingAgent`: another agent's thread is FORBIDDEN, and `list` shows its threads only);
 * a token's name is the author recorded for what it writes in the leader's name (`author`).
 *
 * @throws ForbiddenError (4) for a worker token without an agent (the tokens table refuses one).
 */
export function principalContext(principal: Principal): Partial<CommandContext> {
  if (principal.kind === 'local') return {};
  if (principal.role === 'worker') {
    // Never a worker without its one agent: that would be a worker acting as anyone.
    if (principal.agent === undefined) throw new ForbiddenError(`worker token ${principal.id} names no agent`, { token_id: principal.id });
    return { actingAgent: principal.agent, author: principal.name };
  }
  return { author: principal.name };
}

/** How many live tokens the database has: a server may bind beyond loopback only when there is one. */
export function countActiveTokens(store: Store): Promise<number> {
  return countLiveTokens(store, store.clock.now());
}
