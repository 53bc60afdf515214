import fs from 'node:fs';
import path from 'node:path';
import type { Argv, Options } from 'yargs';
import type { z } from 'zod';
import { systemClock, type Clock } from './clock.ts';
import { AppError, ExitCode, OutputFailedError, UsageError, ValidationError, toAppError, type ErrorJson, type ExitCodeValue } from './errors.ts';
import { MAX_TEXT_BYTES } from './flags.ts';
import { randomIds, type IdGenerator } from './ids.ts';
import { writeJson } from './json-stream.ts';
import { displayWidth, padToWidth, visible } from './text.ts';

/** What a command needs from the outside world, injected by the CLI front end (or a test). */
export interface CommandContext {
  /** The `--db` path. */
  dbPath: string;
  clock: Clock;
  ids: IdGenerator;
  /** Directory relative paths (e.g. `--body-file`) are resolved against. */
  cwd: string;
  /** Where a bundled CLI keeps `better_sqlite3.node`, if it ships one. */
  nativeBinding?: string;
}

export interface FlagSpec {
  type: 'string' | 'boolean';
  describe: string;
  /** Shown as required in --help; the zod schema is what enforces it. */
  required?: boolean;
}

/**
 * A command defined once: its flags, a zod schema over the flag values (camelCase keys), one
 * function returning plain data, and a text renderer. The yargs CLI is one front end over these.
 */
export interface CommandDefinition<Schema extends z.ZodType = z.ZodType, Result = unknown> {
  /** `claim`, or `run init` for a subcommand. */
  name: string;
  summary: string;
  /** Longer help shown by `<command> --help`. */
  description?: string;
  flags: Record<string, FlagSpec>;
  /** Command lines shown under Examples in --help, without the program name. */
  examples?: string[];
  /**
   * The command takes `-- COMMAND [ARG...]`: everything after the first `--` goes, as a string
   * array, to this input key (and is never parsed as flags).
   */
  rest?: { key: string; usage: string };
  input: Schema;
  run(ctx: CommandContext, input: z.output<Schema>): Promise<Result>;
  text(result: Result): string;
  /** The exit code for a result that was printed normally (default 0). */
  exitCode?(result: Result): ExitCodeValue;
  /**
   * The text output is a document to hand on byte for byte (a worker's brief): printed as it is
   * when stdout is not a terminal, with control characters made visible only on a terminal.
   */
  verbatimText?: boolean;
}

/** Keeps the schema/result types of a definition checked while storing it in a plain list. */
export function defineCommand<Schema extends z.ZodType, Result>(def: CommandDefinition<Schema, Result>): CommandDefinition {
  return def as unknown as CommandDefinition;
}

export interface CliSpec {
  /** Program name, e.g. `inbox`. */
  program: string;
  version: string;
  /** Shown at the top of the top-level --help. */
  about: string;
  /** Shown at the bottom of every --help (exit codes, JSON contract). */
  epilogue: string;
  commands: CommandDefinition[];
  /**
   * The commands whose change a second call would make again (a second thread, a second attempt),
   * by name, each with how to see what a call did: the arguments after `--db PATH`, e.g.
   * `show --thread th_1` (undefined: this call changed nothing). When such a command's output cannot
   * be written, the error says the change is committed and quotes this. Commands not listed are
   * safe to run again.
   */
  afterCommit?: Record<string, (result: any, input: any) => string | undefined>;
}

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
    assertKnownCommand(spec, head);
    const chosen = await parseArgs(spec, head, io);
    if (!chosen) return ExitCode.ok;
    const { def, argv } = chosen;
    assertBooleanValues(def, head);
    json = argv.json === true;
    const dbPath = argv.db;
    if (Array.isArray(dbPath)) throw new UsageError('--db was given more than once');
    if (typeof dbPath !== 'string' || dbPath.trim() === '') {
      const name = def.name === '$0' ? spec.program : `${spec.program} ${def.name}`;
      throw new UsageError(`missing required flag --db PATH (see \`${name} --help\`)`);
    }
    if (rest !== undefined && !def.rest) {
      throw new UsageError(`\`${spec.program} ${def.name}\` takes no \`-- COMMAND\`; to pass a value that starts with "-", write --flag=VALUE`);
    }
    const input = parseInput(def, def.rest && rest !== undefined ? { ...argv, [def.rest.key]: rest } : argv);
    const ctx: CommandContext = {
      dbPath,
      clock: io.clock ?? systemClock,
      ids: io.ids ?? randomIds,
      cwd: io.cwd,
      ...(io.nativeBinding ? { nativeBinding: io.nativeBinding } : {}),
    };
    const result = await def.run(ctx, input);
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
    return def.exitCode?.(result) ?? ExitCode.ok;
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
  const look = `${spec.program} --db ${shellWord(dbPath)} ${see}`;
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
 * yargs reads a boolean flag given any value but `true` as false (`--dry-run=yes` would clean up
 * for real); a boolean flag takes no value, or `=true` / `=false`.
 */
