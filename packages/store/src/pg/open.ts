import type pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { PostgresStore } from '../engine.ts';
import { DatabaseUnavailableError } from '../errors.ts';
import { preparedTexts } from '../prepared.ts';
import { DEFAULT_BUSY_TIMEOUT_MS, type OpenStoreOptions } from '../open.ts';
import { ServerClock } from './clock.ts';
import { loadDriver, type PgDriver } from './driver.ts';
import { PgCompilingDialect } from './compiler.ts';
import { isStalePlan, mapPgError } from './errors.ts';
import { Listener } from './listen.ts';
import { PgTransactions } from './transactions.ts';
import { hash32, parsePostgresUrl, quoteIdent } from './url.ts';

// int8 (COUNT, bigserial ids, epoch milliseconds) and numeric (SUM) arrive as strings from the
// driver; this tool's values all fit a double, and its JSON must look the same on both engines.
const INT8 = 20;
const NUMERIC = 1700;
function typeParsers(driver: PgDriver) {
  return {
    getTypeParser(oid: number, format?: 'text' | 'binary') {
      if (oid === INT8 || oid === NUMERIC) return (value: string) => (value === null ? null : Number(value));
      return driver.types.getTypeParser(oid, format);
    },
  };
}

/**
 * A `pg` pool whose clients answer a multi-statement query with its last result (see
 * PgTransactions), and run the store's prepared queries (preparedTexts: the hot paths) as named
 * prepared statements, parsed and planned once per connection rather than at every call.
 *
 * A named statement whose tables changed shape under it (a migration run by a newer version while
 * this process runs) fails with "cached plan must not change result type": that connection is then
 * closed rather than returned to the pool, and the error marked as one to run the transaction again
 * for (isStalePlan), on a new connection that prepares afresh.
 */
function lastResultPool(pool: pg.Pool) {
  const wrapped = new WeakMap<pg.PoolClient, unknown>();
  return {
    async connect() {
      const client = await pool.connect();
      let w = wrapped.get(client);
      if (w === undefined) {
        let stale = false;
        w = {
          query: async (text: string, values: unknown[]) => {
            const n = preparedTexts.get(text);
            try {
              const result = (await client.query(n === undefined ? { text, values } : { name: `orch_inbox_${n}`, text, values })) as
                | pg.QueryResult
                | pg.QueryResult[];
              return Array.isArray(result) ? result[result.length - 1] : result;
            } catch (err) {
              if (n !== undefined && isStalePlan(err)) stale = true;
              throw err;
            }
          },
          release: (err?: Error | boolean) => client.release(stale || err),
        };
        wrapped.set(client, w);
      }
      return w as pg.PoolClient;
    },
    end: () => pool.end(),
  };
}

/**
 * The driver's Client, except that a connect that fails closes its socket. The driver leaves it open
 * when the failure is its own (a server that asks for a password none was given: the server then
 * waits for one until its authentication_timeout, 60 s by default, and the process with it).
 */
function closingClient(driver: PgDriver): typeof pg.Client {
  return class ClosingClient extends driver.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error) => void): void;
    override connect(callback?: (err: Error) => void): Promise<pg.Client> | undefined {
      const close = () => {
        this.end().catch(() => undefined);
      };
      if (callback === undefined) {
        return super.connect().catch((err: unknown) => {
          close();
          throw err;
        });
      }
      super.connect((err: Error) => {
        // The pool's callback first: it puts its 'error' listener on the client before the socket closes.
        callback(err);
        if (err) close();
      });
      return undefined;
    }
  };
}

/**
 * Opens the schema a `postgres://` URL names. One connection by default (a CLI call); `poolSize`
 * for long-lived processes. Reads the server's clock once (leases are judged by it) and checks the
 * connection, so an unreachable server, a wrong password or a missing database fail here, within
 * the connect timeout, as DB_CANNOT_OPEN / DB_AUTH_FAILED / DB_MISSING (exit 6).
 *
 * With `create`, the schema is made when missing (init); otherwise a missing schema is
 * DB_NOT_INITIALISED, like a file without tables.
 */
