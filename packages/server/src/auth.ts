// STUB until the auth helper's file lands (same signatures): everyone is the local leader.
import type { Store } from '@orch/store';

/** Who is calling: the local user of a loopback server without tokens, or the holder of a token. */
export type Principal = { kind: 'local' } | { kind: 'token'; id: string; name: string; role: 'leader' | 'worker'; agent?: string };

/** The caller of a request, from its `Authorization` header. @throws AppError UNAUTHENTICATED (401). */
export async function authenticate(_store: Store, _header: string | undefined, _peer: { loopback: boolean; tls: boolean }): Promise<Principal> {
  return { kind: 'local' };
}

/** Refuses what `principal` may not run. @throws AppError FORBIDDEN (403). */
export function authorize(_principal: Principal, _program: string, _command: string): void {}

/** How many tokens are active (neither revoked nor expired). */
export async function countActiveTokens(_store: Store): Promise<number> {
  return 0;
}
