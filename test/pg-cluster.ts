/**
 * A private PostgreSQL cluster for tests that stop, crash and restart the server (the shared one at
 * 127.0.0.1:5432 is used by other test files at the same time and must never be restarted).
 *
 * `initdb` into a temporary directory (as the `postgres` user when the tests run as root: initdb
 * refuses root), trust auth, a free port on 127.0.0.1, the socket in the same directory; stopped
 * (`-m immediate`) and removed by `stop()`, which the caller runs in afterAll whatever happened.
 *
 * `describeCluster` runs its describe only where PostgreSQL's server programs are installed; it
 * skips (one message) where they are not, except under CI=true, where it fails; it skips silently
 * in the sqlite project (ORCH_TEST_ENGINE=sqlite), like describePg.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'vitest';

const CI = process.env.CI === 'true' || process.env.CI === '1';

/** The newest installed server's bin directory (Debian's layout), if it has initdb and pg_ctl. */
function serverBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs
    .readdirSync(root)
    .filter((v) => fs.existsSync(path.join(root, v, 'bin/initdb')) && fs.existsSync(path.join(root, v, 'bin/pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : path.join(root, versions[0], 'bin');
}

export const PG_BIN = serverBin();
const asRoot = process.getuid?.() === 0;
let said = false;

/** A describe that runs where initdb and pg_ctl are installed (see the file comment). */
export function describeCluster(name: string, fn: () => void): void {
  if (process.env.ORCH_TEST_ENGINE === 'sqlite') {
    describe.skip(name, fn);
    return;
  }
  if (PG_BIN !== undefined) {
    describe(name, fn);
    return;
  }
  if (CI) {
    describe(name, () => {
      it('finds initdb and pg_ctl (CI=true: CI has PostgreSQL installed)', () => {
        throw new Error('no PostgreSQL server programs under /usr/lib/postgresql/*/bin (initdb, pg_ctl)');
      });
    });
    return;
  }
  if (!said) {
    said = true;
    console.log('PostgreSQL restart tests skipped: no initdb/pg_ctl under /usr/lib/postgresql/*/bin');
  }
  describe.skip(name, fn);
}

/** A free TCP port on 127.0.0.1 (free when asked; the server takes it right after). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Cluster {
  port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres?schema=`schema` */
  url(schema: string): string;
  /** `pg_ctl restart -m mode` (the server is down for as long as that takes). */
  restart(mode: 'fast' | 'immediate'): void;
  /** `pg_ctl stop -m mode`: the server is down until `start()`. */
  halt(mode: 'fast' | 'immediate'): void;
  start(): void;
  /** Stops the server (immediate) if it runs and removes its directory. Never throws. */
  stop(): void;
  /** The server's log, for failure messages. */
  log(): string;
}

/** initdb + pg_ctl start of a fresh cluster in a temporary directory. */
export async function startCluster(): Promise<Cluster> {
  const bin = PG_BIN;
  if (bin === undefined) throw new Error('no initdb/pg_ctl');
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-pg-'));
  const data = path.join(base, 'data');
  const logFile = path.join(base, 'server.log');
  const port = await freePort();
  const pgUser = asRoot ? spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }) : undefined;
  if (pgUser !== undefined) {
    const uid = Number(pgUser.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    if (pgUser.status !== 0 || !Number.isInteger(uid)) throw new Error('running as root, and there is no postgres user to run initdb as');
    fs.chownSync(base, uid, gid);
  }
  const run = (program: string, args: string[]) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, program), ...args]] : [path.join(bin, program), args];
    const r = spawnSync(cmd as string, argv as string[], { cwd: base, encoding: 'utf8', timeout: 180_000 });
    if (r.status !== 0) {
      const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
      throw new Error(`${program} ${args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr).slice(-2000)}\n${log}`);
    }
  };
  const serverOptions = `-p ${port} -k ${base} -c listen_addresses=127.0.0.1`;
  let running = false;
  const cluster: Cluster = {
    port,
    url: (schema) => `postgres://postgres@127.0.0.1:${port}/postgres?schema=${schema}`,
    restart(mode) {
      run('pg_ctl', ['-D', data, '-l', logFile, '-m', mode, '-w', '-t', '120', 'restart']);
    },
    halt(mode) {
      run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '120', 'stop']);
      running = false;
    },
    start() {
      run('pg_ctl', ['-D', data, '-l', logFile, '-o', serverOptions, '-w', '-t', '120', 'start']);
      running = true;
    },
    stop() {
      try {
        if (running || fs.existsSync(path.join(data, 'postmaster.pid'))) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']);
      } catch {
        // already down
      }
      running = false;
      fs.rmSync(base, { recursive: true, force: true });
    },
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
  };
  try {
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
    cluster.start();
  } catch (err) {
    cluster.stop();
    throw err;
  }
  return cluster;
}
