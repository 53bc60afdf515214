import { briefCli } from '../packages/worker-brief/src/cli.ts';
import { inboxCli } from '../packages/inbox/src/cli.ts';
import { createOrchCli } from '../packages/orch/src/cli.ts';
import { loadCommands, type CliSpec, type CommandDefinition } from '@orch/store';

/**
 * Renders docs/cli.md from the command definitions the CLIs are built from, so the reference can
 * never say something --help does not. `test/docs.test.ts` compares the file with this rendering;
 * `npm run docs` writes it.
 */

/** The CLIs in the order docs/cli.md lists them. */
export function cliSpecs(): CliSpec[] {
  return [inboxCli, createOrchCli({ workerInbox: 'inbox' }), briefCli({ defaultInbox: 'inbox' })];
}

/** A spec's command definitions, in help order. */
export function definitions(spec: CliSpec): Promise<CommandDefinition[]> {
  return loadCommands(spec);
}

/** The flags every command takes (declared once in packages/store/src/cli.ts, the yargs wiring). */
const GLOBAL_FLAGS: [string, string][] = [
  ['--db PATH', 'Path of the SQLite database file (required)'],
  ['--json', 'Print exactly one JSON document on stdout (errors as JSON on stderr)'],
  ['--help, -h', 'Show help (for the program, or for one command: `<command> --help`)'],
  ['--version', 'Show the version number'],
];

/** A heading's anchor as the usual code hosts make it (lower case, punctuation dropped, spaces to hyphens). */
export function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

/** Prose as markdown shows it literally: `<run>` is not an HTML tag, `*` not emphasis (code spans are left alone). */
function prose(text: string): string {
  return text
    .split('`')
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/[<*]/g, (c) => `\\${c}`)))
    .join('`');
}

/** Text safe inside one markdown table cell. */
function cell(text: string): string {
  return prose(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function title(spec: CliSpec, def: CommandDefinition): string {
  return def.name === '$0' ? spec.program : `${spec.program} ${def.name}`;
}

function usage(spec: CliSpec, def: CommandDefinition): string {
  const name = def.name === '$0' ? '' : ` ${def.name}`;
  const flags = Object.entries(def.flags)
    .filter(([, f]) => f.required)
    .map(([flag, f]) => (f.type === 'boolean' ? `--${flag}` : `--${flag} VALUE`));
  const rest = def.rest ? ` -- ${def.rest.usage}` : '';
  return `${spec.program}${def.usesDb === false ? '' : ' --db PATH'} [--json]${name}${flags.length > 0 ? ` ${flags.join(' ')}` : ''} [flags]${rest}`;
}

function renderCommand(spec: CliSpec, def: CommandDefinition): string {
  const out: string[] = [`### \`${title(spec, def)}\``, '', prose(`${def.summary}.`.replace(/\.\.$/, '.')), ''];
  if (def.description) out.push(prose(def.description), '');
  out.push('```', usage(spec, def), '```', '');
  const flags = Object.entries(def.flags);
  if (flags.length > 0) {
    out.push('| flag | takes | description |', '|---|---|---|');
    for (const [flag, f] of flags)
      out.push(`| \`--${flag}\` | ${f.type === 'boolean' ? 'nothing (a switch)' : 'a value'}${f.required ? ', required' : ''} | ${cell(f.describe)} |`);
    out.push('');
  }
  if (def.rest) out.push(`Everything after \`--\` is \`${def.rest.usage}\`, passed on as it is (never read as flags).`, '');
  if (def.examples && def.examples.length > 0) {
    out.push('Examples:', '', '```bash', ...def.examples.map((e) => `${spec.program} ${e}`), '```', '');
  }
  return out.join('\n');
}

async function renderProgram(spec: CliSpec): Promise<string> {
  const defs = await definitions(spec);
  const out: string[] = [`## ${spec.program}`, '', prose(spec.about.replace(/\n/g, ' ')), ''];
  if (defs.length > 1) {
    out.push('| command | what it does |', '|---|---|');
    for (const def of defs) out.push(`| [\`${def.name}\`](#${anchor(title(spec, def))}) | ${cell(def.summary)} |`);
    out.push('');
  }
  for (const def of defs) out.push(renderCommand(spec, def));
  return out.join('\n');
}

/** The whole of docs/cli.md. */
export async function renderCliReference(specs: CliSpec[] = cliSpecs()): Promise<string> {
  const [first] = specs;
  const out: string[] = [
    '# CLI reference',
    '',
    '<!-- Generated from the command definitions by `npm run docs` (test/docs-render.ts). Do not edit by hand:',
    '     test/docs.test.ts fails when this file differs from what the definitions say. -->',
    '',
    `Every command of ${specs.map((s) => `\`${s.program}\``).join(', ')} is listed here with every flag, as \`--help\` shows them.`,
    'The JSON each command prints is in [json.md](json.md); what the exit codes mean in practice is in',
    '[troubleshooting.md](troubleshooting.md).',
    '',
    '## Flags every command takes',
    '',
    '| flag | description |',
    '|---|---|',
    ...GLOBAL_FLAGS.map(([flag, describe]) => `| \`${flag}\` | ${cell(describe)} |`),
    '',
    'Flags and values are written `--flag VALUE` or `--flag=VALUE`; a value that starts with `-` must be attached with `=`',
    '(`--body="- fixed A"`). A boolean flag is given alone (or as `--flag=true` / `--flag=false`).',
    '',
    '## Exit codes and errors',
    '',
    '```',
    first?.epilogue ?? '',
    '```',
    '',
  ];
  for (const spec of specs) out.push(await renderProgram(spec));
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}
