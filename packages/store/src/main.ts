import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { commandInput, parseCommandLine } from './cli.ts';
import type { Clock } from './clock.ts';
import type { CliSpec, CommandContext } from './command.ts';
import { AppError, ExitCode, OutputFailedError, toAppError, type ErrorJson } from './errors.ts';
import { randomIds, type IdGenerator } from './ids.ts';
import { writeJson } from './json-stream.ts';
import { visible } from './text.ts';
import { redactLocation } from './location.ts';
import { isRemoteUrl } from './remote/target.ts';

/**
 * Where a CLI writes. `write` may return a promise: it then resolves once the text is written and
 * rejects when it cannot be (a full disk, a closed pipe), which the CLI reports (exit 7).
 */
export interface CliIo {
  /** `isTTY`: stdout is a terminal (only `verbatimText` commands look at it). */
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
  cwd: string;
  clock?: Clock;
  ids?: IdGenerator;
  nativeBinding?: string;
  /** The environment (ORCH_TOKEN, ORCH_RETRY_SECONDS, ORCH_INSECURE_HTTP for a server URL). Default: process.env. */
  env?: Record<string, string | undefined>;
}

/**
 * Parses `args`, runs the chosen command and writes its result: JSON with `--json` (exactly one
 * document on stdout), text otherwise (control characters made visible, see `visible`). Errors
 * become one line on stderr (a JSON object with `--json`). Output that cannot be written after
 * the command finished is OUTPUT_FAILED (exit 7), saying whether its change was committed and how
 * to see it. Returns the exit code; this is the only place errors turn into exit codes.
 */
export async function runCli(spec: CliSpec, args: string[], io: CliIo): Promise<number> {
  const dashdash = args.indexOf('--');
  const head = dashdash >= 0 ? args.slice(0, dashdash) : args;
  const rest = dashdash >= 0 ? args.slice(dashdash + 1) : undefined;
  let json = jsonRequested(head);
  try {
    const chosen = await parseCommandLine(spec, head);
    if (!chosen) return ExitCode.ok;
    const { def } = chosen;
    json = chosen.argv.json === true;
    const { dbPath, input, raw } = commandInput(spec, chosen, rest);
    let ctx: CommandContext = {
      dbPath,
      // No clock unless injected: the opened store brings the one leases are judged by (on
      // PostgreSQL the server's; the system clock here would let a skewed client misjudge leases).
      ...(io.clock ? { clock: io.clock } : {}),
      ids: io.ids ?? randomIds,
      cwd: io.cwd,
      ...(io.nativeBinding ? { nativeBinding: io.nativeBinding } : {}),
      ...(json ? { json: true } : {}),
      stdout: io.stdout,
    };
    let result: unknown;
    let exitCode: number | undefined;
    if (def.usesDb !== false && isRemoteUrl(dbPath)) {
      // Remote mode (docs/remote.md): the flags were checked above exactly as for a file; the server runs the command.
      const { runRemote } = await import('./remote/run.ts');
      const remote = await runRemote({
        spec,
        def,
        dbPath,
        raw,
        input,
        tokenFile: typeof chosen.argv['token-file'] === 'string' ? chosen.argv['token-file'] : undefined,
        insecureHttp: chosen.argv['insecure-http'] === true,
        cwd: io.cwd,
        env: io.env ?? process.env,
      });
      if (remote.kind === 'answer') {
        result = remote.result;
        exitCode = remote.exitCode;
      } else {
        ctx = { ...ctx, remote: remote.target };
      }
    }
    if (exitCode === undefined) result = await def.run(ctx, input);
    // A protocol server, or a command that wrote as it went, wrote its own output; nothing may follow it on stdout.
    if (def.ownsStdio || def.streams?.(input)) return def.exitCode?.(result) ?? ExitCode.ok;
    // JSON is written in chunks: a large answer never has to fit in one string. Making the text
    // can only fail by a bug (exit 1); writing it fails when the output is unwritable (exit 7).
    const writes: Promise<unknown>[] = [];
    const write = (chunk: string) => writes.push(Promise.resolve().then(() => io.stdout.write(chunk)));
    try {
      if (json) {
        writeJson({ write }, result);
        write('\n');
      } else {
        const text = ensureNewline(def.text(result));
        write(def.verbatimText && io.stdout.isTTY !== true ? text : visible(text, { multiline: true }));
      }
    } catch (err) {
      for (const w of writes) w.catch(() => undefined);
      throw err;
    }
    try {
      await Promise.all(writes);
    } catch (writeErr) {
      for (const w of writes) w.catch(() => undefined);
      throw outputFailed(spec, def.name, dbPath, result, input, writeErr);
    }
    return exitCode ?? def.exitCode?.(result) ?? ExitCode.ok;
  } catch (err) {
    const appError = toAppError(err);
    // stderr may be as unwritable as stdout: the exit code is all that is left to say it then.
    const say = async (text: string) => {
      try {
        await io.stderr.write(text);
      } catch {
        // nowhere left to write
      }
    };
    if (json) {
      const body: ErrorJson = { error: { code: appError.code, message: appError.message } };
      if (appError.details !== undefined) body.error.details = appError.details;
      await say(`${JSON.stringify(body)}\n`);
    } else {
      await say(`${spec.program}: ${visible(appError.message)}\n`);
    }
    if (appError.exitCode === ExitCode.internal && !(err instanceof AppError) && err instanceof Error && err.stack) {
      await say(`${visible(err.stack, { multiline: true })}\n`);
    }
    return appError.exitCode;
  }
}

