import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { MAX_TEXT_BYTES, loadCommands, runCli, systemClock, type CliSpec, type Clock, type CommandDefinition } from '@orch/store';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inboxCli } from '../packages/inbox/src/cli.ts';
import { THREAD_STATES } from '../packages/inbox/src/schema.ts';
import { orchCli } from '../packages/orch/src/cli.ts';
import { EVENT_TYPES, RUN_STATES } from '../packages/orch/src/schema.ts';
import { briefCli } from '../packages/worker-brief/src/cli.ts';
import { INBOX_BIN, ORCH_BIN, ROOT, fileTempDir, initGitRepo, snapshot, type CliRun } from './helpers.ts';
import { freshDb, onPostgres, perEngine, relativeDb } from './engine.ts';

/**
 * Fuzzing (issue 8): generated argument vectors for every command of inbox, orch and
 * orch-worker-brief. The flags come from the command definitions themselves (a new command or
 * flag is covered without touching this file); their values mix real ids from a fixture database
 * with hostile ones: empty, whitespace, huge (up to 2 MB), unicode (astral, RTL, combining), NUL
 * and control characters, odd numbers, JSON edge cases, path-like and dash-leading strings. Flags
 * go missing, get duplicated, given as --flag=value or --flag value, boolean flags get values, and
 * unknown flags and stray positionals are mixed in.
 *
 * Properties, for every vector:
 * - the exit code is never 1 (internal error: a bug) and is one of the documented codes;
 * - with --json, a success prints exactly one JSON document on stdout and nothing on stderr; an
 *   error prints nothing on stdout and exactly one JSON line {"error": {code, message[, details]}}
 *   on stderr (without --json: nothing on stdout, one `program: ...` message on stderr);
 * - an error leaves the database exactly as it was (every row of every table). A call that ran
 *   may change it, so the reference snapshot is taken again after it.
 *
 * Most cases run in-process through runCli (fast); a smaller sample runs the built bundles as real
 * processes. Seeds are fixed, so a failure reproduces; the number of cases per CLI is written to
 * test-results/fuzz.json.
 */

const BRIEF_BIN = path.join(ROOT, 'packages/worker-brief/dist/orch-worker-brief.cjs');

/**
 * In-process cases per CLI, and real-process cases per CLI. For a longer hunt, FUZZ_SCALE=10
 * multiplies them and FUZZ_SEED=n shifts the (otherwise fixed) seeds.
 */
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
// On PostgreSQL each in-process call connects to the server and the database is compared after each
// refusal by dumping it: a quarter of the vectors (the parsing they exercise is the same on both engines).
const PER_ENGINE = onPostgres ? 0.25 : 1;
const RUNS = { inbox: 800 * SCALE * PER_ENGINE, orch: 1000 * SCALE * PER_ENGINE, brief: 300 * SCALE * PER_ENGINE };
const PROCESS_RUNS = { inbox: 30 * SCALE, orch: 30 * SCALE, brief: 15 * SCALE };

const counts: Record<string, { inProcess: number; processes: number; exitCodes: Record<string, number>; commands: Record<string, number> }> = {};

function record(cli: string, mode: 'inProcess' | 'processes', command: string, code: number): void {
  const c = (counts[cli] ??= { inProcess: 0, processes: 0, exitCodes: {}, commands: {} });
  c[mode]++;
  c.exitCodes[code] = (c.exitCodes[code] ?? 0) + 1;
  c.commands[command] = (c.commands[command] ?? 0) + 1;
}

