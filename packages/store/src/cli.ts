import yargs from 'yargs/yargs';
import type { Argv, Options } from 'yargs';
import type { CliSpec, CommandDefinition, CommandEntry } from './command.ts';
import { UsageError, ValidationError } from './errors.ts';

// The yargs front end over the command definitions: parses a command line into the chosen
// command and its flags (yargs, strict), then checks what yargs lets through, then validates the
// flags with the command's zod schema. Only the chosen command's module is loaded.

/** The command a command line chose, with yargs' reading of its flags. */
export interface ParsedCommandLine {
  def: CommandDefinition;
  argv: Record<string, unknown>;
}

/**
 * Parses `args` (the command line before any `--`) with yargs. Returns undefined when yargs
 * printed help or the version instead.
 *
 * @throws UsageError (2) for what yargs refuses (unknown command or flag, a missing value, no
 *   command), an unknown command with --help, and a boolean flag given a value other than true/false.
 */
export async function parseCommandLine(spec: CliSpec, args: string[]): Promise<ParsedCommandLine | undefined> {
  assertKnownCommand(spec, args);
  const single = spec.commands.length === 1 && spec.commands[0]?.name === '$0';
  // Help lists every command with its summary: only then are all definitions loaded. Any short
  // flag may be a cluster holding -h; yargs also takes a last word `help` as asking for it.
  const words = args.filter((a) => !a.startsWith('-'));
  const wantsHelp = args.some((a) => /^--help(=|$)/.test(a) || /^-[^-]/.test(a)) || words.at(-1) === 'help';
  const loaded = new Map<string, CommandDefinition>();
  if (single || wantsHelp) {
    const defs = await Promise.all(spec.commands.map((c) => c.load()));
    spec.commands.forEach((c, i) => loaded.set(c.name, defs[i] as CommandDefinition));
  }

  let chosen: ParsedCommandLine | undefined;
  const command = (y: Argv, word: string, entry: CommandEntry) => {
    let def = loaded.get(entry.name);
    // A command without a summary (help was not asked for) is hidden: yargs builds no help line for it.
    y.command({
      command: word,
      describe: loaded.get(entry.name)?.summary ?? false,
      builder: async (inner: Argv) => describeCommand(inner, spec, (def ??= await entry.load()), wantsHelp),
      handler: (argv: Record<string, unknown>) => {
        if (def) chosen = { def, argv };
      },
    });
  };
  const parser = yargs(args)
    .scriptName(spec.program)
    .usage(`${spec.about}\n\nUsage: ${spec.program} --db PATH [--json]${single ? '' : ' <command>'} [flags]${singleDescription(spec, loaded)}`)
    .option('db', {
      type: 'string',
      describe:
        'The database: a SQLite file path, a postgres://USER@HOST/DB?schema=NAME URL, or the URL of an `orch serve` (https://HOST:PORT; token from ORCH_TOKEN or --token-file) (required)',
      global: true,
    })
    .option('json', { type: 'boolean', describe: 'Print exactly one JSON document on stdout (errors as JSON on stderr)', global: true })
    .option('token-file', {
      type: 'string',
      describe: 'With --db https://...: read the server token from this owner-only file (default: $ORCH_TOKEN)',
      global: true,
    })
    .option('insecure-http', {
      type: 'boolean',
      describe: 'With --db http://... to a host that is not loopback: send the token over plain http anyway (or ORCH_INSECURE_HTTP=1)',
      global: true,
    })
    .strict()
    .strictCommands()
    .parserConfiguration({
      'camel-case-expansion': false,
      'boolean-negation': false,
      'dot-notation': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
    })
    .detectLocale(false)
    .wrap(null)
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(usageHint(message ?? 'invalid command line', args));
    });
  // Help is set up only when asked for (any short flag may be a cluster holding -h).
  if (wantsHelp || args.some((a) => /^--version(=|$)/.test(a))) parser.version(spec.version);
  else parser.version(false);
  if (wantsHelp) parser.epilogue(spec.epilogue).help().alias('help', 'h');
  else parser.help(false);
  if (!single) parser.demandCommand(1, `no command given; see \`${spec.program} --help\``).recommendCommands();

  for (const [group, entries] of groupCommands(spec.commands)) {
    if (group === undefined) {
      for (const entry of entries) command(parser, entry.name, entry);
      continue;
    }
    parser.command({
      command: group,
      describe: wantsHelp ? entries.map((e) => e.name.split(' ')[1]).join(' | ') : false,
      builder: (y: Argv) => {
        for (const entry of entries) command(y, entry.name.split(' ')[1] ?? '', entry);
        return y.epilogue(spec.epilogue).demandCommand(1, `\`${group}\` needs a subcommand: ${entries.map((e) => e.name).join(', ')}`);
      },
      handler: () => undefined,
    });
  }

  await parser.parseAsync();
  if (chosen) assertBooleanValues(chosen.def, args);
  return chosen;
}