/**
 * The error for output that could not be written after `command` finished: committed or not, and
 * for a command listed in `afterCommit`, the command line that shows what it did.
 */
function outputFailed(spec: CliSpec, command: string, dbPath: string, result: unknown, input: unknown, err: unknown): OutputFailedError {
  const code = (err as { code?: unknown } | undefined)?.code;
  const why = code === 'EPIPE' ? 'the reader closed the pipe (EPIPE)' : err instanceof Error ? err.message : String(err);
  const name = `${spec.program} ${command}`;
  const see = spec.afterCommit?.[command]?.(result, input);
  if (see === undefined) {
    return new OutputFailedError(`\`${name}\` finished but its output could not be written: ${why}; it is safe to run again`, {
      committed: false,
      cause: typeof code === 'string' ? code : null,
    });
  }
  const look = `${spec.program} --db ${shellWord(redactLocation(dbPath))} ${see}`;
  return new OutputFailedError(
    `\`${name}\` succeeded and its change is committed, but its output could not be written: ${why}; do not run it again: see what it did with \`${look}\``,
    { committed: true, see: look, cause: typeof code === 'string' ? code : null },
  );
}

/** `word` quoted for a POSIX shell when it needs to be. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The native SQLite addon a bundled CLI in `bundleDir` loads: the `better_sqlite3.node` copied
 * beside it (the repository's build, the skill folders), else the one the install of the npm
 * package's `better-sqlite3` dependency built (pinned to the version the bundle holds; see
 * docs/install.md). Undefined when neither is there: opening a SQLite database then fails as
 * DB_NATIVE_MODULE.
 */
export function nativeAddon(bundleDir: string): string | undefined {
  const beside = path.join(bundleDir, 'better_sqlite3.node');
  if (fs.existsSync(beside)) return beside;
  try {
    const pkg = createRequire(path.join(bundleDir, 'index.js')).resolve('better-sqlite3/package.json');
    const installed = path.join(path.dirname(pkg), 'build/Release/better_sqlite3.node');
    return fs.existsSync(installed) ? installed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The whole body of a bundled CLI's entry file: the native SQLite addon (`nativeAddon`), stdout
 * and stderr whose failures (a full disk, a closed pipe) become OUTPUT_FAILED (exit 7) instead of
 * a crash, and the exit code.
 */
export function runMain(spec: CliSpec, bundleDir: string): void {
  const addon = nativeAddon(bundleDir);
  // A failed write is reported through its callback (below); the stream's 'error' event would
  // otherwise crash the process with a stack after the command committed.
  let stdoutFailed: unknown;
  process.stdout.on('error', (err) => (stdoutFailed ??= err));
  // Listened to from the start: a warning Node writes there on its own must not crash the process.
  process.stderr.on('error', () => undefined);
  const stderr = () => process.stderr;
  void runCli(spec, process.argv.slice(2), {
    stdout: { write: (text: string) => writeStream(process.stdout, text), isTTY: process.stdout.isTTY === true },
    stderr: { write: (text: string) => writeStream(stderr(), text) },
    cwd: process.cwd(),
    ...(addon !== undefined ? { nativeBinding: addon } : {}),
  }).then(async (code) => {
    // Help and version text are printed by yargs itself (console.log): a failure there is only
    // seen here, once the stream has reported it.
    if (code === ExitCode.ok) await new Promise((resolve) => setImmediate(resolve));
    if (code === ExitCode.ok && stdoutFailed !== undefined) {
      const why = (stdoutFailed as { code?: unknown }).code === 'EPIPE' ? 'the reader closed the pipe (EPIPE)' : String((stdoutFailed as Error).message);
      await writeStream(stderr(), `${spec.program}: its output could not be written: ${why}\n`).catch(() => undefined);
      code = ExitCode.outputFailed;
    }
    process.exitCode = code;
  });
}

/** Writes `text` to `stream`; resolves once it is written, rejects when it cannot be. */
function writeStream(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Whether errors met before parsing finished should be JSON (the last --json / --json=BOOL wins). */
function jsonRequested(args: string[]): boolean {
  let json = false;
  for (const a of args) {
    if (a === '--json' || a === '--json=true') json = true;
    else if (a === '--json=false') json = false;
  }
  return json;
}