afterAll(() => {
  const out = path.join(ROOT, 'test-results', perEngine('fuzz.json'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const total = Object.values(counts).reduce((n, c) => n + c.inProcess + c.processes, 0);
  fs.writeFileSync(out, `${JSON.stringify({ total, seeds: SEEDS, clis: counts }, null, 2)}\n`);
  console.log(
    `fuzz: ${total} cases; ${Object.entries(counts)
      .map(([k, c]) => `${k}: ${c.inProcess} in-process + ${c.processes} processes`)
      .join('; ')}`,
  );
});

const SHIFT = Number(process.env.FUZZ_SEED ?? 0);
const SEEDS = { inbox: 8101 + SHIFT, orch: 8102 + SHIFT, brief: 8103 + SHIFT, inboxProc: 8201 + SHIFT, orchProc: 8202 + SHIFT, briefProc: 8203 + SHIFT };

// ---------------------------------------------------------------------------------------------
// Running a CLI in-process.

/**
 * Real time at the start of each call, but every sleep jumps ahead at least a minute: a `wait`
 * with its default (or a long) timeout finishes in a few iterations instead of minutes.
 */
class JumpingClock implements Clock {
  private offset = 0;
  private readonly start = Date.now();
  now(): number {
    return this.start + this.offset;
  }
  monotonicMs(): number {
    return this.offset;
  }
  async sleep(ms: number): Promise<void> {
    this.offset += Math.max(ms, 60_000);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function call(spec: CliSpec, args: string[], cwd: string, clock: Clock = new JumpingClock()): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  // yargs prints --help and --version with console.log itself: keep it out of the test output.
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const code = await runCli(spec, args, {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      cwd,
      clock,
    });
    return { code, stdout, stderr };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

/** A fixture step that must succeed; returns its parsed JSON output. */
async function must<T = any>(spec: CliSpec, db: string, cwd: string, args: string[]): Promise<T> {
  const r = await call(spec, ['--db', db, '--json', ...args], cwd, systemClock);
  if (r.code !== 0) throw new Error(`${spec.program} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

// ---------------------------------------------------------------------------------------------
// The fixture: real ids for the generators to hit.

interface Fixture {
  dir: string;
  db: string;
  repo: string;
  runs: string[];
  tasks: string[];
  threads: string[];
  attempts: string[];
  leases: string[];
  agents: string[];
  /** Files with content for --body-file / --dispatch-json, relative to dir or absolute. */
  files: string[];
}

/**
 * inbox init; run r1 with tasks A..G (D depends on B, E on D); A dispatched (analysis) and
 * claimed by wa; B dispatched and blocked on a question from wb; C dispatched, untouched; G
 * dispatched in code mode (a worktree of a small git repository) and finished; plain inbox threads
 * for w1 (open) and w2 (claimed); run r2 cancelled. Saved dispatch outputs and JSON edge-case
 * files for orch-worker-brief.
 */
async function buildFixture(prefix: string): Promise<Fixture> {
  const dir = fileTempDir(prefix); // lives for the whole file
  const db = freshDb(dir);
  const repo = path.join(dir, 'repo');
  initGitRepo(repo, { 'README.md': '# fuzz\n' }, { user: ['Fuzz', 'fuzz@example.com'] });

  const inbox = (args: string[]) => must(inboxCli, db, dir, args);
  const orch = (args: string[]) => must(orchCli, db, dir, args);
  await inbox(['init']);
  await orch(['run', 'init', '--run', 'r1', '--goal', 'fuzz target', '--summary', 'a run to hit']);
  for (const [task, agent] of [
    ['A', 'wa'],
    ['B', 'wb'],
    ['C', 'wc'],
    ['D', 'wd'],
    ['E', undefined],
    ['G', 'wg'],
  ] as const) {
    await orch([
      'task',
      'add',
      '--run',
      'r1',
      '--task',
      task,
      '--title',
      `task ${task}`,
      ...(agent ? ['--default-to', agent] : []),
      '--acceptance-json',
      '{"must":["x"]}',
    ]);
  }
  await orch(['dep', 'add', '--run', 'r1', '--task', 'D', '--depends-on', 'B']);
  await orch(['dep', 'add', '--run', 'r1', '--task', 'E', '--depends-on', 'D']);
  const dA = await orch(['dispatch', '--run', 'r1', '--task', 'A', '--execution-mode', 'analysis', '--body', 'do A']);
  const cA = await inbox(['claim', '--agent', 'wa']);
  const dB = await orch(['dispatch', '--run', 'r1', '--task', 'B', '--execution-mode', 'analysis', '--body', 'do B']);
  const cB = await inbox(['claim', '--agent', 'wb']);
  await inbox(['ask', '--thread', cB.thread.id, '--lease', cB.lease.token, '--body', 'which one?']);
  const dC = await orch(['dispatch', '--run', 'r1', '--task', 'C', '--execution-mode', 'analysis', '--body', 'do C']);
  const dG = await must(orchCli, db, repo, ['dispatch', '--run', 'r1', '--task', 'G', '--execution-mode', 'code', '--body', 'do G']);
  const cG = await inbox(['claim', '--agent', 'wg']);
  fs.writeFileSync(path.join(dG.attempt.worktree_path ?? repo, 'g.txt'), 'g\n');
  await inbox(['result', '--thread', cG.thread.id, '--lease', cG.lease.token, '--body', 'G done']);
  const t1 = await inbox(['send', '--to', 'w1', '--subject', 'plain', '--body', 'hello']);
  const t2 = await inbox(['send', '--to', 'w2', '--subject', 'plain 2', '--body', 'hello 2']);
  const c2 = await inbox(['claim', '--agent', 'w2']);
  await orch(['run', 'init', '--run', 'r2', '--goal', 'cancelled run']);
  await orch(['task', 'add', '--run', 'r2', '--task', 'X', '--title', 'task X']);
  await orch(['cancel', '--run', 'r2']);

  const files: string[] = [];
  const write = (name: string, content: string) => {
    fs.writeFileSync(path.join(dir, name), content);
    files.push(name);
  };
  write('A-dispatch.json', JSON.stringify(dA));
  write('C-dispatch.json', JSON.stringify(dC));
  write('G-dispatch.json', JSON.stringify(dG));
  files.push(path.join(dir, 'B-dispatch.json'));
  fs.writeFileSync(path.join(dir, 'B-dispatch.json'), JSON.stringify(dB));
  write('body.md', 'Instructions from a file.\n- item\n');
  write('empty.txt', '');
  write('blank.txt', ' \n\t\n');
  write('nul.txt', 'a\u0000b');
  write('latin1.txt', '\u00ff\u00fe');
  fs.writeFileSync(path.join(dir, 'invalid-utf8.bin'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]));
  files.push('invalid-utf8.bin');
  write('huge.txt', 'x'.repeat(MAX_TEXT_BYTES + 1));
  for (const [i, j] of JSON_EDGES.entries()) write(`edge-${i}.json`, j);
  write('dispatch-missing-fields.json', JSON.stringify({ attempt: { id: dA.attempt.id } }));
  write('dispatch-wrong-types.json', JSON.stringify({ ...dA, attempt: { ...dA.attempt, number: 'one', thread_id: 7 } }));
  write('dispatch-foreign.json', JSON.stringify({ ...dA, attempt: { ...dA.attempt, id: 'at_nope' } }));
  write('dispatch-mixed.json', JSON.stringify({ ...dA, attempt: { ...dA.attempt, thread_id: dC.attempt.thread_id } }));
  write('dispatch-proto.json', `{"__proto__":{"polluted":true},"attempt":${JSON.stringify(dA.attempt)}}`);
  fs.mkdirSync(path.join(dir, 'a-directory'));
  files.push('a-directory', 'no-such-file.json', path.join(dir, 'nope', 'deeper.json'));

  return {
    dir,
    db,
    repo,
    runs: ['r1', 'r2'],
    tasks: ['A', 'B', 'C', 'D', 'E', 'G', 'X'],
    threads: [cA.thread.id, cB.thread.id, dC.attempt.thread_id, cG.thread.id, t1.thread.id, t2.thread.id, c2.thread.id],
    attempts: [dA.attempt.id, dB.attempt.id, dC.attempt.id, dG.attempt.id],
    leases: [cA.lease.token, cB.lease.token, cG.lease.token, c2.lease.token],
    agents: ['wa', 'wb', 'wc', 'wd', 'wg', 'w1', 'w2', 'leader'],
    files,
  };
}

// ---------------------------------------------------------------------------------------------
// Values.

const NESTED_DEEP = `${'['.repeat(5000)}${']'.repeat(5000)}`;
const NESTED_VERY_DEEP = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;

/** JSON texts that are valid in odd ways or invalid. */
const JSON_EDGES = [
  'null',
  '[]',
  '{}',
  '"x"',
  '0',
  '-0',
  'true',
  '1e400',
  '-1e400',
  '123456789012345678901234567890',
  '{"a":1e400}',
  '{"a":null}',
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"x":1}}}',
  '{"a":1,"a":2}',
  '{"":""}',
  '{"a":"\\u0000"}',
  '{"a":"\\ud800"}',
  '{"\\u202e":"rtl"}',
  '[{"kind":"analysis"}]',
  NESTED_DEEP,
  NESTED_VERY_DEEP,
  '\ufeff{}',
  ' {} ',
  '{',
  '}',
  '{"a":}',
  "{'a':1}",
  'undefined',
  'NaN',
  '{"a":NaN}',
  '{a:1}',
  '[1,]',
  '{"a":1}garbage',
  '',
  ' ',
  '\u0000',
  '{"a":1}\u0000',
];

const MB = 1024 * 1024;
/** Precomputed so generating them costs nothing. */
const HUGE = [
  'x'.repeat(MAX_TEXT_BYTES + 1),
  'x'.repeat(MAX_TEXT_BYTES - 1),
  '\u00fc'.repeat(MB), // 2 MB of UTF-8 in 1 M characters
  '\u{1F600}'.repeat(MB / 4), // astral: 1 MB, 512 K UTF-16 units
  ' '.repeat(2 * MB),
  `{"a":"${'y'.repeat(MAX_TEXT_BYTES)}"}`,
  'z'.repeat(129),
  'z'.repeat(501),
  'z'.repeat(4097),
];

const NUMBERS = [
  '0',
  '-0',
  '1',
  '-1',
  '3',
  '007',
  ' 5 ',
  '+5',
  '1.5',
  '1e3',
  '1e400',
  '-1e400',
  '0x10',
  '0b1',
  'Infinity',
  '-Infinity',
  'NaN',
  '9007199254740991',
  '9007199254740993',
  '-9007199254740993',
  '2147483648',
  '86401',
  '1000001',
  '-1000001',
  '\u0663',
  '\uff11',
  '1_000',
  '1,5',
  '٣٤',
  '1 2',
];

const UNICODE = [
  '\u00e9',
  'e\u0301',
  '\u202eevil',
  '\u05e9\u05dc\u05d5\u05dd',
  '\u0627\u0644\u0633\u0644\u0627\u0645',
  '\u{1D518}\u{1F600}',
  '\ud800',
  '\udc00x',
  '\u200b',
  '\ufeff',
  '\u{10FFFF}',
  '\u0000',
  'a\u0000b',
  '\u0007\u001b[31mred\u001b[0m',
  'line1\nline2',
  '\r',
  '\t',
  '\u2028',
  '\u0085',
  '\u2066x\u2069',
  'Z\u0351\u0352\u0353\u0354\u0355\u0356',
  '\u00a0',
  '\u3000',
];

const PATHLIKE = [
  '../../etc',
  '../../../../etc/passwd',
  '/',
  '.',
  '..',
  '/etc/hostname',
  '/dev/null',
  'C:\\Windows',
  '\\\\server\\share',
  '~',
  '~/x',
  '-rf',
  '-',
  '--',
  '---',
  '--upload-pack=x',
  '--exec=touch /tmp/pwned',
  '-h',
  '--help',
  '--version',
  '--json',
  '--db',
  'file:x?mode=rwc',
  ':memory:',
  '$(touch x)',
  '`id`',
  ';true',
  '|cat',
  'a b',
  "it's",
  '"quoted"',
  '%s%n',
  '{{x}}',
  '*',
  'HEAD~1',
  'refs/heads/main',
  '@{-1}',
  'a..b',
];

const WHITESPACE = ['', ' ', '  ', '\t', '\n', ' \n\t '];

/** Hostile values for any flag. */
const hostile: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...WHITESPACE) },
  { weight: 3, arbitrary: fc.constantFrom(...NUMBERS) },
  { weight: 3, arbitrary: fc.constantFrom(...UNICODE) },
  { weight: 3, arbitrary: fc.constantFrom(...PATHLIKE) },
  { weight: 3, arbitrary: fc.constantFrom(...JSON_EDGES) },
  { weight: 1, arbitrary: fc.constantFrom(...HUGE) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((s) => `-${s}`) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: fc.bigInt().map(String) },
);

/** Values for flags that name a directory to create things in: never outside the fixture. */
function safeDirs(f: Fixture): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      'wt',
      'wt/sub',
      'w\u00fcrk',
      '\u{1F600}dir',
      'a b',
      '',
      ' ',
      '-rf',
      path.join(f.dir, 'abs-wt'),
      'a\u0000b',
      'z'.repeat(300),
      'empty.txt',
      'a-directory',
    ),
    fc.stringMatching(/^[a-z][a-z0-9_-]{0,12}$/),
  );
}

/** Values for the wait-like flags of the real-process sample: only 0 is a valid one (no real waiting). */
const NO_WAIT = fc.constantFrom('0', '-0', '-1', '1.5', '1e3', '', ' ', 'x', '0x0', '\u0000');

/** Plausible values for a flag, by its name; unknown (new) flags get the hostile pool. */
function plausible(flag: string, f: Fixture, mode: 'inProcess' | 'process'): fc.Arbitrary<string> {
  const ids = (real: string[], fake: string[]) => fc.constantFrom(...real, ...fake);
  switch (flag) {
    case 'run':
      return ids(f.runs, ['r3', 'R1', 'r1 ', 'r1/../r2']);
    case 'task':
    case 'depends-on':
      return ids(f.tasks, ['Z', 'a', 'A.', '_x']);
    case 'thread':
      return ids(f.threads, ['th_nope', 'th_', f.threads[0]!.toUpperCase()]);
    case 'attempt':
      return ids(f.attempts, ['at_nope', f.attempts[0]!.slice(0, -1)]);
    case 'lease':
      return ids(f.leases, ['ls_nope', f.leases[0]!.slice(0, -1), `${f.leases[0]} `]);
    case 'agent':
    case 'to':
    case 'from':
    case 'default-to':
      return ids(f.agents, ['nobody', 'w-1', 'W1', '_', 'x'.repeat(128), 'x'.repeat(129)]);
    case 'state':
      return fc.constantFrom(...THREAD_STATES, ...RUN_STATES, 'OPEN', 'claimed,open');
    case 'execution-mode':
      return fc.constantFrom('analysis', 'code', 'Analysis', 'analysis ');
    case 'for':
      return fc.oneof(
        fc.constantFrom(...EVENT_TYPES),
        fc.subarray([...EVENT_TYPES]).map((t) => t.join(',')),
        fc.constantFrom(',', 'x,', ' , '),
      );
    case 'format':
      return fc.constantFrom('text', 'json', 'JSON', 'yaml');
    case 'strategy':
      return fc.constantFrom('merge', 'squash', 'rebase');
    case 'into':
    case 'base-ref':
      return fc.constantFrom('main', 'HEAD', 'fuzz-branch', 'nope', 'main~5', '-main', 'orch/r1/G/1');
    case 'repo-path':
    case 'repo':
      return fc.constantFrom(f.repo, 'repo', 'repo/', 'a-directory', 'no-such-dir');
    case 'remote':
      return fc.constantFrom('origin', 'nope', '-origin', 'a b', '');
    case 'repo-url':
      // Local paths only: a URL naming a host would make git try the network.
      return fc.constantFrom('no-such.git', path.join(f.dir, 'no-such.git'), '-u', 'file:///no/such.git', 'a\nb', '');
    case 'workspace-root':
    case 'work-dir':
      return safeDirs(f);
    case 'body-file':
    case 'dispatch-json':
      return fc.constantFrom(...f.files);
    case 'inbox':
      return fc.constantFrom('inbox', 'npx inbox', '/usr/bin/inbox --flag');
    case 'after-message':
    case 'after-event':
      return fc.oneof(fc.constantFrom('0', '1', '2', '5', '999999'), fc.nat().map(String));
    case 'limit':
    case 'priority':
    case 'concurrency':
    case 'lease-seconds':
      return fc.oneof(fc.constantFrom('1', '2', '3', '10', '900', '86400'), fc.integer({ min: -2_000_000, max: 2_000_000 }).map(String));
    case 'timeout-seconds':
    case 'wait-seconds':
    case 'idle-exit-seconds':
    case 'max-seconds':
      return mode === 'process' ? NO_WAIT : fc.constantFrom('0', '1', '5', '300', '86400', '86401');
    default:
      if (flag.endsWith('-json'))
        return fc.oneof(
          fc.constantFrom(...JSON_EDGES),
          fc.json({ maxDepth: 4 }),
          fc.object().map((o) => JSON.stringify(o)),
        );
      // Free text: body, subject, title, goal, summary, reason.
      return fc.oneof(fc.constantFrom('plain text', 'x', 'two\nlines', '- item', '# heading'), fc.string({ unit: 'grapheme', maxLength: 60 }));
  }
}

/** A flag whose value decides where files are created, or that waits: hostile values are restricted there. */
function valueFor(flag: string, f: Fixture, mode: 'inProcess' | 'process'): fc.Arbitrary<string> {
  if (flag === 'workspace-root' || flag === 'work-dir') return safeDirs(f);
  if (flag === 'repo-url' || flag === 'remote') return plausible(flag, f, mode);
  if (mode === 'process' && ['timeout-seconds', 'wait-seconds', 'idle-exit-seconds'].includes(flag)) return NO_WAIT;
  if (['timeout-seconds', 'wait-seconds', 'idle-exit-seconds'].includes(flag)) {
    // Hostile, but never a valid long wait (the clock jumps, yet 86400 s is still many iterations).
    return fc.oneof({ weight: 3, arbitrary: plausible(flag, f, mode) }, { weight: 2, arbitrary: hostile.filter((v) => !/^\s*\+?\d{4,}\s*$/.test(v)) });
  }
  return fc.oneof({ weight: 3, arbitrary: plausible(flag, f, mode) }, { weight: 2, arbitrary: hostile });
}

// ---------------------------------------------------------------------------------------------
// Argument vectors.

interface Case {
  command: string;
  args: string[];
}

const flagToken = (flag: string) => `--${flag}`;

/** One occurrence of a flag: `--f v`, `--f=v`; booleans also bare or with a value. */
function occurrence(flag: string, type: 'string' | 'boolean', value: fc.Arbitrary<string>): fc.Arbitrary<string[]> {
  if (type === 'boolean') {
    return fc.oneof(
      { weight: 5, arbitrary: fc.constant<string[]>([flagToken(flag)]) },
      { weight: 1, arbitrary: fc.constantFrom('true', 'false', '0', '1', 'yes', '', 'TRUE').map((v) => [`${flagToken(flag)}=${v}`]) },
      { weight: 1, arbitrary: value.map((v) => [flagToken(flag), v]) },
    );
  }
  return fc.oneof(
    { weight: 3, arbitrary: value.map((v) => [flagToken(flag), v]) },
    { weight: 2, arbitrary: value.map((v) => [`${flagToken(flag)}=${v}`]) },
    { weight: 1, arbitrary: fc.constant<string[]>([flagToken(flag)]) }, // no value at all
  );
}

function flagGroups(def: CommandDefinition, f: Fixture, mode: 'inProcess' | 'process', clean: boolean): fc.Arbitrary<string[][]> {
  const perFlag = Object.entries(def.flags).map(([flag, spec]) => {
    if (clean) {
      // Plausible values only, each flag at most once: these calls get past validation and hit real state.
      const value = flag === 'workspace-root' || flag === 'work-dir' ? safeDirs(f) : plausible(flag, f, mode);
      const one = spec.type === 'boolean' ? fc.constant<string[]>([flagToken(flag)]) : value.map((v) => [`${flagToken(flag)}=${v}`]);
      const mustGive = spec.required === true || (mode === 'process' && (flag === 'timeout-seconds' || flag === 'idle-exit-seconds'));
      return (mustGive ? fc.constant(1) : fc.integer({ min: 0, max: 1 })).chain((n) => fc.array(one, { minLength: n, maxLength: n }));
    }
    const one = occurrence(flag, spec.type, valueFor(flag, f, mode));
    // Wait-like flags in real processes: always present, so nothing waits for its default.
    const mustGive = mode === 'process' && (flag === 'timeout-seconds' || flag === 'idle-exit-seconds');
    const count = spec.required
      ? fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 12, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) })
      : fc.oneof({ weight: mustGive ? 0 : 6, arbitrary: fc.constant(0) }, { weight: 5, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) });
    return count.chain((n) => fc.array(one, { minLength: n, maxLength: n }));
  });
  const extras = fc.array(
    fc.oneof(
      fc.tuple(fc.constantFrom('--nope', '--Run', '--RUN', '--db2', '-x', '--no-json', '--j', '--agnet'), hostile).map(([k, v]): string[] => [k, v]),
      hostile.map((v): string[] => [v]), // a stray positional (or something that looks like a flag)
      fc.constantFrom<string[]>(['--json'], ['--json=false'], ['--json=maybe'], ['-h'], ['--version']),
    ),
    { maxLength: 2 },
  );
  return fc.tuple(fc.tuple(...perFlag), clean ? fc.constant<string[][]>([]) : extras).map(([flags, extra]) => [...flags.flat(), ...extra]);
}

function globals(f: Fixture, clean: boolean): fc.Arbitrary<{ before: string[]; after: string[] }> {
  if (clean) return fc.boolean().map((first) => (first ? { before: ['--db', f.db, '--json'], after: [] } : { before: [], after: ['--json', `--db=${f.db}`] }));
  const db = fc.oneof(
    { weight: 20, arbitrary: fc.constant(['--db', f.db]) },
    { weight: 3, arbitrary: fc.constant([`--db=${f.db}`]) },
    { weight: 2, arbitrary: fc.constant(['--db', relativeDb(f.db, f.dir)]) },
    { weight: 1, arbitrary: fc.constant([] as string[]) },
    { weight: 1, arbitrary: fc.constant(['--db', f.db, '--db', f.db]) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        ['--db', ''],
        ['--db', ' '],
        ['--db'],
        ['--db', f.dir],
        ['--db', path.join(f.dir, 'body.md')],
        ['--db', path.join(f.dir, 'missing', 'x.db')],
      ),
    },
  );
  const json = fc.oneof(
    { weight: 12, arbitrary: fc.constant(['--json']) },
    { weight: 2, arbitrary: fc.constant([] as string[]) },
    { weight: 1, arbitrary: fc.constantFrom(['--json', '--json'], ['--json=true'], ['--json=false', '--json']) },
  );
  return fc.tuple(db, json, fc.boolean(), fc.boolean()).map(([d, j, dbFirst, jsonFirst]) => ({
    before: [...(dbFirst ? d : []), ...(jsonFirst ? j : [])],
    after: [...(dbFirst ? [] : d), ...(jsonFirst ? [] : j)],
  }));
}

/** The command words, now and then wrong (unknown, miscased, a group without its subcommand). */
function commandWords(def: CommandDefinition, clean: boolean): fc.Arbitrary<string[]> {
  if (def.name === '$0') return fc.constant([]);
  const words = def.name.split(' ');
  if (clean) return fc.constant(words);
  return fc.oneof(
    { weight: 30, arbitrary: fc.constant(words) },
    { weight: 1, arbitrary: fc.constant(words.map((w) => w.toUpperCase())) },
    { weight: 1, arbitrary: fc.constant(words.slice(0, 1)) },
    { weight: 1, arbitrary: hostile.map((w) => [w, ...words.slice(1)]) },
  );
}

function vectors(defs: CommandDefinition[], f: Fixture, mode: 'inProcess' | 'process'): fc.Arbitrary<Case> {
  const perCommand = defs.map((def) =>
    fc
      .boolean()
      .chain((clean) =>
        fc.tuple(
          globals(f, clean),
          commandWords(def, clean),
          flagGroups(def, f, mode, clean).chain((groups) => fc.shuffledSubarray(groups, { minLength: groups.length })),
        ),
      )
      .map(([g, words, groups]) => {
        let args = [...g.before, ...words, ...groups.flat(), ...g.after];
        if (def.rest) {
          // `inbox work` runs `-- COMMAND`: only ever the harmless `true`, and only with --once
          // first (a duplicated --once is refused), so it never runs anything else or waits.
          // A generated value `--` would make the rest of the vector the command: drop it.
          args = [...g.before, ...words, '--once', ...[...groups.flat(), ...g.after].filter((a) => a !== '--'), '--', 'true'];
        } else if (mode === 'process') {
          // A real process has no jumping clock: a lone `--` would hide the wait flags that keep it short.
          args = args.filter((a) => a !== '--');
        }
        return { command: def.name, args };
      }),
  );
  return fc.oneof(...perCommand);
}

// ---------------------------------------------------------------------------------------------
// The property.

const EXIT_CODES = [0, 2, 3, 4, 5, 6];

/** Help and version print yargs' own text, not JSON (a short-flag cluster such as `-sth` holds -h). */
const asksForHelp = (args: string[]) => args.some((a) => /^--(help|version)(=|$)/.test(a) || /^-[^-]*h/.test(a));

function checkContract(spec: CliSpec, defs: CommandDefinition[], c: Case, r: CliRun, json: boolean): 'ok' | 'error' | 'reported' {
  const where = `${spec.program} ${JSON.stringify(c.args).slice(0, 2000)}\n-> exit ${r.code}\nstdout=${JSON.stringify(r.stdout.slice(0, 2000))}\nstderr=${JSON.stringify(r.stderr.slice(0, 4000))}`;
  expect(r.code, where).not.toBe(1);
  expect(EXIT_CODES, where).toContain(r.code);
  if (r.code === 0 && asksForHelp(c.args)) return 'ok';
  if (r.code === 0 || r.stdout !== '') {
    // Ran: one JSON document on stdout with --json (a command may report a non-zero outcome, e.g. work's 4).
    if (r.code !== 0) expect(defs.find((d) => d.name === c.command)?.exitCode, where).toBeDefined();
    expect(r.stderr, where).toBe('');
    if (json) expect(() => JSON.parse(r.stdout), where).not.toThrow();
    else expect(r.stdout.length, where).toBeGreaterThan(0);
    return r.code === 0 ? 'ok' : 'reported';
  }
  expect(r.stdout, where).toBe('');
  expect(r.stderr.endsWith('\n'), where).toBe(true);
  if (json) {
    expect(r.stderr.slice(0, -1).includes('\n'), where).toBe(false);
    const body = JSON.parse(r.stderr) as { error: { code: unknown; message: unknown; details?: unknown } };
    expect(Object.keys(body), where).toEqual(['error']);
    expect(typeof body.error.code, where).toBe('string');
    expect(typeof body.error.message, where).toBe('string');
    expect((body.error.message as string).length, where).toBeGreaterThan(0);
    expect(
      Object.keys(body.error).every((k) => ['code', 'message', 'details'].includes(k)),
      where,
    ).toBe(true);
  } else {
    expect(r.stderr.startsWith(`${spec.program}: `), where).toBe(true);
  }
  return 'error';
}

/** Whether the vector, as the CLI reads it, asks for JSON (the last --json / --json=BOOL before `--`). */
function wantsJson(args: string[]): boolean {
  let json = false;
  for (const a of args) {
    if (a === '--') break;
    if (a === '--json' || a === '--json=true') json = true;
    else if (a === '--json=false') json = false;
  }
  return json;
}

/** Snapshot as a string (cheap to compare); the reference moves on after a call that ran. */
function dbState(f: Fixture): string {
  return JSON.stringify(snapshot(f.db));
}

function expectUnchanged(f: Fixture, before: string, c: Case, r: CliRun): void {
  const after = dbState(f);
  if (after !== before) {
    type Table = { name: string; rows?: unknown[] };
    const was = new Map((JSON.parse(before) as Table[]).map((t) => [t.name, JSON.stringify(t)]));
    const changed = (JSON.parse(after) as Table[]).filter((t) => was.get(t.name) !== JSON.stringify(t));
    const what = changed.map((t) => `${t.name}: ${JSON.stringify(t.rows?.slice(-3)).slice(0, 1500)}`).join('\n');
    expect(
      JSON.parse(after),
      `database changed by a failed call: ${JSON.stringify(c.args).slice(0, 2000)} -> exit ${r.code} ${r.stderr.slice(0, 2000)}\nchanged (last rows now):\n${what}`,
    ).toEqual(JSON.parse(before));
  }
}

/**
 * Commands the fuzzer leaves out: `mcp` serves the MCP protocol on stdin/stdout until stdin ends
 * (in-process it would wait on the test runner's stdin; as a process its stdout is protocol, not a
 * --json document). Its refusals (a bad --db, a bad --agent) are tested in test/mcp.test.ts.
 * `serve` runs an HTTP server until a signal; its refusals are tested in test/server.test.ts.
 */
const OWNS_STDIO = new Set(['mcp', 'serve']);
const fuzzable = (defs: CommandDefinition[]) => defs.filter((d) => !OWNS_STDIO.has(d.name));

async function fuzzInProcess(name: keyof typeof RUNS, spec: CliSpec, f: Fixture): Promise<void> {
  let reference = dbState(f);
  const defs = await loadCommands(spec);
  expect(defs.map((d) => d.name)).toEqual(spec.commands.map((c) => c.name));
  await fc.assert(
    fc.asyncProperty(vectors(fuzzable(defs), f, 'inProcess'), async (c) => {
      const r = await call(spec, c.args, f.dir);
      record(name, 'inProcess', c.command, r.code);
      const outcome = checkContract(spec, defs, c, r, wantsJson(c.args));
      if (outcome === 'error') expectUnchanged(f, reference, c, r);
      else reference = dbState(f);
    }),
    { seed: SEEDS[name], numRuns: RUNS[name], endOnFailure: true },
  );
}

/** argv cannot carry NUL, and one argument is at most 128 KiB on Linux. */
function forProcess(args: string[]): string[] {
  return args.map((a) => {
    const clean = a.replace(/\u0000/g, '\\0');
    return Buffer.byteLength(clean) > 100_000 ? clean.slice(0, 30_000) : clean;
  });
}

async function fuzzProcesses(name: keyof typeof RUNS, spec: CliSpec, bin: string, f: Fixture, seed: number): Promise<void> {
  let reference = dbState(f);
  const defs = await loadCommands(spec);
  await fc.assert(
    fc.asyncProperty(vectors(fuzzable(defs), f, 'process'), async (raw) => {
      const c = { ...raw, args: forProcess(raw.args) };
      const p = spawnSync(process.execPath, [bin, ...c.args], { cwd: f.dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      const r: CliRun = { code: p.status ?? -1, stdout: p.stdout, stderr: p.stderr };
      if (p.error) throw p.error;
      record(name, 'processes', c.command, r.code);
      const outcome = checkContract(spec, defs, c, r, wantsJson(c.args));
      if (outcome === 'error') expectUnchanged(f, reference, c, r);
      else reference = dbState(f);
    }),
    { seed, numRuns: PROCESS_RUNS[name], endOnFailure: true },
  );
}

// ---------------------------------------------------------------------------------------------

const fixtures: Fixture[] = [];
afterAll(() => {
  for (const f of fixtures) fs.rmSync(f.dir, { recursive: true, force: true });
});

async function fixture(prefix: string): Promise<Fixture> {
  const f = await buildFixture(prefix);
  fixtures.push(f);
  return f;
}

describe('fuzz: inbox (slow)', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture('orch-fuzz-inbox-');
  });

  it('covers every command from the spec', () => {
    expect(inboxCli.commands.map((c) => c.name)).toEqual(expect.arrayContaining(['init', 'send', 'claim', 'wait', 'work']));
  });

  it('work refuses a --work-dir it cannot create before claiming anything (was exit 1 with the thread left claimed)', async () => {
    const sent = await must(inboxCli, f.db, f.dir, ['send', '--to', 'wz', '--subject', 'for work', '--body', 'x']);
    for (const dir of ['empty.txt', 'a\u0000b', 'x'.repeat(300)]) {
      const before = dbState(f);
      const r = await call(inboxCli, ['--db', f.db, '--json', 'work', '--agent', 'wz', '--once', `--work-dir=${dir}`, '--', 'true'], f.dir);
      expect(r.code, r.stderr).toBe(2);
      expect(JSON.parse(r.stderr).error.details[0].path).toBe('--work-dir');
      expect(dbState(f)).toBe(before);
    }
    const r = await call(inboxCli, ['--db', f.db, '--json', 'work', '--agent', 'wz', '--once', '--', 'tr\u0000ue'], f.dir);
    expect(r.code, r.stderr).toBe(2);
    expect((await must(inboxCli, f.db, f.dir, ['show', '--thread', sent.thread.id])).thread.state).toBe('open');
  });

  it(`in-process: ${RUNS.inbox} generated vectors never exit 1, keep the JSON contract, and leave the database alone on error`, async () => {
    await fuzzInProcess('inbox', inboxCli, f);
    expect(counts.inbox?.inProcess).toBe(RUNS.inbox);
    // The generators reach past validation: some calls succeed, some hit real ids (not found / conflict / lease lost).
    for (const code of [0, 2, 3, 4, 5]) expect(counts.inbox?.exitCodes[code] ?? 0, `exit ${code}`).toBeGreaterThan(0);
  });

  it(`real processes: ${PROCESS_RUNS.inbox} vectors through the built bundle`, async () => {
    await fuzzProcesses('inbox', inboxCli, INBOX_BIN, f, SEEDS.inboxProc);
  });
});

describe('fuzz: orch (slow)', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture('orch-fuzz-orch-');
  });

  it('task show of an unknown task writes nothing, even with worker activity not folded in yet', async () => {
    const threadA = f.threads[0];
    await must(inboxCli, f.db, f.dir, ['progress', '--thread', threadA!, '--lease', f.leases[0]!, '--body', 'half way']);
    const before = dbState(f);
    const r = await call(orchCli, ['--db', f.db, '--json', 'task', 'show', '--run', 'r1', '--task', 'NOPE'], f.dir);
    expect(r.code, r.stderr).toBe(3);
    expect(dbState(f)).toBe(before);
  });

  it('a boolean flag given a value other than true/false is refused (--dry-run=yes used to read as false: a real cleanup)', async () => {
    const before = dbState(f);
    for (const args of [
      ['cleanup', '--run', 'r1', '--all-completed', '--dry-run=yes'],
      ['diff', '--run', 'r1', '--task', 'G', '--stat=1'],
      ['--json=maybe', 'status', '--run', 'r1'],
    ]) {
      const r = await call(orchCli, ['--db', f.db, '--json', ...args], f.dir);
      expect(r.code, r.stderr).toBe(2);
      expect(JSON.parse(r.stderr).error.code).toBe('USAGE');
    }
    expect(dbState(f)).toBe(before);
    const ok = await call(orchCli, ['--db', f.db, '--json', 'cleanup', '--run', 'r1', '--all-completed', '--dry-run=true'], f.dir);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it(`in-process: ${RUNS.orch} generated vectors never exit 1, keep the JSON contract, and leave the database alone on error`, async () => {
    await fuzzInProcess('orch', orchCli, f);
    expect(counts.orch?.inProcess).toBe(RUNS.orch);
    for (const code of [0, 2, 3, 4]) expect(counts.orch?.exitCodes[code] ?? 0, `exit ${code}`).toBeGreaterThan(0);
  });

  it(`real processes: ${PROCESS_RUNS.orch} vectors through the built bundle`, async () => {
    await fuzzProcesses('orch', orchCli, ORCH_BIN, f, SEEDS.orchProc);
  });
});

describe('fuzz: orch-worker-brief (slow)', () => {
  let f: Fixture;
  const spec = briefCli({ defaultInbox: 'inbox' });
  beforeAll(async () => {
    f = await fixture('orch-fuzz-brief-');
  });

  it(`in-process: ${RUNS.brief} generated vectors never exit 1, keep the JSON contract, and never write`, async () => {
    await fuzzInProcess('brief', spec, f);
    expect(counts.brief?.inProcess).toBe(RUNS.brief);
    for (const code of [0, 2, 3]) expect(counts.brief?.exitCodes[code] ?? 0, `exit ${code}`).toBeGreaterThan(0);
  });

  it(`real processes: ${PROCESS_RUNS.brief} vectors through the built bundle`, async () => {
    await fuzzProcesses('brief', spec, BRIEF_BIN, f, SEEDS.briefProc);
  });
});
