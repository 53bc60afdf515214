// `orch token create | list | revoke`: the bearer tokens of `orch serve`, managed on the database
// itself (a file or a PostgreSQL URL), never through the server.
import { initHint, inboxMigrations, type CopyPackage } from '@orch/inbox';
import { UsageError, assertSchemaCurrent, defineCommand, formatTable, idSchema, intFlag, openDatabase, type CommandContext, type Store } from '@orch/store';
import { z } from 'zod';
import { serverMigrations } from './migrations.ts';
import { createToken, listTokens, parseExpiresIn, revokeToken, TOKEN_ROLES, type TokenView } from './tokens.ts';

/**
 * The tokens table for `orch copy`: a database with tokens moves to PostgreSQL with them (hashes,
 * states and all). Its schema is only ever created by `token create`, never upgraded by hand.
 */
export const serverCopyPackage: CopyPackage = { migrations: serverMigrations, upgradeHint: (file: string) => `orch --db ${file} token list` };

/**
 * Opens the database named by `--db` (initialised with `inbox init`), runs `fn`, and always closes it.
 *
 * @throws UsageError (2) for a server URL; DatabaseUnavailableError (6) as for any command.
 */
async function withStore<T>(ctx: CommandContext, fn: (store: Store) => Promise<T>): Promise<T> {
  if (/^https?:\/\//i.test(ctx.dbPath)) {
    throw new UsageError('tokens are managed on the database itself: give --db the file or postgres:// URL the server serves, not the server');
  }
  const store = await openDatabase({
    path: ctx.dbPath,
    create: false,
    initHint: initHint(ctx.dbPath),
    ...(ctx.nativeBinding ? { nativeBinding: ctx.nativeBinding } : {}),
  });
  try {
    await assertSchemaCurrent(store, inboxMigrations, initHint(store.path));
    return await fn(store);
  } finally {
    await store.close();
  }
}

const ROLE_ERROR = `must be ${TOKEN_ROLES.join(' or ')}`;

export const createInput = z
  .object({
    role: z.enum(TOKEN_ROLES, { error: ROLE_ERROR }),
    agent: idSchema.optional(),
    name: idSchema.optional(),
    expiresIn: z
      .string()
      .transform((s, ctx) => {
        const parsed = parseExpiresIn(s);
        if ('ms' in parsed) return parsed.ms;
        ctx.addIssue({ code: 'custom', message: parsed.error });
        return z.NEVER;
      })
      .optional(),
  })
  .superRefine((v, ctx) => {
    if (v.role === 'worker' && v.agent === undefined) ctx.addIssue({ code: 'custom', path: ['agent'], message: 'is required for a worker token' });
    if (v.role === 'leader' && v.agent !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['agent'], message: 'is only for a worker token (a leader token acts for the leader)' });
    }
  });

/** `token create --json`: the token (shown this once) and what it is. */
export interface CreatedToken {
  token: string;
  id: string;
  name: string;
  role: TokenView['role'];
  agent: string | null;
  expires_at: string | null;
}

