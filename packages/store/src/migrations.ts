import { sql, type Kysely } from 'kysely';
import { DatabaseUnavailableError } from './errors.ts';
import type { Clock } from './clock.ts';
import type { Store } from './engine.ts';
import { writeTransaction } from './transaction.ts';

/** One schema step. Versions start at 1 and go up by one; a released step never changes. */
export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<any>): Promise<void>;
}

/** A package's ordered, append-only migration list, kept in code. */
export interface MigrationSet {
  /** Owner of the tables, e.g. `inbox`. */
  package: string;
  migrations: readonly Migration[];
  /**
   * Tables whose rows the migrations themselves write (a setting such as orch's database id). A
   * database whose only rows are in these tables holds no data yet, and a copy of another database
   * replaces them with the source's rows.
   */
  seeded?: readonly string[];
}

export interface MigrateResult {
  package: string;
  from: number;
  to: number;
  applied: { version: number; name: string }[];
}

interface MigrationsTable {
  schema_migrations: { package: string; version: number; name: string; applied_at: number };
}

/** The schema version this code expects for a set (its last migration's version). */
export function latestVersion(set: MigrationSet): number {
  return set.migrations.at(-1)?.version ?? 0;
}

/**
 * Brings a package's tables up to date in one `BEGIN IMMEDIATE` transaction: running it twice
 * changes nothing, and two processes running it at once both succeed (the second waits, then finds
 * nothing to do). A file that already holds tables of some other program is refused.
 *
 * @throws DatabaseUnavailableError DB_TOO_NEW (exit 6) when the database is newer than this code;
 *   DB_FOREIGN when the file holds tables this project did not create.
 */
export async function migrate(store: Store, set: MigrationSet, clock: Clock): Promise<MigrateResult> {
  assertOrdered(set);
  recorded.delete(store);
  const latest = latestVersion(set);
  return writeTransaction<MigrationsTable, MigrateResult>(store, async (trx) => {
    const hasTable = await migrationsTableExists(trx, store);
    if (!hasTable) {
      const foreign = await userTables(trx, store.kind);
      if (foreign.length > 0) {
        throw new DatabaseUnavailableError(
          'DB_FOREIGN',
          `${store.path} already holds tables this tool did not create (${foreign.slice(0, 5).join(', ')}); refusing to initialise it`,
          { details: { tables: foreign } },
        );
      }
      await trx.schema
        .createTable('schema_migrations')
        .addColumn('package', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('applied_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('schema_migrations_pk', ['package', 'version'])
        .execute();
    }
    const from = await currentVersion(trx, set.package);
    if (from > latest) throw tooNew(store, set, from);
    const applied: MigrateResult['applied'] = [];
    for (const m of set.migrations) {
      if (m.version <= from) continue;
      await m.up(trx);
      await trx.insertInto('schema_migrations').values({ package: set.package, version: m.version, name: m.name, applied_at: clock.now() }).execute();
      applied.push({ version: m.version, name: m.name });
    }
    return { package: set.package, from, to: latest, applied };
  });
}

/**
 * The cheap check every command but `init` makes: one indexed read, no writes.
 *
 * @throws DatabaseUnavailableError (exit 6): DB_NOT_INITIALISED when the package's tables are
 *   missing, DB_OUTDATED when `init` must upgrade them, DB_TOO_NEW when the file is newer than this code.
 */
export async function assertSchemaCurrent(store: Store, set: MigrationSet, initHint: string): Promise<number> {
  const latest = latestVersion(set);
  let version = (await versionsOf(store))[set.package] ?? 0;
  if (version < latest) {
    // What was read may be old: a long-lived store (orch serve's) outlives another process's
    // `run init` or upgrade. Read again before refusing (only on this path: a current schema costs nothing).
    recorded.delete(store);
    version = (await versionsOf(store))[set.package] ?? 0;
  }
  if (version === 0) {
    throw new DatabaseUnavailableError('DB_NOT_INITIALISED', `${store.path} is not initialised; run \`${initHint}\``);
  }
  if (version > latest) throw tooNew(store, set, version);
  if (version < latest) {
    throw new DatabaseUnavailableError(
      'DB_OUTDATED',
      `${store.path} has ${set.package} schema version ${version} but this code needs ${latest}; upgrade it with \`${initHint}\``,
      { details: { package: set.package, version, expected: latest } },
    );
  }
  return version;
}

/**
 * What assertSchemaCurrent reads, once per open store: orch checks its own package and inbox's, and
 * on PostgreSQL every catalog read is a round trip. Forgotten by migrate.
 */
const recorded = new WeakMap<Store, Promise<Record<string, number>>>();

function versionsOf(store: Store): Promise<Record<string, number>> {
  let versions = recorded.get(store);
  if (versions === undefined) {
    const read = async (db: Kysely<any>) => ((await migrationsTableExists(db, store)) ? recordedVersions(db) : {});
    // On PostgreSQL through the engine: a connection lost meanwhile is tried again, errors name the server.
    versions = store.kind === 'postgres' ? store.pg.plain(read) : read(store.db);
    // A failed read (a dropped connection, a foreign table) is not kept.
    versions.catch(() => recorded.delete(store));
    recorded.set(store, versions);
  }
  return versions;
}

/** Schema versions recorded in the file, by package (empty when it was never initialised). */
export async function schemaVersions(store: Store): Promise<Record<string, number>> {
  if (!(await migrationsTableExists(store.db, store))) return {};
  return recordedVersions(store.db);
}

/** The schema versions `schema_migrations` records, by package, read through `db` (a transaction's, say). */
export async function recordedVersions(db: Kysely<any>): Promise<Record<string, number>> {
  const rows = await (db as Kysely<MigrationsTable>)
    .selectFrom('schema_migrations')
    .select(['package', (eb) => eb.fn.max('version').as('version')])
    .groupBy('package')
    .orderBy('package')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.package, Number(r.version)]));
}

