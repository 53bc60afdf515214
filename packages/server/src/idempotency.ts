import { ExitCode, readTransaction, writeTransaction, type Store } from '@orch/store';
import { sql } from 'kysely';
import { type HttpAnswer, ServerError } from './responses.ts';

/** How long an answer is kept for a retry with the same key. */
export const KEEP_MS = 24 * 60 * 60 * 1000;

/** A key: 22 to 128 characters of letters, digits, `_` and `-` (nothing a header could be split with). */
const KEY = /^[A-Za-z0-9_-]{22,128}$/;

interface IdempotencyTable {
  orch_server_idempotency: {
    principal: string;
    key: string;
    command: string;
    body_sha256: string;
    status: number;
    exit_code: number;
    response: string;
    created_at: number;
  };
}

/** One request's identity: who sent it, its key, the command and a hash of its body. */
export interface Attempt {
  principal: string;
  key: string;
  command: string;
  bodySha256: string;
}

/**
 * Creates the table the answers are kept in, if it is not there (run once at serve start). Kept
 * apart from the packages' migrations: it holds nothing but a cache of answers.
 */
export async function ensureIdempotencyTable(store: Store): Promise<void> {
  await writeTransaction(store, async (trx) => {
    await sql`CREATE TABLE IF NOT EXISTS orch_server_idempotency (
      principal TEXT NOT NULL,
      key TEXT NOT NULL,
      command TEXT NOT NULL,
      body_sha256 TEXT NOT NULL,
      status INTEGER NOT NULL,
      exit_code INTEGER NOT NULL,
      response TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      PRIMARY KEY (principal, key)
    )`.execute(trx);
  });
}

/** Checks an Idempotency-Key header. @throws ServerError VALIDATION (400). */
export function checkKey(key: string): string {
  if (!KEY.test(key)) {
    throw new ServerError(400, 'VALIDATION', ExitCode.usage, 'Idempotency-Key must be 22 to 128 letters, digits, "_" or "-"', {
      details: [{ path: 'Idempotency-Key', message: 'must be 22 to 128 letters, digits, "_" or "-"' }],
    });
  }
  return key;
}

/**
 * Idempotent requests: the first request with a key runs, and its answer is kept (KEEP_MS); a
 * repeat with the same command and body gets that answer again; one still running is waited for;
 * the same key with another command or body is refused (IDEMPOTENCY_MISMATCH, 409). Answers of 5xx
 * and 429 are not kept (the request may be tried again).
 */
export class Idempotency {
  private readonly running = new Map<string, { attempt: Attempt; done: Promise<HttpAnswer> }>();

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    /** Told when an answer could not be kept (the server logs it). */
    private readonly onSaveError?: (err: unknown) => void,
  ) {}

  /**
   * Runs `work` once for `attempt`, or answers with what the first run answered (header
   * `Idempotency-Replayed: true`). `keep` false: a read; runs are only de-duplicated while running.
   */
  async run(attempt: Attempt, keep: boolean, work: () => Promise<HttpAnswer>): Promise<HttpAnswer> {
    const id = `${attempt.principal}\n${attempt.key}`;
    const inFlight = this.running.get(id);
    if (inFlight) {
      assertSame(inFlight.attempt, attempt);
      return replayed(await inFlight.done);
    }
    // Registered before the first await (the look for a kept answer included): a repeat arriving
    // while this one is still looking waits for it instead of running the command a second time.
    const done = (async () => {
      if (keep) {
        const stored = await this.find(attempt);
        if (stored) {
          assertSame(stored.attempt, attempt);
          return replayed(stored.answer);
        }
      }
      const answer = await work();
      // The command has run (and may have committed): its answer goes back even when keeping it
      // fails (a busy or lost database); only a retry of this very request then runs it again.
      if (keep && kept(answer)) await this.save(attempt, answer).catch((err: unknown) => this.onSaveError?.(err));
      return answer;
    })();
    this.running.set(id, { attempt, done });
    try {
      return await done;
    } finally {
      this.running.delete(id);
    }
  }

  /** Forgets answers older than KEEP_MS. */
  async prune(): Promise<void> {
    const before = this.now() - KEEP_MS;
    await writeTransaction<IdempotencyTable, void>(this.store, async (trx) => {
      await trx.deleteFrom('orch_server_idempotency').where('created_at', '<', before).execute();
    });
  }

  private async find(attempt: Attempt): Promise<{ attempt: Attempt; answer: HttpAnswer } | undefined> {
    const row = await readTransaction<IdempotencyTable, IdempotencyTable['orch_server_idempotency'] | undefined>(this.store, (trx) =>
      trx
        .selectFrom('orch_server_idempotency')
        .selectAll()
        .where('principal', '=', attempt.principal)
        .where('key', '=', attempt.key)
        .where('created_at', '>=', this.now() - KEEP_MS)
        .executeTakeFirst(),
    );
    if (!row) return undefined;
    const saved = JSON.parse(row.response) as { headers: Record<string, string>; body: string };
    return {
      attempt: { principal: row.principal, key: row.key, command: row.command, bodySha256: row.body_sha256 },
      answer: { status: Number(row.status), headers: saved.headers, body: saved.body },
    };
  }

  private async save(attempt: Attempt, answer: HttpAnswer): Promise<void> {
    const row = {
      principal: attempt.principal,
      key: attempt.key,
      command: attempt.command,
      body_sha256: attempt.bodySha256,
      status: answer.status,
      exit_code: Number(answer.headers['Orch-Exit-Code'] ?? 0),
      response: JSON.stringify({ headers: answer.headers, body: answer.body }),
      created_at: this.now(),
    };
    await writeTransaction<IdempotencyTable, void>(this.store, async (trx) => {
      // An expired answer under the same key gives way to the new one.
      await trx.deleteFrom('orch_server_idempotency').where('principal', '=', row.principal).where('key', '=', row.key).execute();
      await trx.insertInto('orch_server_idempotency').values(row).execute();
    });
  }
}

function assertSame(first: Attempt, again: Attempt): void {
  if (first.command === again.command && first.bodySha256 === again.bodySha256) return;
  throw new ServerError(
    409,
    'IDEMPOTENCY_MISMATCH',
    ExitCode.conflict,
    'this Idempotency-Key was used for another request (another command or body); use a new key for a new request',
    {
      details: { command: first.command },
    },
  );
}

/** Whether an answer is kept for a retry: not one the client is meant to retry (5xx, 429: the command did not run). */
function kept(answer: HttpAnswer): boolean {
  return answer.status < 500 && answer.status !== 429;
}

function replayed(answer: HttpAnswer): HttpAnswer {
  return { ...answer, headers: { ...answer.headers, 'Idempotency-Replayed': 'true' } };
}
