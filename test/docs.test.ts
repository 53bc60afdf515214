import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { realOutputs } from './docs-flow.ts';
import { anchor, cliSpecs, definitions, renderCliReference } from './docs-render.ts';
import { mismatches, shapeTables } from './docs-shapes.ts';
import { ROOT } from './helpers.ts';
import type { FlagSpec } from '@orch/store';

/**
 * The reference docs cannot drift from the code:
 * - docs/cli.md is generated from the command definitions (test/docs-render.ts): this test fails
 *   when the file is stale, and `npm run docs` (UPDATE_DOCS=1) writes it instead;
 * - docs/json.md documents every command's --json output as a shape; every shape is held against
 *   the real output of the built executables (test/docs-flow.ts), keys and their order included,
 *   and every command must have one;
 * - every relative link in README.md and docs/ leads to a file, and to a heading in it;
 * - every `inbox`, `orch` and `orch-worker-brief` line in their ```bash blocks names a real command
 *   and only flags it has.
 */

const CLI_MD = path.join(ROOT, 'docs/cli.md');
const JSON_MD = path.join(ROOT, 'docs/json.md');
const update = process.env.UPDATE_DOCS === '1';

describe('docs/cli.md', () => {
  it('is what the command definitions render', async () => {
    const rendered = await renderCliReference();
    if (update) fs.writeFileSync(CLI_MD, rendered);
    const onDisk = fs.existsSync(CLI_MD) ? fs.readFileSync(CLI_MD, 'utf8') : '';
    const [disk, want] = [onDisk.split('\n'), rendered.split('\n')];
    const line = want.findIndex((l, i) => disk[i] !== l);
    const where = line < 0 ? 'it is longer than the rendering' : `line ${line + 1} should read: ${want[line]}`;
    expect(onDisk === rendered, `docs/cli.md is stale (${where}): run \`npm run docs\` and commit the result`).toBe(true);
  });
});

describe('docs/json.md', () => {
  const { objects, outputs } = shapeTables(fs.readFileSync(JSON_MD, 'utf8'));

  it('documents the --json output of every command', async () => {
    const documented = new Set([...outputs.keys()].map((label) => label.replace(/ \(.*\)$/, '')));
    const missing: string[] = [];
    for (const spec of cliSpecs()) {
      for (const def of await definitions(spec)) {
        const label = def.name === '$0' ? spec.program : `${spec.program} ${def.name}`;
        // `mcp` speaks MCP on stdin/stdout and prints no document of its own.
        if (!def.ownsStdio && !documented.has(label)) missing.push(label);
      }
    }
    expect(missing, 'commands with no shape in docs/json.md').toEqual([]);
  });

  it('every documented shape is what the command really prints', () => {
    const real = realOutputs();
    expect(
      [...outputs.keys()].filter((label) => !(label in real)),
      'documented but not run by test/docs-flow.ts',
    ).toEqual([]);
    expect(
      Object.keys(real).filter((label) => !outputs.has(label)),
      'run but not documented in docs/json.md',
    ).toEqual([]);
    const problems = [...outputs].flatMap(([label, shape]) => mismatches(shape, real[label], objects, label));
    expect(problems).toEqual([]);
  });
});

/** README.md and every page under docs/, as paths from the root. */
function pages(): string[] {
  return [
    'README.md',
    ...fs
      .readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
}

/** Words of a shell line, for the quoting the docs use ('...', "..."); stops at a redirection or a comment. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'[^']*'|"(?:[^"\\]|\\.)*"|[^\s'"]+/g)) {
    const w = m[0];
    if (w.startsWith('>') || w.startsWith('#') || w === '2>' || w === '|' || w === '&&') break;
    out.push(w.replace(/^['"]|['"]$/g, ''));
  }
  return out;
}

describe('command lines in the docs', () => {
  it('name real commands and only their flags', async () => {
    const programs = new Map<string, Map<string, Record<string, FlagSpec>>>();
    for (const spec of cliSpecs()) {
      programs.set(spec.program, new Map((await definitions(spec)).map((def) => [def.name, def.flags])));
    }
    const global: Record<string, FlagSpec> = {
      db: { type: 'string', describe: '' },
      json: { type: 'boolean', describe: '' },
      help: { type: 'boolean', describe: '' },
      version: { type: 'boolean', describe: '' },
    };
    const bad: string[] = [];
    let checked = 0;
    for (const page of pages()) {
      const blocks = [...fs.readFileSync(path.join(ROOT, page), 'utf8').matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
      for (const raw of blocks.flatMap((b) => b.split('\n'))) {
        const line = raw.trim();
        let w = words(line);
        if (w[0] === 'npx') w = w.slice(1);
        const commands = w[0] === undefined ? undefined : programs.get(w[0]);
        if (!commands) continue;
        checked++;
        const end = w.indexOf('--');
        const args = end >= 0 ? w.slice(1, end) : w.slice(1);
        let name: string | undefined = commands.has('$0') ? '$0' : undefined;
        const positional: string[] = [];
        for (let i = 0; i < args.length; i++) {
          const arg = args[i]!;
          if (!arg.startsWith('--')) {
            if (name !== undefined) bad.push(`${page}: stray argument ${arg}: ${line}`);
            positional.push(arg);
            name = [positional.join(' ')].find((n) => commands.has(n));
            continue;
          }
          const flag = arg.slice(2).split('=')[0]!;
          const spec = global[flag] ?? (name === undefined ? undefined : commands.get(name)![flag]);
          if (spec === undefined) bad.push(`${page}: ${w[0]} ${name ?? '(no command yet)'} has no --${flag}: ${line}`);
          else if (spec.type === 'string' && !arg.includes('=')) i++;
        }
        if (name === undefined) bad.push(`${page}: no such command: ${line}`);
      }
    }
    expect(bad).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });
});

describe('links', () => {
  it('every relative link in README.md and docs/ leads to an existing file and heading', () => {
    const headings = (file: string): Set<string> => new Set([...fs.readFileSync(file, 'utf8').matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1]!)));
    const broken: string[] = [];
    for (const page of pages()) {
      const text = fs.readFileSync(path.join(ROOT, page), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1]!;
        if (/^[a-z]+:/.test(link)) continue;
        const [file, hash] = link.split('#');
        const target = file ? path.resolve(path.dirname(path.join(ROOT, page)), file) : path.join(ROOT, page);
        if (!fs.existsSync(target)) broken.push(`${page}: ${link} (no file)`);
        else if (hash !== undefined && !headings(target).has(hash)) broken.push(`${page}: ${link} (no heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});