/** The columns of this project's `schema_migrations`; another program's table of that name (Rails has one) lacks them. */
const MIGRATION_COLUMNS = ['package', 'version', 'name', 'applied_at'];

/**
 * Whether the file has this project's `schema_migrations` table.
 *
 * @throws DatabaseUnavailableError DB_FOREIGN when a table of that name exists with other columns.
 */
async function migrationsTableExists(db: Kysely<any>, store: Store): Promise<boolean> {
  // One catalog read: a table that does not exist has no columns.
  const columns = await columnNames(db, store.kind, 'schema_migrations');
  if (columns.length === 0) return false;
  if (MIGRATION_COLUMNS.every((c) => columns.includes(c))) return true;
  const tables = await userTables(db, store.kind);
  throw new DatabaseUnavailableError(
    'DB_FOREIGN',
    `${store.path} belongs to another program: its schema_migrations table is not this tool's (columns ${columns.join(', ')}); refusing to use it`,
    { details: { tables } },
  );
}

// The catalog is the one thing each engine names differently: SQLite's sqlite_master and
// pragma_table_info; PostgreSQL's pg_catalog, in the store's schema (its search path). Not
// information_schema: it hides the tables a login has no rights on, so a login without them would
// see "not initialised" (or a foreign schema_migrations) instead of the permission error.

/** The tables of the database file, or of the store's schema on PostgreSQL, by name (`db` may be a transaction). */
export async function userTables(db: Kysely<any>, kind: Store['kind']): Promise<string[]> {
  const rows =
    kind === 'postgres'
      ? await sql<{ name: string }>`select tablename as name from pg_catalog.pg_tables
          where schemaname = current_schema() order by tablename collate "C"`.execute(db)
      : await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\' order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}

/** The columns of `table`, in their order (`db` may be a transaction). */
export async function columnNames(db: Kysely<any>, kind: Store['kind'], table: string): Promise<string[]> {
  const rows =
    kind === 'postgres'
      ? await sql<{ name: string }>`select a.attname as name from pg_catalog.pg_attribute a
          join pg_catalog.pg_class c on c.oid = a.attrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = current_schema() and c.relname = ${table} and a.attnum > 0 and not a.attisdropped order by a.attnum`.execute(db)
      : await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db);
  return rows.rows.map((r) => r.name);
}

async function currentVersion(db: Kysely<MigrationsTable>, pkg: string): Promise<number> {
  const row = await db
    .selectFrom('schema_migrations')
    .select((eb) => eb.fn.max('version').as('version'))
    .where('package', '=', pkg)
    .executeTakeFirst();
  return Number(row?.version ?? 0);
}

function tooNew(store: Store, set: MigrationSet, version: number): DatabaseUnavailableError {
  return new DatabaseUnavailableError(
    'DB_TOO_NEW',
    `${store.path} has ${set.package} schema version ${version}, newer than this code understands (${latestVersion(set)}); use a newer release of this tool`,
    { details: { package: set.package, version, supported: latestVersion(set) } },
  );
}

function assertOrdered(set: MigrationSet): void {
  set.migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`${set.package} migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
}