function assertBooleanValues(def: CommandDefinition, args: string[]): void {
  for (const arg of args) {
    const m = /^--([^=]+)=(.*)$/s.exec(arg);
    if (!m || m[2] === 'true' || m[2] === 'false') continue;
    const flag = m[1] ?? '';
    if (flag === 'json' || (Object.hasOwn(def.flags, flag) && def.flags[flag]?.type === 'boolean')) {
      throw new UsageError(`--${flag} takes no value: give --${flag} (or --${flag}=true / --${flag}=false)`);
    }
  }
}

/**
 * yargs answers `<unknown> --help` with the general help and exit 0; an unknown command is a usage
 * error whatever the flags. (Without --help, yargs reports it itself.)
 */
function assertKnownCommand(spec: CliSpec, args: string[]): void {
  if (!args.some((a) => a === '--help' || a === '-h')) return;
  if (spec.commands.length === 1 && spec.commands[0]?.name === '$0') return;
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (a === '--db') i++; // its value is not a command
      continue;
    }
    words.push(a);
  }
  const first = words[0];
  if (first === undefined) return;
  const known = new Set(spec.commands.map((c) => c.name.split(' ')[0]));
  if (!known.has(first)) throw new UsageError(`unknown command "${first}"; see \`${spec.program} --help\``);
  const group = spec.commands.filter((c) => c.name.startsWith(`${first} `));
  const second = words[1];
  if (group.length > 0 && second !== undefined && !group.some((c) => c.name === `${first} ${second}`)) {
    throw new UsageError(`unknown command "${first} ${second}"; see \`${spec.program} ${first} --help\``);
  }
}

/**
 * The whole body of a bundled CLI's entry file: the native SQLite addon shipped beside the bundle
 * in `bundleDir`, stdout and stderr whose failures (a full disk, a closed pipe) become OUTPUT_FAILED
 * (exit 7) instead of a crash, and the exit code.
 */
