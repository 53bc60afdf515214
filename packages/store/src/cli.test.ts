import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseCommandLine } from './cli.ts';
import { defineCommand, loadedCommand, type CliSpec } from './command.ts';
import { ConflictError } from './errors.ts';
import { intFlag } from './flags.ts';
import { idSchema } from './ids.ts';
import { runCli } from './main.ts';

const seen: unknown[] = [];

const spec: CliSpec = {
  program: 'tool',
  version: '9.9.9',
  about: 'a test tool',
  epilogue: 'Exit codes: ...',
  commands: [
    defineCommand({
      name: 'claim',
      summary: 'claim something',
      flags: {
        agent: { type: 'string', describe: 'who', required: true },
        'lease-seconds': { type: 'string', describe: 'how long' },
        force: { type: 'boolean', describe: 'force it' },
      },
      input: z.object({ agent: idSchema, leaseSeconds: intFlag(1, 100).optional(), force: z.boolean().optional() }),
      run: async (ctx, input) => {
        seen.push({ db: ctx.dbPath, input });
        if (input.agent === 'taken') throw new ConflictError('already taken', { by: 'someone' });
        return { ok: true, agent: input.agent };
      },
      text: (r) => `claimed as ${r.agent}`,
    }),
    defineCommand({
      name: 'run init',
      summary: 'start a run',
      flags: { run: { type: 'string', describe: 'run id', required: true } },
      input: z.object({ run: idSchema }),
      run: async (_ctx, input) => ({ run: input.run }),
      text: (r) => `run ${r.run}`,
    }),
  ].map(loadedCommand),
};

async function cli(...args: string[]) {
  let stdout = '';
  let stderr = '';
  seen.length = 0;
  const code = await runCli(spec, args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    cwd: '/',
  });
  return { code, stdout, stderr };
}

describe('runCli', () => {
  it('turns kebab-case flags into the schema input and renders JSON or text', async () => {
    const r = await cli('--db', 'x.db', '--json', 'claim', '--agent', 'w1', '--lease-seconds', '30', '--force');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, agent: 'w1' });
    expect(seen).toEqual([{ db: 'x.db', input: { agent: 'w1', leaseSeconds: 30, force: true } }]);
    expect((await cli('--db', 'x.db', 'claim', '--agent', 'w1')).stdout).toBe('claimed as w1\n');
  });

  it('runs nested subcommands', async () => {
    const r = await cli('--db', 'x.db', '--json', 'run', 'init', '--run', 'r1');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ run: 'r1' });
    expect((await cli('--db', 'x.db', 'run')).code).toBe(2);
  });

  it('reports every validation problem as --flag: message, exit 2, without running the command', async () => {
    const r = await cli('--db', 'x.db', '--json', 'claim', '--agent', 'a/b', '--lease-seconds', '-5');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(seen).toEqual([]);
    const err = JSON.parse(r.stderr).error;
    expect(err.code).toBe('VALIDATION');
    expect(err.details.map((d: { path: string }) => d.path)).toEqual(['--agent', '--lease-seconds']);
  });

  it('says "is required" for a missing flag and refuses a repeated one', async () => {
    expect((await cli('--db', 'x.db', 'claim')).stderr).toBe('tool: --agent: is required\n');
    const twice = await cli('--db', 'x.db', 'claim', '--agent', 'a', '--agent', 'b');
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('more than once');
  });

  it('refuses unknown flags and commands, a missing --db, and no command, with exit 2', async () => {
    for (const args of [
      ['--db', 'x.db', 'claim', '--agent', 'a', '--bogus'],
      ['--db', 'x.db', 'bogus'],
      ['claim', '--agent', 'a'],
      ['--db', 'x.db'],
    ]) {
      const r = await cli(...args, '--json');
      expect(r.code, args.join(' ')).toBe(2);
      expect(JSON.parse(r.stderr).error.code).toMatch(/USAGE|VALIDATION/);
    }
  });

  it('explains a value that starts with "-"', async () => {
    const r = await cli('--db', 'x.db', 'claim', '--agent', '-w1');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('write a value that starts with "-" as --flag=VALUE');
  });

  it('maps typed errors to their exit code and JSON shape; --help and --version exit 0', async () => {
    const r = await cli('--db', 'x.db', '--json', 'claim', '--agent', 'taken');
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'CONFLICT', message: 'already taken', details: { by: 'someone' } } });
    expect((await cli('--help')).code).toBe(0);
    expect((await cli('claim', '--help')).code).toBe(0);
    expect((await cli('--version')).code).toBe(0);
  });
});

describe('parseCommandLine (yargs)', () => {
  const cases: [string[], string, Record<string, unknown>][] = [
    [
      ['--db', 'x.db', '--json', 'claim', '--agent', 'w1', '--lease-seconds', '30', '--force'],
      'claim',
      { db: 'x.db', json: true, agent: 'w1', 'lease-seconds': '30', force: true },
    ],
    [['claim', '--agent', 'w1', '--db', 'x.db'], 'claim', { db: 'x.db', agent: 'w1' }],
    [['--json', '--db=x.db', 'claim', '--agent=-w1', '--force'], 'claim', { db: 'x.db', json: true, agent: '-w1', force: true }],
    [
      ['--db', 'x.db', 'claim', '--force', '--agent', 'true', '--lease-seconds', '007'],
      'claim',
      { db: 'x.db', force: true, agent: 'true', 'lease-seconds': '007' },
    ],
    [['--db', 'x.db', 'run', 'init', '--run', 'r1', '--json'], 'run init', { db: 'x.db', json: true, run: 'r1' }],
    [['--db', 'x.db', 'claim', '--agent', 'a b', '--lease-seconds', '1e3'], 'claim', { db: 'x.db', agent: 'a b', 'lease-seconds': '1e3' }],
    [['claim', '--db', 'x.db'], 'claim', { db: 'x.db' }],
    [['--db', 'x.db', 'claim', '--agent', 'a', '--agent', 'b'], 'claim', { db: 'x.db', agent: ['a', 'b'] }],
    [['--db', 'x.db', 'claim', '--force=true'], 'claim', { db: 'x.db', force: true }],
  ];

  it('chooses the command and reads its flags as strings and booleans, nothing else', async () => {
    for (const [args, name, flags] of cases) {
      const parsed = await parseCommandLine(spec, args);
      expect(parsed?.def.name, args.join(' ')).toBe(name);
      const keys = ['db', 'json', ...Object.keys(parsed?.def.flags ?? {})];
      const picked = Object.fromEntries(keys.filter((k) => parsed?.argv[k] !== undefined).map((k) => [k, parsed?.argv[k]]));
      expect(picked, args.join(' ')).toEqual(flags);
    }
  });

  it('refuses a boolean flag given a value other than true or false', async () => {
    await expect(parseCommandLine(spec, ['--db', 'x.db', 'claim', '--force=yes'])).rejects.toThrow('--force takes no value');
    await expect(parseCommandLine(spec, ['--db', 'x.db', '--json=maybe', 'claim'])).rejects.toThrow('--json takes no value');
  });

  it('loads only the command it runs', async () => {
    const loads: string[] = [];
    const lazy: CliSpec = { ...spec, commands: spec.commands.map((c) => ({ name: c.name, load: () => (loads.push(c.name), c.load()) })) };
    expect((await parseCommandLine(lazy, ['--db', 'x.db', 'run', 'init', '--run', 'r1']))?.def.name).toBe('run init');
    expect(loads).toEqual(['run init']);
  });
});