export const createCommand = defineCommand({
  name: 'token create',
  summary: 'Make a bearer token for `orch serve` (shown once; stored hashed)',
  description:
    'A leader token may do everything a leader does over the server; a worker token acts only as its --agent: it may claim, ' +
    'read and post on the threads assigned to that agent (inbox claim, show, heartbeat, progress, ask, result, fail, release, ' +
    'wait, list) and nothing else. The token is printed once, on the first line (with --json: `token`); the database keeps only ' +
    'its SHA-256, so a lost token cannot be shown again: revoke it and make another. What a leader token writes in the ' +
    "leader's name (dispatched tasks, answers, notes, inbox send and reply) is recorded under its name; a worker token's posts " +
    'under its agent. The first token on a database creates the tokens table; from then on a server on it refuses ' +
    'requests without a live token, loopback included. Run it on the database itself (--db FILE or postgres:// URL), not ' +
    'through the server.',
  flags: {
    role: { type: 'string', describe: 'leader|worker', required: true },
    agent: { type: 'string', describe: 'The agent a worker token acts as (required for --role worker)' },
    name: { type: 'string', describe: 'Label, unique among live tokens (default: the agent, or leader; -2, -3... when taken)' },
    'expires-in': { type: 'string', describe: 'Lifetime: a number and m, h or d, e.g. 30m, 12h, 7d (default: until revoked)' },
  },
  examples: [
    '--db ./coord.db token create --role worker --agent qa-worker --expires-in 7d',
    '--db ./coord.db --json token create --role leader --name ci-leader',
  ],
  input: createInput,
  run: (ctx, input): Promise<CreatedToken> =>
    withStore(ctx, async (store) => {
      const { token, view } = await createToken(
        store,
        { clock: ctx.clock ?? store.clock, ids: ctx.ids },
        { role: input.role, agent: input.agent, name: input.name, expiresInMs: input.expiresIn },
      );
      return { token, id: view.id, name: view.name, role: view.role, agent: view.agent, expires_at: view.expires_at };
    }),
  text: (r) =>
    [
      r.token,
      '',
      `Made ${r.role} token ${r.id} named ${r.name}${r.agent !== null ? ` (acts as agent ${r.agent})` : ''}, ${r.expires_at === null ? 'valid until revoked' : `expires ${r.expires_at}`}.`,
      'This is the only time the token is shown: store it now, as you would a password.',
      'Use it from another machine (the server with --tls-cert/--tls-key, or behind a TLS proxy):',
      '  export ORCH_TOKEN=<the token above>   # or save it in a file only you can read, and pass --token-file FILE',
      `  ${r.role === 'worker' ? `inbox --db https://HOST:7420 claim --agent ${r.agent ?? 'AGENT'}` : 'orch --db https://HOST:7420 status --run RUN'}`,
    ].join('\n'),
});

export const listCommand = defineCommand({
  name: 'token list',
  summary: 'List the tokens of `orch serve`, newest first (never their secret)',
  description:
    "Shows each token's id, name, role, agent, state (live, expired or revoked), and when it was made, expires and was last used " +
    '(recorded at most once a minute). The token itself cannot be shown: the database keeps only its hash.',
  flags: {
    limit: { type: 'string', describe: 'At most this many tokens (default 100)' },
  },
  examples: ['--db ./coord.db token list', '--db ./coord.db --json token list'],
  input: z.object({ limit: intFlag(1, 10_000).optional() }),
  run: (ctx, input) => withStore(ctx, async (store) => ({ tokens: await listTokens(store, ctx.clock ?? store.clock, { limit: input.limit }) })),
  text: (r: { tokens: TokenView[] }) =>
    r.tokens.length === 0
      ? 'no tokens (a server on this database serves loopback only, without tokens)'
      : formatTable([
          ['ID', 'NAME', 'ROLE', 'AGENT', 'STATE', 'CREATED', 'EXPIRES', 'LAST USED'],
          ...r.tokens.map((t) => [t.id, t.name, t.role, t.agent ?? '-', t.state, t.created_at, t.expires_at ?? 'never', t.last_used_at ?? '-']),
        ]),
});

export const revokeInput = z.object({ tokenId: idSchema.optional(), name: idSchema.optional() }).superRefine((v, ctx) => {
  if ((v.tokenId === undefined) === (v.name === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['tokenId'], message: 'give exactly one of --token-id ID and --name NAME' });
  }
});

export const revokeCommand = defineCommand({
  name: 'token revoke',
  summary: 'Revoke a token of `orch serve`: refused from the next request on',
  description:
    'By --token-id (from token list or token create), or --name (the live token with that name). Every request reads its ' +
    "token's row, so a revoked token is refused at once, by a running server too; a long request already running (a wait) " +
    'finishes. Revoking a revoked token changes nothing (`revoked`: false). Exit 3 when there is no such token.',
  flags: {
    'token-id': { type: 'string', describe: 'The token id, e.g. tok_4kq8...' },
    name: { type: 'string', describe: 'The name of a live token' },
  },
  examples: ['--db ./coord.db token revoke --name qa-worker', '--db ./coord.db --json token revoke --token-id tok_4kq8Xw2LmP0aB7cD'],
  input: revokeInput,
  run: (ctx, input) =>
    withStore(ctx, (store) =>
      revokeToken(store, ctx.clock ?? store.clock, input.tokenId !== undefined ? { id: input.tokenId } : { name: input.name as string }),
    ),
  text: (r) =>
    r.revoked ? `revoked token ${r.token.id} (${r.token.name})` : `token ${r.token.id} (${r.token.name}) was already revoked at ${r.token.revoked_at}`,
});
