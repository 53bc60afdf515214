import { sql, type Kysely } from 'kysely';

// The queries of `inbox copy`: generic over tables, driven by the catalog. The source is always a
// SQLite file (sqlite_master, pragma_*), the target a PostgreSQL schema (information_schema,
// sequences). Table and column names come from the catalogs, never from input, and are quoted as
// identifiers all the same.

/** A connection to either database: the copy knows its tables only from the catalog, so they are untyped. */
// biome-ignore lint/suspicious/noExplicitAny: tables named by the catalog at run time
export type Db = Kysely<any>;

/** The rowid of a row read from the source, under a name no table of ours uses. */
export const ROWID = '__copy_rowid';

/** SQLite: the tables `table` references with foreign keys. */
export async function sqliteReferences(db: Db, table: string): Promise<string[]> {
  const r = await sql<{ name: string }>`select distinct "table" as name from pragma_foreign_key_list(${table}) order by 1`.execute(db);
  return r.rows.map((row) => row.name);
}

/** SQLite: whether `table` is a WITHOUT ROWID table (this code makes none; a copy pages by rowid). */
export async function sqliteWithoutRowid(db: Db, table: string): Promise<boolean> {
  const r = await sql<{ sql: string | null }>`select sql from sqlite_master where type = 'table' and name = ${table}`.execute(db);
  return /\bwithout\s+rowid\b/i.test(r.rows[0]?.sql ?? '');
}

/**
 * SQLite: the highest id each AUTOINCREMENT table ever handed out (`sqlite_sequence`), which may be
 * above the largest id left when rows were deleted: the target's counters continue from there.
 */
export async function sqliteSequences(db: Db): Promise<Map<string, number>> {
  const exists = await sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'table' and name = 'sqlite_sequence'`.execute(db);
  if (Number(exists.rows[0]?.n ?? 0) === 0) return new Map();
  const r = await sql<{ name: string; seq: number }>`select name, seq from sqlite_sequence`.execute(db);
  return new Map(r.rows.map((row) => [row.name, Number(row.seq)]));
}

/** Rows in `table`. */
export async function countRows(db: Db, table: string): Promise<number> {
  const r = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Whether `table` has any row (without counting them all). */
export async function hasRows(db: Db, table: string): Promise<boolean> {
  const r = await db.selectFrom(table).select(sql`1`.as('one')).limit(1).execute();
  return r.length > 0;
}

/**
 * SQLite: up to `limit` rows of `table` after rowid `after`, in rowid order, with their rowid under
 * ROWID. Paging by rowid keeps each read small and, inside one read transaction, sees one snapshot.
 */
export async function readPage(db: Db, table: string, columns: string[], after: number, limit: number): Promise<Record<string, unknown>[]> {
  return db
    .selectFrom(table)
    .select([sql.ref('rowid').as(ROWID), ...columns.map((c) => sql.ref(c).as(c))])
    .where(sql.ref('rowid'), '>', after)
    .orderBy(sql.ref('rowid'))
    .limit(limit)
    .execute();
}

/** Inserts `rows` (objects keyed by column) into `table` as they are: ids and all. */
export async function insertRows(db: Db, table: string, rows: Record<string, unknown>[]): Promise<void> {
  if (rows.length > 0) await db.insertInto(table).values(rows).execute();
}

/** Deletes every row of `table` (a seeded table about to take the source's rows). */
export async function deleteAllRows(db: Db, table: string): Promise<void> {
  await db.deleteFrom(table).execute();
}

/** PostgreSQL: the columns of the current schema filled from a sequence (bigserial), by table. */
export async function pgSerialColumns(db: Db): Promise<{ table: string; column: string }[]> {
  const r = await sql<{ table: string; column: string }>`select table_name as "table", column_name as "column"
    from information_schema.columns
    where table_schema = current_schema() and column_default like 'nextval(%'
    order by table_name collate "C", column_name collate "C"`.execute(db);
  return r.rows;
}

/** The largest value of `column` in `table`, or 0 when it is empty. */
export async function maxOf(db: Db, table: string, column: string): Promise<number> {
  const r = await db
    .selectFrom(table)
    .select(sql<number | null>`max(${sql.ref(column)})`.as('max'))
    .executeTakeFirstOrThrow();
  return Number(r.max ?? 0);
}

/**
 * PostgreSQL: sets the sequence behind `table.column` so that the next row gets `last + 1` (1 when
 * `last` is 0). `setval` is not transactional: a copy rolled back leaves the counter moved, which is
 * harmless (ids are only required to be unique and increasing).
 */
export async function setSequence(db: Db, table: string, column: string, last: number): Promise<void> {
  await sql`select setval(pg_get_serial_sequence(quote_ident(${table}), ${column}), ${Math.max(last, 1)}, ${last > 0})`.execute(db);
}
