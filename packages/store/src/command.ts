import type { z } from 'zod';
import type { Clock } from './clock.ts';
import type { Store } from './engine.ts';
import type { ExitCodeValue } from './errors.ts';
import type { IdGenerator } from './ids.ts';
import type { RemoteTarget } from './remote/target.ts';

/** What a command needs from the outside world, injected by the CLI front end (or a test). */
export interface CommandContext {
  /** The `--db` path. */
  dbPath: string;
  /**
   * A clock a test injects; otherwise undefined, and the store's own clock judges leases (the
   * system clock on SQLite, the database server's on PostgreSQL).
   */
  clock?: Clock | undefined;
  ids: IdGenerator;
  /** Directory relative paths (e.g. `--body-file`) are resolved against. */
  cwd: string;
  /** Where a bundled CLI keeps `better_sqlite3.node`, if it ships one. */
  nativeBinding?: string;
  /**
   * The one agent this caller may act as (`inbox mcp --agent NAME`; a worker token of a server):
   * every thread-addressed inbox command refuses a thread not assigned to it (FORBIDDEN, exit 4),
   * and a claim as anyone else. Undefined: no such limit (the CLI).
   */
  actingAgent?: string | undefined;
  /**
   * Who is acting, as the server knows it (a token's name): when set, it is the author recorded on
   * every message and event the command writes in the leader's name (`inbox send`/`reply`'s
   * `--from`, orch's dispatch, answer and cancel), whatever name the client gave. Undefined: the
   * command's own default or flag (the CLI).
   */
  author?: string | undefined;
  /**
   * PostgreSQL: the least reconnect window every command opens the store with. A long-lived host
   * (an MCP server) passes LONG_LIVED_RECONNECT_MS; undefined: each command's own choice.
   */
  reconnectMs?: number | undefined;
  /**
   * The caller gave up (an MCP client cancelled the call, or its server is stopping): a command
   * waiting (`wait`, `claim --wait-seconds`) ends as at its timeout. Undefined for the CLI.
   */
  signal?: AbortSignal | undefined;
  /**
   * `--db` is the URL of an `orch serve` and the command runs here with the server as its database
   * (`inbox work`): where and how to call it. Undefined otherwise.
   */
  remote?: RemoteTarget | undefined;
  /**
   * The files a remote client read for its file flags (`--body-file`, `--dispatch-json`), by the
   * path as given: set by a server, which never reads its own disk for such a flag (`readTextFile`
   * then refuses a path not in it). Undefined for the CLI (files are read from `cwd`).
   */
  files?: ReadonlyMap<string, string> | undefined;
  /**
   * What a brief rendered here tells the worker to pass as `--db` (a server's URL): undefined, the
   * database's own location (its absolute path, or its URL without the password).
   */
  publicDb?: string | undefined;
  /**
   * An open store a long-lived host shares between its commands (a server on PostgreSQL, whose
   * connections cost tens of milliseconds to open): the commands use it instead of opening the
   * database, and never close it. Undefined: each command opens and closes its own.
   */
  store?: Store | undefined;
  /** `--json` was given: a command that owns its output (`serve`) writes JSON. */
  json?: boolean | undefined;
  /**
   * The CLI's standard output, for a command that writes as it goes (see `CommandDefinition.streams`).
   * Set by the CLI only: a server or an MCP host has no terminal to give, so such a command refuses there.
   */
  stdout?: CommandOutput | undefined;
}

/** Where a command that writes as it goes writes (the CLI's stdout). */
export interface CommandOutput {
  /** May return a promise: it then resolves once written and rejects when it cannot be (a closed pipe: EPIPE). */
  write(text: string): unknown;
  /** stdout is a terminal. */
  isTTY?: boolean;
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
  /**
   * False for a command that names its databases in its own flags (`inbox copy --from FILE --to
   * URL`): it takes no `--db` and refuses one, and its context's `dbPath` is empty.
   */
  usesDb?: false;
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
  /**
   * The command speaks a protocol on stdin/stdout itself (`mcp`): the CLI prints nothing for its
   * result (errors still go to stderr).
   */
  ownsStdio?: boolean;
  /**
   * For this input the command writes its own output as it goes, to `ctx.stdout` (`orch status
   * --watch`): the CLI prints nothing for its result, and with a server URL as `--db` it runs here,
   * calling the server for what it reads (as `inbox work` does).
   */
  streams?(input: any): boolean;
}