function describeCommand(y: Argv, spec: CliSpec, def: CommandDefinition, wantsHelp: boolean): Argv {
  // yargs lays out the chosen command's help on every call, shown or not: without --help it gets
  // only what parsing needs (the flags and their types), so that costs next to nothing.
  if (!wantsHelp) {
    for (const [flag, f] of Object.entries(def.flags)) y.option(flag, { type: f.type });
    return y;
  }
  // A single `$0` command's help is the program's help: its usage and epilogue are set there.
  const single = def.name === '$0';
  const usage = def.rest
    ? `\n\nUsage: ${spec.program} --db PATH [--json] ${def.name} [flags] -- ${def.rest.usage}`
    : def.usesDb === false
      ? `\n\nUsage: ${spec.program} [--json] ${def.name} [flags] (no --db)`
      : '';
  let out = single ? y : y.usage(`${spec.program} ${def.name}: ${def.summary}${usage}${def.description ? `\n\n${def.description}` : ''}`);
  for (const [flag, f] of Object.entries(def.flags)) {
    const options: Options = { type: f.type, describe: f.required ? `${f.describe} (required)` : f.describe };
    out = out.option(flag, options);
  }
  for (const example of def.examples ?? []) out = out.example(`${spec.program} ${example}`, '');
  // Every command's help ends with the exit codes and the JSON contract, like the top-level help.
  return single ? out : out.epilogue(spec.epilogue);
}

function singleDescription(spec: CliSpec, loaded: Map<string, CommandDefinition>): string {
  const def = loaded.get('$0');
  return spec.commands.length === 1 && def?.description ? `\n\n${def.description}` : '';
}

function groupCommands(entries: CommandEntry[]): Map<string | undefined, CommandEntry[]> {
  const groups = new Map<string | undefined, CommandEntry[]>();
  for (const entry of entries) {
    const parts = entry.name.split(' ');
    const key = parts.length > 1 ? parts[0] : undefined;
    groups.set(key, [...(groups.get(key) ?? []), entry]);
  }
  return groups;
}

/**
 * The checked input of the chosen command: its `--db` path and its flags (camelCased, with the
 * words after `--` under `def.rest.key`) validated with its schema.
 *
 * @throws UsageError (2) for a missing or repeated --db and a `-- COMMAND` the command does not take;
 *   ValidationError (2) listing every flag the schema refuses, or a flag given more than once.
 */
export function commandInput(
  spec: CliSpec,
  { def, argv }: ParsedCommandLine,
  rest: string[] | undefined,
): { dbPath: string; input: unknown; raw: Record<string, unknown> } {
  const dbPath = argv.db;
  const name = def.name === '$0' ? spec.program : `${spec.program} ${def.name}`;
  if (def.usesDb === false) {
    if (dbPath !== undefined) throw new UsageError(`\`${name}\` takes no --db: it names its databases with its own flags (see \`${name} --help\`)`);
  } else if (Array.isArray(dbPath)) {
    throw new UsageError('--db was given more than once');
  } else if (typeof dbPath !== 'string' || dbPath.trim() === '') {
    throw new UsageError(`missing required flag --db PATH|URL (see \`${name} --help\`)`);
  }
  if (rest !== undefined && !def.rest) {
    throw new UsageError(`\`${spec.program} ${def.name}\` takes no \`-- COMMAND\`; to pass a value that starts with "-", write --flag=VALUE`);
  }
  const { input, raw } = parseInput(def, def.rest && rest !== undefined ? { ...argv, [def.rest.key]: rest } : argv);
  return { dbPath: typeof dbPath === 'string' ? dbPath : '', input, raw };
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
 * Collects the declared flags (camelCased) and validates them with the command's schema. Returns
 * the validated input and the raw values it was made from (what remote mode sends).
 */
function parseInput(def: CommandDefinition, argv: Record<string, unknown>): { input: unknown; raw: Record<string, unknown> } {
  const raw: Record<string, unknown> = {};
  for (const flag of Object.keys(def.flags)) {
    const value = argv[flag];
    if (Array.isArray(value)) {
      throw new ValidationError(`--${flag} was given more than once`, [{ path: `--${flag}`, message: 'given more than once' }]);
    }
    if (value !== undefined) raw[camelCase(flag)] = value;
  }
  if (def.rest && argv[def.rest.key] !== undefined) raw[def.rest.key] = argv[def.rest.key];
  return { input: validateCommandInput(def, raw), raw };
}

/**
 * Validates `raw` (a command's input keys, camelCase, as the flags give them) with the command's
 * schema, reporting problems by flag name (`--lease-seconds`) as the CLI does. The HTTP server
 * validates a request body with it, so both front ends refuse the same input the same way.
 *
 * @throws ValidationError (2) listing every problem.
 */
export function validateCommandInput(def: CommandDefinition, raw: Record<string, unknown>): unknown {
  const flagOf = new Map<string, string>();
  for (const flag of Object.keys(def.flags)) flagOf.set(camelCase(flag), flag);
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