export async function openPostgresStore(options: OpenStoreOptions & { poolSize?: number; reconnectMs?: number }): Promise<PostgresStore> {
  const target = parsePostgresUrl(options.path);
  const driver = await loadDriver();
  // The driver warns on stderr that its ~/.pgpass support is deprecated, on every call that uses it
  // (a documented way to give the password): stderr is this CLI's to write (one line per error).
  process.noDeprecation = true;
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const config: pg.PoolConfig = {
    connectionString: target.connectionString,
    max: Math.max(1, options.poolSize ?? 1),
    connectionTimeoutMillis: target.connectTimeoutMs,
    // The schema is every connection's search path, set at connection start (no extra round trip).
    options: `-c search_path=${quoteIdent(target.schema)}`,
    types: typeParsers(driver),
    application_name: 'orch-inbox',
    Client: closingClient(driver),
  };
  // The driver reads the URL's TLS files (sslrootcert, sslcert, sslkey) and checks its sslmode when
  // it makes a client: one that cannot be made is a URL that cannot be used (exit 6), not a bug.
  // It also warns, once per process and over several lines of stderr, that sslmode=require (and
  // prefer, verify-ca) verify the server as verify-full does: documented in the README instead,
  // since stderr is this CLI's (one line per error).
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (!text.startsWith('SECURITY WARNING: The SSL modes')) (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    new driver.Client(config);
  } catch (err) {
    const message = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    throw new DatabaseUnavailableError('DB_CANNOT_OPEN', `${target.display} cannot be used: ${message}`, { cause: err });
  } finally {
    process.emitWarning = emitWarning;
  }
  const pool = new driver.Pool(config);
  // An idle client whose server went away emits 'error' on the pool; the next query reconnects.
  pool.on('error', () => undefined);
  // A checked-out client whose server goes away between two queries (a crash, a restart) emits
  // 'error' with nobody listening, which would end the process: the next query on it fails instead,
  // and that failure is a lost connection the transaction helpers try again.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  const db = new Kysely<any>({ dialect: new PgCompilingDialect(new PostgresDialect({ pool: lastResultPool(pool) })) });
  const clock = new ServerClock();
  const server = `the PostgreSQL server at ${target.server}`;
  const keys = { app: 0x6f726368 | 0, schema: hash32(`schema:${target.schema}`) };
  const channel = `orch_inbox_${(hash32(`channel:${target.schema}`) >>> 0).toString(16)}`;
  // TCP keep-alive: a LISTEN connection whose peer vanished (no reset) is noticed and made again.
  const listener = new Listener(driver, { ...config, max: undefined, Client: undefined, keepAlive: true } as pg.ClientConfig, channel, server);
  const transactions = new PgTransactions({
    db,
    clock,
    keys,
    channel,
    busyTimeoutMs,
    server,
    reconnectMs: Math.max(target.connectTimeoutMs, options.reconnectMs ?? 0),
    poolSize: config.max ?? 1,
  });
  const close = async () => {
    listener.close();
    await db.destroy().catch(() => undefined);
  };
  try {
    const { schemaExists } = await transactions.probe(target.schema);
    if (options.create === true) await transactions.ensureSchema(target.schema);
    else if (!schemaExists) {
      // Like a database file that does not exist: nothing is created but by init.
      const hint = options.initHint ?? `inbox --db '${target.display.replaceAll("'", "'\\''")}' init`;
      throw new DatabaseUnavailableError('DB_MISSING', `no schema ${quoteIdent(target.schema)} in ${target.display}; create it with \`${hint}\``);
    }
  } catch (err) {
    await close();
    throw mapPgError(err, server);
  }
  return {
    kind: 'postgres',
    path: target.display,
    location: target.display,
    db,
    busyTimeoutMs,
    clock,
    close,
    pg: {
      schema: target.schema,
      write: (fn) => transactions.write(fn),
      read: (fn) => transactions.read(fn),
      plain: (fn) => transactions.plain(fn),
      steps: (mode, step) => transactions.steps(mode, step),
      changeMark: () => transactions.changeMark(),
      nextCommit: (signal) => listener.next(signal),
      notifications: () => listener.received(),
      listening: () => listener.connected(),
      ensureSchema: () => transactions.ensureSchema(target.schema),
    },
  };
}