/** Keeps the schema/result types of a definition checked while storing it in a plain list. */
export function defineCommand<Schema extends z.ZodType, Result>(def: CommandDefinition<Schema, Result>): CommandDefinition {
  return def as unknown as CommandDefinition;
}

/**
 * A command in a CLI's registry: its name, and how to load its definition. A call loads only the
 * command it runs (its module, schemas and logic); `--help` at the top level loads them all. Write
 * `load` as a dynamic import, which the bundler turns into a module initialised on first use:
 * `{ name: 'claim', load: () => import('./commands/claim.ts').then((m) => m.claimCommand) }`.
 */
export interface CommandEntry {
  /** As the definition's `name`: `claim`, `run init`, or `$0` for a program that is one command. */
  name: string;
  load(): Promise<CommandDefinition>;
  /**
   * The MCP tool this command is served as (`orch mcp`, `inbox mcp`): commands naming the same
   * tool become one tool whose `action` argument picks the command. Absent: not an MCP tool.
   */
  mcp?: string;
}

export interface CliSpec {
  /** Program name, e.g. `inbox`. */
  program: string;
  version: string;
  /** Shown at the top of the top-level --help. */
  about: string;
  /** Shown at the bottom of every --help (exit codes, JSON contract). */
  epilogue: string;
  /** The commands in help order. */
  commands: CommandEntry[];
  /**
   * The commands whose change a second call would make again (a second thread, a second attempt),
   * by name, each with how to see what a call did: the arguments after `--db PATH`, e.g.
   * `show --thread th_1` (undefined: this call changed nothing). When such a command's output cannot
   * be written, the error says the change is committed and quotes this. Commands not listed are
   * safe to run again.
   */
  afterCommit?: Record<string, (result: any, input: any) => string | undefined>;
  /** How the commands with an `mcp` tool name are served as MCP tools (see mcp/tools.ts). */
  mcp?: McpSetSpec;
}

/** A set of MCP tools made from a CLI's commands: what the commands themselves cannot say. */
export interface McpSetSpec {
  /** The server's name, e.g. `inbox`. */
  name: string;
  /** Sent to the client at the start: how to use the tools, in a few lines. */
  instructions: string;
  /** Per tool name: its description and how its arguments differ from the commands' flags. */
  tools: Record<string, McpToolSpec>;
  /**
   * Resources read through a command: `uriTemplate` holds `{key}` parts (input keys, camelCase),
   * each one path segment; reading runs `command` (a registry name) with them.
   */
  resources?: { uriTemplate: string; name: string; description: string; command: string }[];
}

export interface McpToolSpec {
  /** Short and exact: what the tool does and what it returns. */
  description: string;
  /** Input keys (camelCase, as in the schema) the client cannot give; a refused one is VALIDATION. */
  omit?: string[];
  /** Input keys set to the acting agent (and not offered to the client). */
  agentKeys?: string[];
  /** Input keys set to a fixed value (and not offered to the client). */
  fixed?: Record<string, string>;
  /**
   * Whole-number keys with a default and a bound of their own in MCP (waits: a client's call
   * times out). The description replaces the flag's.
   */
  bounds?: Record<string, { default: number; max: number; describe: string }>;
}

/** Every command definition of `spec`, in help order (loads them all). */
export function loadCommands(spec: CliSpec): Promise<CommandDefinition[]> {
  return Promise.all(spec.commands.map((c) => c.load()));
}

/** A registry entry for a definition that is already loaded (tests, a program of one command). */
export function loadedCommand(def: CommandDefinition): CommandEntry {
  return { name: def.name, load: async () => def };
}