export function runMain(spec: CliSpec, bundleDir: string): void {
  const addon = path.join(bundleDir, 'better_sqlite3.node');
  // A failed write is reported through its callback (below); the stream's 'error' event would
  // otherwise crash the process with a stack after the command committed.
  let stdoutFailed: unknown;
  process.stdout.on('error', (err) => (stdoutFailed ??= err));
  process.stderr.on('error', () => undefined);
  void runCli(spec, process.argv.slice(2), {
    stdout: { write: (text: string) => writeStream(process.stdout, text), isTTY: process.stdout.isTTY === true },
    stderr: { write: (text: string) => writeStream(process.stderr, text) },
    cwd: process.cwd(),
    ...(fs.existsSync(addon) ? { nativeBinding: addon } : {}),
  }).then(async (code) => {
    // Help and version text are printed by yargs itself (console.log): a failure there is only
    // seen here, once the stream has reported it.
    if (code === ExitCode.ok) await new Promise((resolve) => setImmediate(resolve));
    if (code === ExitCode.ok && stdoutFailed !== undefined) {
      const why = (stdoutFailed as { code?: unknown }).code === 'EPIPE' ? 'the reader closed the pipe (EPIPE)' : String((stdoutFailed as Error).message);
      await writeStream(process.stderr, `${spec.program}: its output could not be written: ${why}\n`).catch(() => undefined);
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

interface Chosen {
  def: CommandDefinition;
  argv: Record<string, unknown>;
}

async function parseArgs(spec: CliSpec, args: string[], io: CliIo): Promise<Chosen | undefined> {
  return quickParse(spec, args) ?? yargsParse(spec, args, io);
}

/**
 * The common command line without yargs (loading and setting it up is a tenth of a call's time):
 * one known command and only its declared flags (and --db, --json), each at most once, as
 * `--flag VALUE` or `--flag=VALUE` for strings and a bare `--flag` for booleans. Anything else
 * (help, version, a repeated, unknown or short flag, a value that starts with "-", a boolean with
 * a value, a stray word) returns undefined and goes to yargs, which parses or refuses it as
 * always. For what it accepts the result is what yargs would give.
 */
export function quickParse(spec: CliSpec, args: string[]): Chosen | undefined {
  const single = spec.commands.length === 1 && spec.commands[0]?.name === '$0';
  const words: string[] = [];
  const argv: Record<string, unknown> = {};
  let def: CommandDefinition | undefined;
  // The command is what the words before its first own flag name; no word may follow that flag.
  const command = () => (def ??= single ? (words.length === 0 ? spec.commands[0] : undefined) : spec.commands.find((c) => c.name === words.join(' ')));
  const typeOf = (flag: string) => {
    if (flag === 'db') return 'string';
    if (flag === 'json') return 'boolean';
    const d = command();
    return d !== undefined && Object.hasOwn(d.flags, flag) ? d.flags[flag]?.type : undefined;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('-')) {
      if (def !== undefined) return undefined;
      words.push(arg);
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') return undefined;
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (Object.hasOwn(argv, flag) || flag === 'help' || flag === 'version') return undefined;
    const type = typeOf(flag);
    if (type === 'string') {
      const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
      if (value === undefined || value === '' || (eq < 0 && value.startsWith('-'))) return undefined;
      argv[flag] = value;
    } else if (type === 'boolean' && eq < 0) {
      argv[flag] = true;
    } else return undefined;
  }
  const chosen = command();
  return chosen === undefined ? undefined : { def: chosen, argv };
}

export async function yargsParse(spec: CliSpec, args: string[], io: CliIo): Promise<Chosen | undefined> {
  // Loaded only when needed: most calls never get here (see quickParse).
  const { default: yargs } = await import('yargs');
  let chosen: Chosen | undefined;
  const choose = (def: CommandDefinition) => (argv: Record<string, unknown>) => {
    chosen = { def, argv };
  };
  // A program with one command named `$0` (like orch-worker-brief) takes its flags directly.
  const single = spec.commands.length === 1 && spec.commands[0]?.name === '$0';
  let parser = yargs(args)
    .scriptName(spec.program)
    .usage(`${spec.about}\n\nUsage: ${spec.program} --db PATH [--json]${single ? '' : ' <command>'} [flags]${singleDescription(spec)}`)
    .option('db', { type: 'string', describe: 'Path of the SQLite database file (required)', global: true })
    .option('json', { type: 'boolean', describe: 'Print exactly one JSON document on stdout (errors as JSON on stderr)', global: true })
    .strict()
    .strictCommands()
    .parserConfiguration({ 'camel-case-expansion': false, 'boolean-negation': false, 'dot-notation': false, 'parse-numbers': false, 'parse-positional-numbers': false })
    .epilogue(spec.epilogue)
    .version(spec.version)
    .help()
    .alias('help', 'h')
    .wrap(null)
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(usageHint(message ?? 'invalid command line', args));
    });
  if (!single) parser = parser.demandCommand(1, `no command given; see \`${spec.program} --help\``).recommendCommands();

  for (const [group, defs] of groupCommands(spec.commands)) {
    if (group === undefined) {
      for (const def of defs) parser.command(def.name, def.summary, (y) => describeCommand(y, spec, def), choose(def));
      continue;
    }
    parser.command(group, `${defs.map((d) => d.name.split(' ')[1]).join(' | ')}`, (y) => {
      for (const def of defs) {
        y.command(def.name.split(' ')[1] ?? '', def.summary, (yy) => describeCommand(yy, spec, def), choose(def));
      }
      return y.epilogue(spec.epilogue).demandCommand(1, `\`${group}\` needs a subcommand: ${defs.map((d) => d.name).join(', ')}`);
    });
  }

  await parser.parseAsync();
  return chosen;
}

function describeCommand(y: Argv, spec: CliSpec, def: CommandDefinition): Argv {
  // A single `$0` command's help is the program's help: its usage and epilogue are set there.
  const single = def.name === '$0';
  const usage = def.rest ? `\n\nUsage: ${spec.program} --db PATH [--json] ${def.name} [flags] -- ${def.rest.usage}` : '';
  let out = single ? y : y.usage(`${spec.program} ${def.name}: ${def.summary}${usage}${def.description ? `\n\n${def.description}` : ''}`);
  for (const [flag, f] of Object.entries(def.flags)) {
    const options: Options = { type: f.type, describe: f.required ? `${f.describe} (required)` : f.describe };
    out = out.option(flag, options);
  }
  for (const example of def.examples ?? []) out = out.example(`${spec.program} ${example}`, '');
  // Every command's help ends with the exit codes and the JSON contract, like the top-level help.
  return single ? out : out.epilogue(spec.epilogue);
}

function singleDescription(spec: CliSpec): string {
  const def = spec.commands[0];
  return spec.commands.length === 1 && def?.name === '$0' && def.description ? `\n\n${def.description}` : '';
}

function groupCommands(defs: CommandDefinition[]): Map<string | undefined, CommandDefinition[]> {
  const groups = new Map<string | undefined, CommandDefinition[]>();
  for (const def of defs) {
    const parts = def.name.split(' ');
    const key = parts.length > 1 ? parts[0] : undefined;
    groups.set(key, [...(groups.get(key) ?? []), def]);
  }
  return groups;
}

/** Collects the declared flags (camelCased) and validates them with the command's schema. */
function parseInput(def: CommandDefinition, argv: Record<string, unknown>): unknown {
  const raw: Record<string, unknown> = {};
  const flagOf = new Map<string, string>();
  for (const flag of Object.keys(def.flags)) {
    const key = camelCase(flag);
    flagOf.set(key, flag);
    const value = argv[flag];
    if (Array.isArray(value)) {
      throw new ValidationError(`--${flag} was given more than once`, [{ path: `--${flag}`, message: 'given more than once' }]);
    }
    if (value !== undefined) raw[key] = value;
  }
  if (def.rest && argv[def.rest.key] !== undefined) raw[def.rest.key] = argv[def.rest.key];
  const parsed = def.input.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = issue.path[0];
    const flag = typeof key === 'string' ? flagOf.get(key) : undefined;
    const missing = issue.code === 'invalid_type' && typeof key === 'string' && raw[key] === undefined;
    const where = key !== undefined && key === def.rest?.key ? '-- COMMAND' : flag ? `--${flag}` : issue.path.join('.') || '(input)';
    return { path: where, message: missing ? 'is required' : issue.message };
  });
  throw new ValidationError(problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems);
}

