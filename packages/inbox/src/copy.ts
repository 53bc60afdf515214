import {
  ConflictError,
  DatabaseUnavailableError,
  ValidationError,
  columnNames,
  isPostgresUrl,
  latestVersion,
  migrate,
  openDatabase,
  openStore,
  readTransaction,
  recordedVersions,
  redactLocation,
  userTables,
  writeTransaction,
  type MigrationSet,
  type Store,
} from '@orch/store';
import {
  ROWID,
  countRows,
  deleteAllRows,
  hasRows,
  insertRows,
  maxOf,
  pgSerialColumns,
  readPage,
  setSequence,
  sqliteReferences,
  sqliteSequences,
  sqliteWithoutRowid,
  type Db,
} from './queries/copy.ts';

/** A package whose tables a copy can create on the target. */
export interface CopyPackage {
  migrations: MigrationSet;
  /** The command that brings a source file's tables of this package up to date, for messages. */
  upgradeHint(file: string): string;
}

export interface CopyOptions {
  /** The SQLite file to copy. It is only read, in one read transaction, and may be in use. */
  from: string;
  /** The PostgreSQL URL to copy into: a schema with none of our data yet. */
  to: string;
  /** The packages this copy knows, in migration order (inbox first). */
  packages: CopyPackage[];
  nativeBinding?: string;
  busyTimeoutMs?: number;
}

export interface CopyResult {
  /** The source file's absolute path. */
  from: string;
  /** The target URL, without its password. */
  to: string;
  /** The schema version of every package copied (the source's, now also the target's). */
  schema_version: Record<string, number>;
  /** Rows copied, by table, in the order they were copied; every count was checked on the target. */
  tables: Record<string, { rows: number }>;
  /** Rows copied in all. */
  rows: number;
}

/** Most bind parameters one insert uses (PostgreSQL's limit is 65535). */
const MAX_PARAMS = 30_000;
/** Most rows one page read from the source holds. */
const MAX_PAGE_ROWS = 1000;
/** An insert is cut after this many characters of text, so a page of large messages is several statements. */
const MAX_INSERT_CHARS = 4 * 1024 * 1024;

const MIGRATIONS_TABLE = 'schema_migrations';

/**
 * Copies a SQLite database into an empty PostgreSQL schema: creates the tables there if needed (the
 * same migrations, so the same schema versions), then copies every row of every table in one write
 * transaction (all or nothing), in batches, in foreign-key order, ids and timestamps as they are;
 * sets the id counters past the copied ids; and checks that every table holds as many rows as the
 * source's. The source's `schema_migrations` is not copied: the target records its own.
 *
 * @throws ValidationError (2) when `to` is not a PostgreSQL URL or `from` is one;
 *   DatabaseUnavailableError (6) when either cannot be opened, the source is not initialised
 *   (DB_NOT_INITIALISED), older than this code (DB_OUTDATED: upgrade it first), newer (DB_TOO_NEW),
 *   or holds tables this copy cannot create (DB_FOREIGN); ConflictError (4) when the target already
 *   holds data (nothing is written then).
 */
