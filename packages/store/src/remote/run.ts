import type { CliSpec, CommandDefinition } from '../command.ts';
import { UsageError } from '../errors.ts';
import { readTextFile } from '../files.ts';
import { MAX_TEXT_BYTES } from '../flags.ts';
import { callRemote, type RemoteResult } from './call.ts';
import { newIdempotencyKey } from './client.ts';
import { remoteTarget, type RemoteTarget } from './target.ts';

// The CLI's remote mode: `--db http(s)://...` sends the command, parsed and validated here as on a
// file, to `orch serve` and prints its answer as the command's own output. See docs/remote.md.

/** Commands that never run against a server: they set the server's database up or are servers. */
const NOT_SERVED: Record<string, string> = {
  'inbox init': 'initialise the database where the server runs: `inbox --db PATH init`',
  'orch serve': 'a server serves a database (a SQLite file or a postgres:// URL), not another server',
  'orch token create': 'tokens are made where the server runs: `orch --db PATH token create ...`',
  'orch token list': 'tokens are listed where the server runs: `orch --db PATH token list`',
  'orch token revoke': 'tokens are revoked where the server runs: `orch --db PATH token revoke ...`',
};

/** Commands that run on this machine and call the server for each database operation (and any that `streams`). */
const RUN_HERE = new Set(['inbox work']);

/**
 * Flags naming a file the command reads, with the most it reads: over HTTP the client reads the
 * file and sends its text in `$files`, keyed by the path as given (the server never reads its own disk).
 */
const FILE_FLAGS: Record<string, number> = { 'body-file': MAX_TEXT_BYTES, 'dispatch-json': 64 * 1024 * 1024 };

/** What the CLI parsed: the command, its raw flag values (camelCase) and its validated input. */
export interface RemoteInvocation {
  spec: CliSpec;
  def: CommandDefinition;
  dbPath: string;
  raw: Record<string, unknown>;
  input: unknown;
  tokenFile: string | undefined;
  insecureHttp: boolean | undefined;
  cwd: string;
  env: Record<string, string | undefined>;
}

export type RemoteOutcome = ({ kind: 'answer' } & RemoteResult) | { kind: 'here'; target: RemoteTarget };

/**
 * Sends the command to the server and returns its answer, or says the command runs here with the
 * server as its database (`inbox work`).
 *
 * @throws UsageError (2) for a command that is not served and for a bad URL or token (see
 *   remoteTarget); ValidationError (2) for a file that cannot be read; as callRemote.
 */
export async function runRemote(inv: RemoteInvocation): Promise<RemoteOutcome> {
  const { spec, def } = inv;
  const command = def.name === '$0' ? spec.program : `${spec.program} ${def.name}`;
  const why = NOT_SERVED[command] ?? (def.ownsStdio ? 'it serves its own protocol on stdin/stdout; run it with --db PATH where the database is' : undefined);
  if (why !== undefined) throw new UsageError(`\`${command}\` does not run against a server URL: ${why}`);
  const target = remoteTarget(inv.dbPath, { tokenFile: inv.tokenFile, insecureHttp: inv.insecureHttp, env: inv.env, cwd: inv.cwd });
  if (RUN_HERE.has(command) || def.streams?.(inv.input)) return { kind: 'here', target };
  const files = readFiles(def, inv.raw, inv.cwd);
  const answer = await callRemote(target, spec.program, def.name, inv.raw, files, {
    idempotencyKey: newIdempotencyKey(),
    timeoutMs: 30_000 + 1000 * waitOf(inv.input),
  });
  return { kind: 'answer', ...answer };
}

function readFiles(def: CommandDefinition, raw: Record<string, unknown>, cwd: string): Record<string, string> | undefined {
  let files: Record<string, string> | undefined;
  for (const [flag, maxBytes] of Object.entries(FILE_FLAGS)) {
    if (!Object.hasOwn(def.flags, flag)) continue;
    const value = raw[flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())];
    if (typeof value !== 'string') continue;
    files ??= {};
    files[value] = readTextFile({ cwd }, value, flag, maxBytes);
  }
  return files;
}

/** The longest the command itself may wait on the server, in seconds (`--wait-seconds`, `--timeout-seconds`). */
function waitOf(input: unknown): number {
  const v = input as { waitSeconds?: unknown; timeoutSeconds?: unknown } | undefined;
  return Math.max(typeof v?.waitSeconds === 'number' ? v.waitSeconds : 0, typeof v?.timeoutSeconds === 'number' ? v.timeoutSeconds : 0);
}
