/**
 * test/engine.ts's way to PostgreSQL: one worker thread holding a `pg` connection per URL, called
 * synchronously (the caller blocks on Atomics.wait until the worker answers through a message port).
 */
import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { pgConnectionString } from './engine-env.ts';

export interface PgRequest {
  op: 'query' | 'many' | 'snapshot';
  url: string;
  text: string;
  /** The parameters; for `many`, one list per run of the statement. */
  params: unknown[];
  readonly: boolean;
  foreignKeysOff?: boolean;
  /** Connect without choosing the schema (to ask whether it exists). */
  noSchema?: boolean;
}

type PgReply = { ok: true; value: unknown } | { ok: false; message: string; code?: string };

let pgWorker: { worker: Worker; port: MessagePort } | undefined;

/** Runs `req` on the worker and returns its value; throws the server's error (with its `code`). */
export function pgCall(req: PgRequest): unknown {
  if (pgWorker === undefined) {
    const { port1, port2 } = new MessageChannel();
    const pgPath = createRequire(import.meta.url).resolve('pg');
    const worker = new Worker(PG_WORKER_SOURCE, { eval: true, workerData: { pgPath, port: port2 }, transferList: [port2] });
    // The worker never keeps a test process alive; its connections end with the process.
    worker.unref();
    pgWorker = { worker, port: port1 };
  }
  const done = new Int32Array(new SharedArrayBuffer(4));
  pgWorker.worker.postMessage({ req: { ...req, connectionString: pgConnectionString(req.url) }, done });
  if (Atomics.wait(done, 0, 0, 120_000) === 'timed-out') throw new Error(`rawSql on ${req.url}: no answer from PostgreSQL within 120 s`);
  const reply = receiveMessageOnPort(pgWorker.port)?.message as PgReply | undefined;
  if (reply === undefined) throw new Error('rawSql: the PostgreSQL worker answered nothing');
  if (!reply.ok) throw Object.assign(new Error(`${reply.message} (SQL: ${req.text.slice(0, 200)})`), { code: reply.code });
  return reply.value;
}

// Plain CommonJS run by the worker thread (eval'd, so it cannot be TypeScript).
const PG_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const pg = require(workerData.pgPath);
const port = workerData.port;
const types = {
  getTypeParser(oid, format) {
    if (oid === 20 || oid === 21 || oid === 23 || oid === 1700) return (v) => (v === null ? null : Number(v));
    if (oid === 114 || oid === 3802) return (v) => v;
    return pg.types.getTypeParser(oid, format);
  },
};
const clients = new Map();
async function client(connectionString) {
  let c = clients.get(connectionString);
  if (!c) {
    c = new pg.Client({ connectionString, types, connectionTimeoutMillis: 10000 });
    await c.connect();
    c.on('error', () => clients.delete(connectionString));
    clients.set(connectionString, c);
  }
  return c;
}
const ident = (s) => '"' + s.replace(/"/g, '""') + '"';
async function run({ op, url, connectionString, text, params, readonly, foreignKeysOff, noSchema }) {
  const schema = new URL(url).searchParams.get('schema') || 'public';
  const c = await client(connectionString);
  if (noSchema) return (await c.query(text, params)).rows;
  const exists = (await c.query('select 1 from pg_namespace where nspname = $1', [schema])).rows.length > 0;
  if (!exists) {
    if (readonly) throw Object.assign(new Error('schema ' + schema + ' does not exist'), { code: '3F000' });
    await c.query('create schema if not exists ' + ident(schema));
  }
  await c.query('set search_path to ' + ident(schema));
  if (op === 'snapshot') return snapshot(c, schema);
  const wrap = readonly || foreignKeysOff || op === 'many';
  if (!wrap) return lastRows(await c.query(text, params));
  await c.query(readonly ? 'begin read only' : 'begin');
  try {
    if (foreignKeysOff) await c.query('set local session_replication_role = replica');
    let out = [];
    if (op === 'many') for (const p of params) await c.query(text, p);
    else out = lastRows(await c.query(text, params));
    await c.query(readonly ? 'rollback' : 'commit');
    return out;
  } catch (err) {
    await c.query('rollback').catch(() => undefined);
    throw err;
  }
}
function lastRows(r) {
  if (!Array.isArray(r)) return r.rows;
  for (let i = r.length - 1; i >= 0; i--) if (r[i].fields && r[i].fields.length > 0) return r[i].rows;
  return [];
}
async function snapshot(c, schema) {
  const tables = (await c.query(
    "select table_name as name from information_schema.tables where table_schema = $1 and table_type = 'BASE TABLE' order by 1", [schema])).rows;
  const out = [];
  for (const { name } of tables) {
    const columns = (await c.query(
      'select column_name, data_type, is_nullable, column_default from information_schema.columns where table_schema = $1 and table_name = $2 order by ordinal_position',
      [schema, name])).rows;
    const indexes = (await c.query('select indexname, indexdef from pg_indexes where schemaname = $1 and tablename = $2 order by 1', [schema, name])).rows;
    const rows = (await c.query('select * from ' + ident(schema) + '.' + ident(name))).rows;
    const keyed = rows.map((r) => [JSON.stringify(r), r]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    // Definitions name the schema (indexes, sequence defaults); a copy's must compare equal.
    const anon = (v) => (typeof v === 'string' ? v.split(schema).join('<schema>') : v);
    out.push({
      name,
      columns: columns.map((col) => ({ ...col, column_default: anon(col.column_default) })),
      indexes: indexes.map((i) => ({ ...i, indexdef: anon(i.indexdef) })),
      rows: keyed.map((k) => k[1]),
    });
  }
  return out;
}
parentPort.on('message', async ({ req, done }) => {
  let reply;
  try {
    reply = { ok: true, value: await run(req) };
  } catch (err) {
    reply = { ok: false, message: String((err && err.message) || err), code: err && err.code };
  }
  port.postMessage(reply);
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
});
`;