export async function copyDatabase(options: CopyOptions): Promise<CopyResult> {
  checkLocations(options);
  const source = openStore({
    path: options.from,
    readOnly: true,
    initHint: `inbox --db ${options.from} init`,
    ...(options.nativeBinding ? { nativeBinding: options.nativeBinding } : {}),
  });
  try {
    const versions = await readTransaction(source, (src) => sourceVersions(src, source, options));
    const target = await openDatabase({
      path: options.to,
      create: true,
      ...(options.busyTimeoutMs ? { busyTimeoutMs: options.busyTimeoutMs } : {}),
    });
    try {
      const sets = options.packages.map((p) => p.migrations).filter((m) => versions[m.package] !== undefined);
      const seeded = new Set(options.packages.flatMap((p) => p.migrations.seeded ?? []));
      // Refused before anything is written: an existing target is not even upgraded.
      await readTransaction(target, (dst) => assertEmpty(dst, target, seeded));
      for (const set of sets) await migrate(target, set, target.clock);
      const tables = await readTransaction(source, (src) =>
        writeTransaction(target, async (dst) => {
          await assertEmpty(dst, target, seeded);
          return copyTables(src, dst, seeded);
        }),
      );
      return {
        from: source.location,
        to: target.location,
        schema_version: versions,
        tables,
        rows: Object.values(tables).reduce((sum, t) => sum + t.rows, 0),
      };
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

function checkLocations(options: CopyOptions): void {
  const problems: { path: string; message: string }[] = [];
  if (options.from.trim() === '') problems.push({ path: 'from', message: 'the SQLite file to copy is required' });
  else if (isPostgresUrl(options.from)) problems.push({ path: 'from', message: 'must be a SQLite database file, not a PostgreSQL URL' });
  if (!isPostgresUrl(options.to)) {
    problems.push({
      path: 'to',
      message: `must be a PostgreSQL URL (postgres://[USER@]HOST[:PORT]/DATABASE?schema=NAME), not ${JSON.stringify(redactLocation(options.to))}`,
    });
  }
  if (problems.length > 0) throw new ValidationError(problems.map((p) => `--${p.path}: ${p.message}`).join('; '), problems);
}

/**
 * The source's schema versions, checked: initialised, every package known to this copy and at this
 * code's version.
 */
async function sourceVersions(db: Db, source: Store, options: CopyOptions): Promise<Record<string, number>> {
  const hint = options.packages[0]?.upgradeHint(source.path) ?? `inbox --db ${source.path} init`;
  if (!(await userTables(db, source.kind)).includes(MIGRATIONS_TABLE)) {
    throw new DatabaseUnavailableError('DB_NOT_INITIALISED', `${source.path} is not initialised; nothing to copy (create it with \`${hint}\`)`);
  }
  const versions = await recordedVersions(db);
  if (Object.keys(versions).length === 0) {
    throw new DatabaseUnavailableError('DB_NOT_INITIALISED', `${source.path} is not initialised; nothing to copy (create it with \`${hint}\`)`);
  }
  for (const [pkg, version] of Object.entries(versions)) {
    const known = options.packages.find((p) => p.migrations.package === pkg);
    if (known === undefined) {
      throw new DatabaseUnavailableError(
        'DB_FOREIGN',
        `${source.path} holds ${pkg} tables (schema version ${version}), which this command cannot create; copy it with \`orch copy\`, which knows every package's tables`,
        { details: { package: pkg, version } },
      );
    }
    const latest = latestVersion(known.migrations);
    if (version < latest) {
      throw new DatabaseUnavailableError(
        'DB_OUTDATED',
        `${source.path} has ${pkg} schema version ${version} but this code copies version ${latest}; upgrade it first with \`${known.upgradeHint(source.path)}\`, then copy again`,
        { details: { package: pkg, version, expected: latest } },
      );
    }
    if (version > latest) {
      throw new DatabaseUnavailableError(
        'DB_TOO_NEW',
        `${source.path} has ${pkg} schema version ${version}, newer than this code understands (${latest}); use a newer release of this tool`,
        { details: { package: pkg, version, supported: latest } },
      );
    }
  }
  return versions;
}

/**
 * Refuses a target that holds any row of ours: in any table but the migrations' record and the
 * seeded settings.
 */
async function assertEmpty(db: Db, target: Store, seeded: Set<string>): Promise<void> {
  const filled: string[] = [];
  for (const table of await userTables(db, target.kind)) {
    if (table === MIGRATIONS_TABLE || seeded.has(table)) continue;
    if (await hasRows(db, table)) filled.push(table);
  }
  if (filled.length > 0) {
    throw new ConflictError(
      `${target.path} already holds data (rows in ${filled.join(', ')}); copy only into an empty schema (a new ?schema=NAME), nothing was written`,
      { tables: filled },
    );
  }
}

/** Copies every table of the source inside the target's write transaction; returns the checked counts. */
async function copyTables(src: Db, dst: Db, seeded: Set<string>): Promise<Record<string, { rows: number }>> {
  const tables = await sourceTables(src);
  const targetTables = new Set(await userTables(dst, 'postgres'));
  const plans: { table: string; columns: string[] }[] = [];
  for (const table of tables) {
    const columns = await columnNames(src, 'sqlite', table);
    const targetColumns = targetTables.has(table) ? await columnNames(dst, 'postgres', table) : [];
    if (!sameSet(columns, targetColumns)) {
      throw new DatabaseUnavailableError(
        'DB_FOREIGN',
        targetColumns.length === 0
          ? `the source's table ${table} is not part of this tool's schema; refusing to copy it`
          : `the source's table ${table} has columns (${columns.join(', ')}) other than this tool's (${targetColumns.join(', ')}); refusing to copy it`,
        { details: { table } },
      );
    }
    if (await sqliteWithoutRowid(src, table)) throw new Error(`internal error (this is a bug): ${table} is a WITHOUT ROWID table`);
    plans.push({ table, columns });
  }
  const counts: Record<string, { rows: number }> = {};
  for (const { table, columns } of plans) {
    if (seeded.has(table)) await deleteAllRows(dst, table);
    counts[table] = { rows: await copyTable(src, dst, table, columns) };
  }
  await advanceSequences(src, dst);
  for (const { table } of plans) {
    const copied = await countRows(dst, table);
    const expected = counts[table]?.rows ?? 0;
    if (copied !== expected) throw new Error(`internal error (this is a bug): ${table} has ${copied} rows on the target after copying ${expected}`);
  }
  return counts;
}

/** The source's tables but the migrations' record, parents before children (foreign keys), else by name. */
async function sourceTables(src: Db): Promise<string[]> {
  const names = (await userTables(src, 'sqlite')).filter((t) => t !== MIGRATIONS_TABLE);
  const parents = new Map<string, string[]>();
  for (const name of names)
    parents.set(
      name,
      (await sqliteReferences(src, name)).filter((p) => p !== name && names.includes(p)),
    );
  const ordered: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (ordered.includes(name)) return;
    if (visiting.has(name)) throw new Error(`internal error (this is a bug): the foreign keys of ${name} form a cycle`);
    visiting.add(name);
    for (const parent of parents.get(name) ?? []) visit(parent);
    visiting.delete(name);
    ordered.push(name);
  };
  for (const name of names) visit(name);
  return ordered;
}

/** Copies one table page by page; returns the rows copied (the source's count, read in the same snapshot). */
async function copyTable(src: Db, dst: Db, table: string, columns: string[]): Promise<number> {
  const expected = await countRows(src, table);
  const pageRows = Math.max(1, Math.min(MAX_PAGE_ROWS, Math.floor(MAX_PARAMS / columns.length)));
  let after = 0;
  let copied = 0;
  for (;;) {
    const page = await readPage(src, table, columns, after, pageRows);
    if (page.length === 0) break;
    after = Number(page[page.length - 1]?.[ROWID]);
    for (const batch of batchesBySize(page.map((row) => withoutRowid(row, columns)))) await insertRows(dst, table, batch);
    copied += page.length;
  }
  if (copied !== expected) throw new Error(`internal error (this is a bug): read ${copied} rows of ${table}, expected ${expected}`);
  return copied;
}

function withoutRowid(row: Record<string, unknown>, columns: string[]): Record<string, unknown> {
  return Object.fromEntries(columns.map((c) => [c, row[c]]));
}

/** Cuts a page into inserts of at most MAX_INSERT_CHARS characters of text (at least one row each). */
function* batchesBySize(rows: Record<string, unknown>[]): Generator<Record<string, unknown>[]> {
  let batch: Record<string, unknown>[] = [];
  let size = 0;
  for (const row of rows) {
    const rowSize = Object.values(row).reduce<number>((n, v) => n + (typeof v === 'string' ? v.length : 8), 0);
    if (batch.length > 0 && size + rowSize > MAX_INSERT_CHARS) {
      yield batch;
      batch = [];
      size = 0;
    }
    batch.push(row);
    size += rowSize;
  }
  if (batch.length > 0) yield batch;
}

/**
 * Every id counter (bigserial) continues after the largest id the source ever handed out: its
 * `sqlite_sequence`, which counts deleted rows too, or the largest id copied.
 */
async function advanceSequences(src: Db, dst: Db): Promise<void> {
  const handedOut = await sqliteSequences(src);
  for (const { table, column } of await pgSerialColumns(dst)) {
    const last = Math.max(await maxOf(dst, table, column), handedOut.get(table) ?? 0);
    await setSequence(dst, table, column, last);
  }
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
