// Bench worker processes, bundled by scripts/bench.mjs: each mode claims jobs in a loop until none
// are left and prints {mode, pid, claimed, ms} as JSON. All start together once the go file exists.
// DB is a file, or for the pg-* modes a postgres:// URL naming the schema.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import pg from 'pg';
import { better, defineQueue } from 'plainjob';
import { claim, openInbox } from '@orch/inbox';

async function waitForGo(goFile: string): Promise<void> {
  process.stdout.write('ready\n');
  while (!fs.existsSync(goFile)) await new Promise((r) => setTimeout(r, 2));
}

async function main(): Promise<void> {
  const [mode, db, goFile, nativeBinding] = process.argv.slice(2);
  if (!mode || !db || !goFile) throw new Error('usage: worker MODE DB GOFILE [NATIVE]');
  let claimed = 0;
  let start = 0;
  if (mode === 'lib' || mode === 'pg-lib') {
    const inbox = await openInbox({ path: db, ...(nativeBinding ? { nativeBinding } : {}) });
    await waitForGo(goFile);
    start = performance.now();
    for (;;) {
      const r = await claim(inbox, { agent: 'bench' });
      if (!r.claimed) break;
      claimed += 1;
    }
    await inbox.close();
  } else if (mode === 'raw') {
    const conn = new Database(db, nativeBinding ? { nativeBinding } : {});
    conn.pragma('busy_timeout = 5000');
    const take = conn.prepare(
      "update raw_jobs set state = 'claimed', claimed_by = ?, lease_expires_at = ? where id = (select id from raw_jobs where state = 'open' order by id limit 1) and state = 'open' returning id",
    );
    const begin = conn.prepare('begin immediate');
    const commit = conn.prepare('commit');
    await waitForGo(goFile);
    start = performance.now();
    for (;;) {
      begin.run();
      const row = take.get(String(process.pid), Date.now() + 900_000);
      commit.run();
      if (!row) break;
      claimed += 1;
    }
    conn.close();
  } else if (mode === 'pg-raw') {
    // What the library's claim does, by hand: one transaction picking the oldest open row with
    // FOR UPDATE SKIP LOCKED and taking it, over one connection (the library's default pool).
    const url = new URL(db);
    const schema = url.searchParams.get('schema') ?? 'public';
    url.searchParams.delete('schema');
    const client = new pg.Client({ connectionString: url.toString(), options: `-c search_path=${schema}` });
    await client.connect();
    const take = {
      name: 'take',
      text:
        "update raw_jobs set state = 'claimed', claimed_by = $1, lease_expires_at = $2 " +
        "where id = (select id from raw_jobs where state = 'open' order by id limit 1 for update skip locked) returning id",
    };
    await waitForGo(goFile);
    start = performance.now();
    for (;;) {
      await client.query('begin');
      const r = await client.query({ ...take, values: [String(process.pid), Date.now() + 900_000] });
      await client.query('commit');
      if (r.rowCount === 0) break;
      claimed += 1;
    }
    await client.end();
  } else if (mode === 'plainjob') {
    const conn = new Database(db, nativeBinding ? { nativeBinding } : {});
    conn.pragma('busy_timeout = 5000');
    const queue = defineQueue({ connection: better(conn) });
    await waitForGo(goFile);
    start = performance.now();
    for (;;) {
      const job = queue.getAndMarkJobAsProcessing('bench');
      if (!job) break;
      claimed += 1;
    }
    queue.close();
    conn.close();
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(`${JSON.stringify({ mode, pid: process.pid, claimed, ms: performance.now() - start })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