function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

/**
 * Reads a text file given on the command line (`--body-file`), relative to `cwd`. Reads at most
 * `maxBytes` + 1 bytes, so a huge file (or `/dev/zero`) is refused without being loaded.
 *
 * @throws ValidationError (2) when the file cannot be read or holds more than `maxBytes` bytes.
 */
export function readTextFile(cwd: string, file: string, flag: string, maxBytes = MAX_TEXT_BYTES): string {
  const full = path.resolve(cwd, file);
  // /dev/stdin is read through fd 0: reopening it fails when stdin is a socket (as Node's child processes get).
  const stdin = full === '/dev/stdin';
  let fd: number | undefined;
  try {
    fd = stdin ? 0 : fs.openSync(full, 'r');
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, maxBytes + 1 - total));
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        // A non-blocking pipe with nothing in it yet: wait a moment and read again.
        if ((err as { code?: string }).code !== 'EAGAIN') throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) {
        const why = `must be at most ${maxBytes} bytes`;
        throw new ValidationError(`--${flag} ${file}: ${why}`, [{ path: `--${flag}`, message: why }]);
      }
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    const code = (err as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new ValidationError(`--${flag} ${file}: ${why}`, [{ path: `--${flag}`, message: why }]);
  } finally {
    if (fd !== undefined && !stdin) fs.closeSync(fd);
  }
}

/**
 * Aligns rows into columns separated by two spaces; the first row is the header. Cells are one
 * line each with control characters made visible (`visible`), and columns are measured in terminal
 * cells (`displayWidth`: CJK and emoji take two).
 */
export function formatTable(rows: string[][]): string {
  const cells = rows.map((row) => row.map((cell) => visible(cell)));
  const widths: number[] = [];
  for (const row of cells) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, displayWidth(cell))));
  return cells
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : padToWidth(cell, widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
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

/** yargs reads `--body "- item"` as flags; say how to pass such a value when that is the likely cause. */
function usageHint(message: string, args: string[]): string {
  if (/^Did you mean/.test(message)) {
    const unknown = args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '--db');
    return `unknown command${unknown ? ` "${unknown}"` : ''}. ${message}`;
  }
  const dashValue = args.find((a) => (/^-[^-\d]/.test(a) && a !== '-h') || (/^-/.test(a) && /\s/.test(a)));
  return dashValue && /Unknown argument/i.test(message)
    ? `${message} (${JSON.stringify(dashValue)} was read as a flag; write a value that starts with "-" as --flag=VALUE)`
    : message;
}
