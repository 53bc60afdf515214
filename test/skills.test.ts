import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, git, initGitRepo, tempDir, type CliRun } from './helpers.ts';

/**
 * The agent skills (skills/orch, skills/inbox) are documentation plus bundled executables. These
 * tests keep the documentation true and the executables self-contained:
 *
 * - the SKILL.md files and the orch references have front matter and the required sections;
 * - every command line in their ```bash fences names a command that exists and only flags that
 *   command's --help lists (and no stray positional arguments);
 * - the skills are copied outside the repository, and from that copy the seed skill's "Typical
 *   Commands" (../shared/seeds/001_ec13869c17fc0525.txt, copied to test/fixtures/), our own orch "Typical Commands" and our
 *   inbox "Typical Commands" are run line by line, in a temporary git repository, with the worker
 *   steps played through the copied inbox; our orch ones by a real shell (bash), exactly as
 *   written but for the skill folder and LAST_EVENT, and the repository is left clean;
 * - the copied assets run with PATH holding nothing but `node`, NODE_PATH unset, from a directory
 *   outside the repository, and the commands the worker brief prints work as printed.
 */

const SKILL_FILES = [
  'skills/orch/SKILL.md',
  'skills/orch/references/leader-dispatch-and-launch-checklist.md',
  'skills/orch/references/worker-brief-template.md',
  'skills/inbox/SKILL.md',
] as const;
// The seed's section, copied verbatim into the repository (CI checks out this repository alone).
const SEED = path.join(ROOT, 'test/fixtures/seed-typical-commands.md');
const RUN = 'blog_mvp_001';

// ---------------------------------------------------------------------------------------------
// Markdown: front matter, sections, command lines

const read = (file: string): string => fs.readFileSync(file, 'utf8');

function frontMatter(text: string): Record<string, string> {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(text);
  if (!m) return {};
  const out: Record<string, string> = {};
  for (const line of m[1]!.split('\n')) {
    const kv = /^([A-Za-z_-]+):\s*(.*)$/.exec(line);
    if (kv) out[kv[1]!] = kv[2]!.trim();
  }
  return out;
}

/** Level-2 headings, lower-cased. */
const headings = (text: string): string[] => [...text.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase());

/** The body of the level-2 section with this heading (up to the next level-2 heading). */
function section(text: string, heading: string): string {
  const start = text.search(new RegExp(`^## ${heading}\\s*$`, 'm'));
  if (start < 0) throw new Error(`no section "## ${heading}"`);
  const rest = text.slice(start + 3);
  const next = rest.search(/^## /m);
  return next < 0 ? rest : rest.slice(0, next);
}

interface BashLine {
  file: string;
  /** 1-based line number in the file. */
  lineNo: number;
  text: string;
}

/** Every non-blank, non-comment line inside ```bash fences (continuations joined). */
function bashLines(text: string, file = ''): BashLine[] {
  const out: BashLine[] = [];
  const lines = text.split('\n');
  let inBash = false;
  let pending: BashLine | null = null;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!inBash) {
      if (/^```bash\s*$/.test(line)) inBash = true;
      return;
    }
    if (line.startsWith('```')) {
      inBash = false;
      return;
    }
    if (pending) {
      pending.text += ` ${line.replace(/\\$/, '').trim()}`;
      if (!line.endsWith('\\')) {
        out.push(pending);
        pending = null;
      }
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    const entry = { file, lineNo: i + 1, text: line.replace(/\\$/, '').trim() };
    if (line.endsWith('\\')) pending = entry;
    else out.push(entry);
  });
  return out;
}

/** The shell variables the orch skill sets once (Quick Start) and its command lines use. */
const SKILL_VARS = ['SKILL_DIR', 'ORCH', 'BRIEF', 'INBOX', 'DB'] as const;

/** `$NAME` at `i` for one of SKILL_VARS: the name, or null. */
function skillVarAt(line: string, i: number): string | null {
  const m = /^\$([A-Z_]+)/.exec(line.slice(i));
  return m && (SKILL_VARS as readonly string[]).includes(m[1]!) ? m[1]! : null;
}

/**
 * Splits a command line like a POSIX shell would, for the subset the skills use: words, '...'
 * and "..." quoting (backslash escapes inside double quotes), `$NAME` / "$NAME" for the skill's
 * own variables (SKILL_VARS, kept as the literal `$NAME`), and `>` / `2>` redirections as
 * separate tokens. Any other expansion ($, backticks, pipes, ;, &) is refused, so no line can slip
 * past these checks by meaning something else to a real shell.
 */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let have = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      if (have) words.push(cur);
      cur = '';
      have = false;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      cur += line.slice(i + 1, end);
      have = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        const v = line[i] === '$' ? skillVarAt(line, i) : null;
        if (v !== null) {
          cur += `$${v}`;
          i += v.length + 1;
          continue;
        }
        if (line[i] === '$' || line[i] === '`') throw new Error(`expansion in double quotes is not supported: ${line}`);
        if (line[i] === '\\' && '"\\$`'.includes(line[i + 1] ?? '')) i++;
        cur += line[i];
        i++;
      }
      if (i >= line.length) throw new Error(`unterminated " in: ${line}`);
      have = true;
      i++;
    } else if (c === '>' || (c === '2' && line[i + 1] === '>' && !have)) {
      if (have) words.push(cur);
      const op = c === '>' ? '>' : '2>';
      words.push(op);
      cur = '';
      have = false;
      i += op.length;
    } else if (c === '$' && skillVarAt(line, i) !== null) {
      const v = skillVarAt(line, i)!;
      cur += `$${v}`;
      have = true;
      i += v.length + 1;
    } else if ('$`|;&<()'.includes(c)) {
      throw new Error(`shell syntax ${c} is not supported in a skill command line: ${line}`);
    } else {
      cur += c;
      have = true;
      i++;
    }
  }
  if (have) words.push(cur);
  return words;
}

// ---------------------------------------------------------------------------------------------
// The tools and their --help

type Tool = 'orch' | 'inbox' | 'orch-worker-brief';

/** How a skill command line may start, longest first, and which tool that is. */
const INVOCATIONS: [string, Tool][] = [
  ['$ORCH', 'orch'],
  ['$BRIEF', 'orch-worker-brief'],
  ['$INBOX', 'inbox'],
  ['./assets/orch-worker-brief', 'orch-worker-brief'],
  ['../inbox/assets/inbox', 'inbox'],
  ['./assets/inbox', 'inbox'],
  ['./assets/orch', 'orch'],
  ['orch-worker-brief', 'orch-worker-brief'],
  ['orch', 'orch'],
  ['inbox', 'inbox'],
];

const SOURCE_BIN: Record<Tool, string> = {
  orch: path.join(ROOT, 'skills/orch/assets/orch'),
  inbox: path.join(ROOT, 'skills/inbox/assets/inbox'),
  'orch-worker-brief': path.join(ROOT, 'skills/orch/assets/orch-worker-brief'),
};

/**
 * The orch skill's set-up lines, the only lines in its bash fences that are not tool commands:
 * the variables of Quick Start, making `.orch/` (ignored by git as a whole), and writing a task
 * file there.
 */
function isSetupLine(text: string): boolean {
  return /^(SKILL_DIR|ORCH|BRIEF|INBOX|DB)=\S+$/.test(text) || /^mkdir -p \.orch$/.test(text) || /^echo '[^']*' > \.orch\/[\w.-]+$/.test(text);
}

/** orch commands that group subcommands. */
const GROUPS = new Set(['run', 'task', 'dep', 'token']);

interface Help {
  ok: boolean;
  header: string;
  /** The whole --help text. */
  text: string;
  /** flag name (without --) -> takes a value? */
  flags: Map<string, boolean>;
}

const helpCache = new Map<string, Help>();
function help(tool: Tool, command: string[]): Help {
  const key = `${tool} ${command.join(' ')}`;
  const cached = helpCache.get(key);
  if (cached) return cached;
  const r = spawnSync(SOURCE_BIN[tool], [...command, '--help'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const flags = new Map<string, boolean>();
  for (const m of r.stdout.matchAll(/^\s+(?:-\w, )?--([a-z][a-z0-9-]*)\b(.*)$/gm)) flags.set(m[1]!, !/\[boolean\]/.test(m[2]!));
  const h = { ok: r.status === 0, header: r.stdout.split('\n')[0] ?? '', text: r.stdout, flags };
  helpCache.set(key, h);
  return h;
}

interface Invocation {
  tool: Tool;
  /** The invocation prefix as written (e.g. ./assets/orch). */
  prefix: string;
  command: string[];
  /** Every --flag used (globals included), without the dashes. */
  flags: string[];
  /** Arguments after the program, redirections removed. */
  args: string[];
  /** `> file` target, if any. */
  stdoutTo: string | null;
  problems: string[];
}

/** Parses a skill command line and checks it against the tool's --help. */
function parseInvocation(line: string): Invocation | null {
  const words = shellWords(line);
  const found = INVOCATIONS.find(([prefix]) => words[0] === prefix);
  if (!found) return null;
  const [prefix, tool] = found;
  let stdoutTo: string | null = null;
  const args: string[] = [];
  for (let i = 1; i < words.length; i++) {
    if (words[i] === '>' || words[i] === '2>') {
      if (words[i] === '>') stdoutTo = words[i + 1] ?? null;
      i++;
    } else args.push(words[i]!);
  }
  const problems: string[] = [];
  // Globals first, then the command (two words for a group), then its flags.
  const command: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--db') i++;
    else if (a === '--json') continue;
    else if (!a.startsWith('-') && tool !== 'orch-worker-brief' && command.length === 0) command.push(a);
    else if (!a.startsWith('-') && tool === 'orch' && command.length === 1 && GROUPS.has(command[0]!)) command.push(a);
    else rest.push(a);
  }
  if (tool !== 'orch-worker-brief' && command.length === 0) problems.push('no command');
  const h = help(tool, command);
  const expectedHeader = tool === 'orch-worker-brief' ? 'orch-worker-brief:' : `${tool} ${command.join(' ')}:`;
  if (!h.ok || !h.header.startsWith(expectedHeader)) problems.push(`no such command: ${tool} ${command.join(' ')}`);
  const flags = ['db', ...(args.includes('--json') ? ['json'] : [])];
  if (!args.includes('--db')) problems.push('no --db');
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    // `inbox work ... -- COMMAND [ARG...]`: what follows `--` is the command to run, not flags.
    if (a === '--') {
      if (!h.text.includes('-- COMMAND')) problems.push(`\`${tool} ${command.join(' ')}\` takes no -- COMMAND`);
      else if (rest[i + 1] === undefined) problems.push('nothing after --');
      break;
    }
    if (!a.startsWith('--')) {
      problems.push(`stray argument ${JSON.stringify(a)}`);
      continue;
    }
    const name = a.slice(2).split('=')[0]!;
    flags.push(name);
    if (!h.flags.has(name)) problems.push(`--${name} is not in \`${tool} ${command.join(' ')} --help\``);
    else if (h.flags.get(name) && !a.includes('=')) {
      if (rest[i + 1] === undefined || rest[i + 1]!.startsWith('--')) problems.push(`--${name} needs a value`);
      i++;
    }
  }
  return { tool, prefix, command, flags, args, stdoutTo, problems };
}

// ---------------------------------------------------------------------------------------------
// A copy of the skills outside the repository, and a git repository to work in

interface Copy {
  /** The temp dir holding orch/, inbox/, repo/ and work/. */
  dir: string;
  orchSkill: string;
  inboxSkill: string;
  bins: Record<Tool, string>;
  /** A git repository on main with one commit, and an untracked tasks/t1.md. */
  repo: string;
  /** Where the tests put dispatch JSON, briefs and reports (instead of /tmp). */
  work: string;
}

function copySkills(): Copy {
  const dir = fs.realpathSync(tempDir('orch-skills-copy-'));
  const orchSkill = path.join(dir, 'orch');
  const inboxSkill = path.join(dir, 'inbox');
  fs.cpSync(path.join(ROOT, 'skills/orch'), orchSkill, { recursive: true });
  fs.cpSync(path.join(ROOT, 'skills/inbox'), inboxSkill, { recursive: true });
  const repo = initGitRepo(path.join(dir, 'repo'), { 'README.md': '# blog\n' }, { user: ['Skill Test', 'skill-test@example.com'] });
  fs.mkdirSync(path.join(repo, 'tasks'));
  fs.writeFileSync(path.join(repo, 'tasks/t1.md'), 'Create the app skeleton: an index page and the database wiring.\n');
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  return {
    dir,
    orchSkill,
    inboxSkill,
    bins: {
      orch: path.join(orchSkill, 'assets/orch'),
      inbox: path.join(inboxSkill, 'assets/inbox'),
      'orch-worker-brief': path.join(orchSkill, 'assets/orch-worker-brief'),
    },
    repo,
    work,
  };
}

/** The environment the copied assets run in: nothing from the test runner's node set-up. */
function cleanEnv(pathVar = process.env.PATH ?? ''): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: pathVar, NO_COLOR: '1', GIT_TERMINAL_PROMPT: '0' };
  if (process.env.HOME) env.HOME = process.env.HOME;
  return env;
}

function runBin(bin: string, args: string[], cwd: string, env = cleanEnv()): CliRun {
  // spawnSync blocks vitest's own timeout, so a command that hangs (say, a `wait` for an event
  // that never comes) is killed here instead.
  const r = spawnSync(bin, args, { cwd, encoding: 'utf8', env, timeout: 30_000, killSignal: 'SIGKILL' });
  if (r.error) throw new Error(`${bin} ${args.join(' ')}: ${r.error.message}`);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a copied tool with --db and --json and expects exit 0; returns the parsed output. */
function tool(c: Copy, t: Tool, db: string, args: string[], cwd = c.work): any {
  const r = runBin(c.bins[t], ['--db', db, '--json', ...args], cwd);
  if (r.code !== 0) throw new Error(`${t} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

interface LineRun extends CliRun {
  line: string;
  inv: Invocation;
  /** stdout parsed as JSON, or the redirected file's JSON, when it is JSON. */
  out: any;
}

/**
 * Runs one documented command line through the copied assets: the invocation prefix is replaced
 * by the copied executable, `/tmp/` by the test's work dir, and upper-case placeholders by the
 * values given. A `> file` redirection writes stdout to that file.
 */
function runLine(c: Copy, line: string, cwd: string, values: Record<string, string> = {}): LineRun {
  const inv = parseInvocation(line);
  if (!inv) throw new Error(`not a skill command line: ${line}`);
  expect(inv.problems, line).toEqual([]);
  const subst = (w: string): string => {
    let s = w.startsWith('/tmp/') ? path.join(c.work, w.slice('/tmp/'.length)) : w;
    for (const [k, v] of Object.entries(values)) s = s.replace(new RegExp(`\\b${k}\\b`, 'g'), v);
    return s;
  };
  const args = inv.args.map(subst);
  const r = runBin(c.bins[inv.tool], args, cwd);
  let text = r.stdout;
  if (inv.stdoutTo) {
    const target = path.resolve(cwd, subst(inv.stdoutTo));
    fs.writeFileSync(target, r.stdout);
    text = r.stdout;
  }
  let out: any = null;
  try {
    out = JSON.parse(text);
  } catch {
    out = null;
  }
  return { ...r, line, inv, out };
}

/** The command lines of the first ```bash fence in a piece of markdown. */
function firstBashBlock(text: string): BashLine[] {
  const start = text.indexOf('```bash');
  const end = text.indexOf('```', start + '```bash'.length);
  return bashLines(text.slice(start, end + 3));
}

function seedTypicalCommands(): string[] {
  return bashLines(section(read(SEED), 'Typical Commands')).map((l) => l.text);
}

// ---------------------------------------------------------------------------------------------

describe('the skill documents (slow)', () => {
  it('have front matter with name and description, and the required sections', () => {
    for (const rel of SKILL_FILES) {
      const fm = frontMatter(read(path.join(ROOT, rel)));
      expect(fm.name, `${rel}: name`).toBeTruthy();
      expect(fm.description, `${rel}: description`).toBeTruthy();
      expect(fm.description!.length, `${rel}: a useful description`).toBeGreaterThan(60);
    }
    expect(frontMatter(read(path.join(ROOT, 'skills/orch/SKILL.md'))).name).toBe('orch');
    expect(frontMatter(read(path.join(ROOT, 'skills/inbox/SKILL.md'))).name).toBe('inbox');

    const orchSections = headings(read(path.join(ROOT, 'skills/orch/SKILL.md')));
    for (const s of [
      'mental model',
      'good fit',
      'bad fit',
      'quick start',
      'rules',
      'leader loop',
      'dispatch-and-launch workflow',
      'typical commands',
      'command map',
    ]) {
      expect(orchSections, `skills/orch/SKILL.md: ## ${s}`).toContain(s);
    }
    const inboxSections = headings(read(path.join(ROOT, 'skills/inbox/SKILL.md')));
    for (const s of [
      'claim',
      'lease and heartbeat',
      'progress',
      'asking and waiting',
      'result or fail',
      'what never to do',
      'typical commands',
      'command map',
    ]) {
      expect(inboxSections, `skills/inbox/SKILL.md: ## ${s}`).toContain(s);
    }
  });

  it('name every orch and inbox command in their command maps, and the orch skill points at its references', () => {
    const orchMd = read(path.join(ROOT, 'skills/orch/SKILL.md'));
    const orchMap = section(orchMd, 'Command Map');
    const top = spawnSync(SOURCE_BIN.orch, ['--help'], { encoding: 'utf8' }).stdout;
    const orchCommands = [...top.matchAll(/^ {2}orch (\w+)/gm)].map((m) => m[1]!);
    expect(orchCommands.length).toBeGreaterThan(10);
    for (const cmd of orchCommands) {
      if (GROUPS.has(cmd)) {
        const sub = spawnSync(SOURCE_BIN.orch, [cmd, '--help'], { encoding: 'utf8' }).stdout;
        for (const m of sub.matchAll(new RegExp(`^ {2}orch ${cmd} (\\w+)`, 'gm'))) expect(orchMap).toContain(`\`${cmd} ${m[1]}\``);
      } else expect(orchMap).toContain(`\`${cmd}\``);
    }
    const inboxMap = section(read(path.join(ROOT, 'skills/inbox/SKILL.md')), 'Command Map');
    const inboxTop = spawnSync(SOURCE_BIN.inbox, ['--help'], { encoding: 'utf8' }).stdout;
    const inboxCommands = [...inboxTop.matchAll(/^ {2}inbox (\w+)/gm)].map((m) => m[1]!);
    expect(inboxCommands).toContain('claim');
    for (const cmd of inboxCommands) expect(inboxMap).toContain(`\`${cmd}\``);
    for (const ref of ['references/leader-dispatch-and-launch-checklist.md', 'references/worker-brief-template.md']) {
      expect(orchMd).toContain(`./${ref}`);
      expect(fs.existsSync(path.join(ROOT, 'skills/orch', ref))).toBe(true);
    }
  });

  it('every command line in a bash fence uses an existing command and only flags its --help lists', () => {
    const all: BashLine[] = SKILL_FILES.flatMap((rel) => bashLines(read(path.join(ROOT, rel)), rel));
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const l of all) {
      const where = `${l.file}:${l.lineNo}`;
      if (l.file.startsWith('skills/orch/') && isSetupLine(l.text)) continue;
      let inv: Invocation | null;
      try {
        inv = parseInvocation(l.text);
      } catch (err) {
        problems.push(`${where}: ${(err as Error).message}`);
        continue;
      }
      if (!inv) {
        problems.push(`${where}: not an orch, inbox or orch-worker-brief command: ${l.text}`);
        continue;
      }
      for (const p of inv.problems) problems.push(`${where}: ${p}: ${l.text}`);
      // The invocation must match where the file lives (relative to its skill directory).
      const inOrchSkill = l.file.startsWith('skills/orch/');
      const allowed = inOrchSkill ? ['$ORCH', '$BRIEF', '$INBOX'] : ['./assets/inbox'];
      if (!allowed.includes(inv.prefix)) problems.push(`${where}: ${inv.prefix} is not how ${l.file} reaches its tools`);
      if (!inv.flags.includes('json') && inv.tool !== 'orch-worker-brief') problems.push(`${where}: no --json`);
      seen.add(`${inv.tool} ${inv.command.join(' ')}`.trim());
    }
    expect(problems).toEqual([]);
    // Sanity: the extraction found the commands the skills are about.
    expect(all.length).toBeGreaterThan(60);
    for (const cmd of [
      'inbox init',
      'orch run init',
      'orch run show',
      'orch run list',
      'orch task add',
      'orch task show',
      'orch dep add',
      'orch ready',
      'orch dispatch',
      'orch reconcile',
      'orch status',
      'orch wait',
      'orch blocked',
      'orch answer',
      'orch retry',
      'orch reassign',
      'orch cancel',
      'orch diff',
      'orch merge',
      'orch cleanup',
      'orch-worker-brief',
      'inbox claim',
      'inbox heartbeat',
      'inbox progress',
      'inbox ask',
      'inbox wait',
      'inbox result',
      'inbox fail',
      'inbox release',
      'inbox show',
      'inbox list',
    ]) {
      expect([...seen], cmd).toContain(cmd);
    }
  });

  it('the orch skill sets its variables one way: Typical Commands starts with the Quick Start set-up, and .orch/ is ignored as a whole', () => {
    const md = read(path.join(ROOT, 'skills/orch/SKILL.md'));
    const quick = firstBashBlock(section(md, 'Quick Start')).map((l) => l.text);
    const typical = firstBashBlock(section(md, 'Typical Commands')).map((l) => l.text);
    expect(quick.every(isSetupLine)).toBe(true);
    expect(quick.map((l) => l.split('=')[0])).toEqual(expect.arrayContaining(['SKILL_DIR', 'ORCH', 'BRIEF', 'INBOX', 'DB']));
    expect(typical.slice(0, quick.length)).toEqual(quick);
    expect(quick).toContain("echo '*' > .orch/.gitignore");
    expect(quick).toContain('DB="$PWD/.orch/coord.db"');
  });

  it('the line checker itself rejects unknown commands, unknown flags and stray arguments', () => {
    expect(parseInvocation('./assets/orch --db ./c.db --json status --run R')!.problems).toEqual([]);
    expect(parseInvocation('./assets/orch --db ./c.db --json statuss --run R')!.problems.join()).toMatch(/no such command/);
    expect(parseInvocation('./assets/orch --db ./c.db --json run nope --run R')!.problems.join()).toMatch(/no such command/);
    expect(parseInvocation('./assets/orch --db ./c.db --json dispatch --run R --task T --mode code')!.problems.join()).toMatch(/--mode is not/);
    expect(parseInvocation('./assets/inbox --db ./c.db --json claim --agent w extra')!.problems.join()).toMatch(/stray argument/);
    expect(parseInvocation('./assets/orch --json ready --run R')!.problems.join()).toMatch(/no --db/);
    expect(parseInvocation('./assets/orch-worker-brief --db x --dispatch-json d.json --inbox')!.problems.join()).toMatch(/needs a value/);
    expect(parseInvocation('ls -la')).toBeNull();
    expect(() => shellWords('./assets/orch --db $HOME/c.db status')).toThrow(/not supported/);
    expect(() => shellWords('"$ORCH" --db "$(pwd)/c.db" status')).toThrow(/not supported/);
    expect(shellWords('"$ORCH" --db "$DB" --json status > .orch/s.json')).toEqual(['$ORCH', '--db', '$DB', '--json', 'status', '>', '.orch/s.json']);
    expect(parseInvocation('"$ORCH" --db "$DB" --json status --run R')!.problems).toEqual([]);
    expect(parseInvocation('"$BRIEF" --db "$DB" --dispatch-json .orch/d.json --format json')!.problems).toEqual([]);
    expect(isSetupLine('DB="$PWD/.orch/coord.db"')).toBe(true);
    expect(isSetupLine('rm -rf .orch')).toBe(false);
    expect(shellWords(`a --b "x \\"y\\"" --c '{"k":1}' > out.json`)).toEqual(['a', '--b', 'x "y"', '--c', '{"k":1}', '>', 'out.json']);
  });

  it('the worker-brief template matches what orch-worker-brief renders, line for line', () => {
    const template = read(path.join(ROOT, 'skills/orch/references/worker-brief-template.md'));
    const block = /```text\n([\s\S]*?)\n```/.exec(template)![1]!.split('\n');
    const c = copySkills();
    const db = path.join(c.work, 'coord.db');
    tool(c, 'inbox', db, ['init']);
    tool(c, 'orch', db, ['run', 'init', '--run', 'r', '--goal', 'g', '--summary', 's']);
    tool(c, 'orch', db, ['task', 'add', '--run', 'r', '--task', 'A', '--title', 'analysis', '--summary', 'sum', '--default-to', 'w']);
    tool(c, 'orch', db, ['task', 'add', '--run', 'r', '--task', 'C', '--title', 'code', '--default-to', 'w']);
    const briefs: string[] = [];
    for (const [task, mode] of [
      ['A', 'analysis'],
      ['C', 'code'],
    ] as const) {
      const d = runBin(c.bins.orch, ['--db', db, '--json', 'dispatch', '--run', 'r', '--task', task, '--execution-mode', mode, '--body', 'do it'], c.repo);
      expect(d.code, d.stderr).toBe(0);
      fs.writeFileSync(path.join(c.work, `${task}.json`), d.stdout);
      const b = runBin(c.bins['orch-worker-brief'], ['--db', db, '--dispatch-json', path.join(c.work, `${task}.json`)], c.work);
      expect(b.code, b.stderr).toBe(0);
      briefs.push(b.stdout);
    }
    // Each template line that is not just a placeholder must match a rendered line, in order;
    // {placeholders} match anything.
    for (const brief of briefs) {
      const rendered = brief.split('\n');
      let at = 0;
      for (const t of block) {
        if (t === '' || /^\{[^}]*\}$/.test(t) || /^\{[^}]*\}.*\}$/.test(t)) continue;
        const re = new RegExp(
          `^${t
            .split(/\{[^}]*\}/)
            .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        );
        const found = rendered.findIndex((r, i) => i >= at && re.test(r));
        expect(found, `template line not rendered (in order): ${t}`).toBeGreaterThanOrEqual(0);
        at = found + 1;
      }
    }
  });
});

describe('the skills copied outside the repository (slow)', () => {
  it('run the seed skill\'s "Typical Commands" as written, with workers played through the copied inbox', () => {
    const c = copySkills();
    const lines = seedTypicalCommands();
    expect(lines).toHaveLength(16);
    const db = path.join(c.repo, 'coord.db');
    const mainSha = git(c.repo, 'rev-parse', 'main');
    const briefOf = (n: string): string => read(path.join(c.work, `${n}-worker-brief.txt`));
    const dispatchOf = (n: string): any => JSON.parse(read(path.join(c.work, `${n}-dispatch.json`)));
    const w = (args: string[]): any => tool(c, 'inbox', db, args);
    let t2: { thread: string; lease: string; question: number } | null = null;
    const done: string[] = [];

    for (const line of lines) {
      const r = runLine(c, line, c.repo);
      const o = r.out;
      const cmd = `${r.inv.tool} ${r.inv.command.join(' ')}`.trim();
      // The seed's retry names task T7a, which its sequence never adds. Our choice: run the line
      // as written and show it is refused as not found (exit 3, nothing written); then add T7a,
      // let its worker fail, and run the very same line again to show retry working.
      if (cmd === 'orch retry') {
        expect(r.code).toBe(3);
        expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'NOT_FOUND', details: { run: RUN, task: 'T7a' } });
        tool(c, 'orch', db, ['task', 'add', '--run', RUN, '--task', 'T7a', '--title', 'Contract', '--default-to', 'api-worker'], c.repo);
        const d = tool(c, 'orch', db, ['dispatch', '--run', RUN, '--task', 'T7a', '--execution-mode', 'analysis', '--body', 'Check the API contract.'], c.repo);
        const claim = w(['claim', '--agent', 'api-worker', '--thread', d.attempt.thread_id]);
        w(['fail', '--thread', d.attempt.thread_id, '--lease', claim.lease.token, '--body', 'The contract does not match the schema.']);
        const again = runLine(c, line, c.repo);
        expect(again.code, again.stderr).toBe(0);
        expect(again.out.attempt).toMatchObject({ task: 'T7a', number: 2, assigned_to: 'backend-worker', state: 'dispatched' });
        expect(again.out.attempt.body).toBe('Retry after fixing the contract mismatch.');
        const claim2 = w(['claim', '--agent', 'backend-worker', '--thread', again.out.attempt.thread_id]);
        w(['result', '--thread', again.out.attempt.thread_id, '--lease', claim2.lease.token, '--body', 'Contract fixed.']);
        done.push(line);
        continue;
      }
      expect(r.code, `${line}\n${r.stderr}`).toBe(0);
      expect(r.stderr).toBe('');
      switch (cmd) {
        case 'inbox init':
          expect(o.schema_version).toEqual({ inbox: 4 });
          break;
        case 'orch run init':
          expect(o.run).toMatchObject({ id: RUN, goal: 'Build blog MVP', summary: 'Public blog plus admin CRUD', state: 'active' });
          break;
        case 'orch task add':
          expect(['T1', 'T2']).toContain(o.task.id);
          expect(o.task.state).toBe('pending');
          break;
        case 'orch dep add':
          expect(o).toMatchObject({ task: 'T2', depends_on: 'T1', created: true });
          break;
        case 'orch ready':
          expect(o.tasks.map((t: any) => t.id)).toEqual(['T1']);
          break;
        case 'orch dispatch': {
          const a = o.attempt;
          if (a.task === 'T1') {
            expect(a).toMatchObject({ number: 1, execution_mode: 'code', assigned_to: 'foundation-worker', base_ref: 'main', base_commit: mainSha });
            expect(a.branch).toBe(`orch/${RUN}/T1/1`);
            expect(a.worktree_path).toBe(path.join(c.repo, '.orch/worktrees', RUN, 'T1', '1'));
            expect(a.body).toBe(read(path.join(c.repo, 'tasks/t1.md')));
            expect(git(a.worktree_path, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe(a.branch);
          } else {
            expect(a).toMatchObject({ task: 'T2', number: 1, execution_mode: 'analysis', assigned_to: 'qa-worker', worktree_path: null });
          }
          break;
        }
        case 'orch-worker-brief': {
          const n = r.inv.args.some((x) => x.includes('t1-dispatch')) ? 't1' : 't2';
          const d = dispatchOf(n);
          const brief = briefOf(n);
          expect(brief).toContain(`Your thread is ${d.attempt.thread_id}.`);
          expect(brief).toContain(`claim --agent ${d.attempt.assigned_to} --thread ${d.attempt.thread_id}`);
          // The brief points at the copied inbox beside the copied orch skill, and the db by absolute path.
          expect(brief).toContain(`${c.bins.inbox} --db ${db} --json`);
          if (n === 't1') {
            expect(brief).toContain(`cd ${d.attempt.worktree_path}`);
            expect(brief).toContain(`branch orch/${RUN}/T1/1`);
            // T1's worker: claim, progress, commit in its worktree, result.
            const claim = w(['claim', '--agent', 'foundation-worker', '--thread', d.attempt.thread_id]);
            expect(claim.claimed).toBe(true);
            expect(claim.lease.seconds).toBe(900);
            const token = claim.lease.token;
            w(['progress', '--thread', d.attempt.thread_id, '--lease', token, '--body', 'Skeleton in progress']);
            fs.writeFileSync(path.join(d.attempt.worktree_path, 'index.html'), '<h1>blog</h1>\n');
            git(d.attempt.worktree_path, 'add', 'index.html');
            git(d.attempt.worktree_path, 'commit', '-q', '-m', 'App skeleton');
            w(['result', '--thread', d.attempt.thread_id, '--lease', token, '--body', 'Skeleton committed on the attempt branch.']);
          } else {
            expect(brief).toContain('This is an analysis task');
            // T2's worker claims and asks the question the seed's `answer` line answers.
            const claim = w(['claim', '--agent', 'qa-worker', '--thread', d.attempt.thread_id]);
            const ask = w(['ask', '--thread', d.attempt.thread_id, '--lease', claim.lease.token, '--body', 'Which post states does the MVP support?']);
            expect(ask.thread.state).toBe('blocked');
            t2 = { thread: d.attempt.thread_id, lease: claim.lease.token, question: ask.message.id };
          }
          break;
        }
        case 'orch status': {
          const byId = Object.fromEntries(o.tasks.map((t: any) => [t.id, t]));
          expect(byId.T1.state).toBe('done');
          expect(byId.T1.latest_attempt.worktree_exists).toBe(true);
          expect(byId.T2.state).toBe('blocked');
          expect(byId.T2.latest_message.kind).toBe('question');
          expect(o.last_event).toBeGreaterThan(0);
          break;
        }
        case 'orch wait':
          expect(o.timed_out).toBe(false);
          expect(o.events.map((e: any) => `${e.task}:${e.type}`)).toEqual(['T1:task_done', 'T2:task_blocked']);
          break;
        case 'orch blocked':
          expect(o.tasks).toHaveLength(1);
          expect(o.tasks[0].task.id).toBe('T2');
          expect(o.tasks[0].question).toMatchObject({ message_id: t2!.question, body: 'Which post states does the MVP support?', asked_by: 'qa-worker' });
          break;
        case 'orch answer': {
          expect(o.message).toMatchObject({ kind: 'answer', author: 'leader', body: 'MVP supports draft and published only.' });
          expect(o.task.state).toBe('running');
          // T2's worker wakes up with the answer, then posts its result.
          const got = w(['wait', '--thread', t2!.thread, '--lease', t2!.lease, '--after-message', String(t2!.question), '--timeout-seconds', '30']);
          expect(got.timed_out).toBe(false);
          expect(got.messages.map((m: any) => m.body)).toEqual(['MVP supports draft and published only.']);
          w(['result', '--thread', t2!.thread, '--lease', t2!.lease, '--body', 'Root cause: a race in the cache warm-up.']);
          break;
        }
        case 'orch cleanup': {
          expect(o).toMatchObject({ run: RUN, dry_run: false, orphans: [] });
          const t1 = o.attempts.find((a: any) => a.task === 'T1');
          // The seed never merges T1: its worktree goes, its unmerged branch is kept and says why.
          expect(t1).toMatchObject({ removed: true, branch_deleted: false, unmerged_commits: 1 });
          expect(t1.note).toMatch(/kept branch/);
          expect(fs.existsSync(t1.worktree_path)).toBe(false);
          expect(git(c.repo, 'branch', '--list', t1.branch)).toContain(t1.branch);
          expect(o.attempts.filter((a: any) => a.execution_mode === 'analysis').every((a: any) => a.removed === false)).toBe(true);
          break;
        }
        default:
          throw new Error(`unexpected seed command: ${line}`);
      }
      done.push(line);
    }
    expect(done).toEqual(lines);
    const status = tool(c, 'orch', db, ['status', '--run', RUN], c.repo);
    expect(status.run.state).toBe('done');
    expect(status.tasks.map((t: any) => `${t.id}:${t.state}`)).toEqual(['T1:done', 'T2:done', 'T7a:done']);
  });

  it('run our orch "Typical Commands" as written, pasted line by line into bash in the repository (code merged, question answered, failure retried, reassigned), leaving git status clean', () => {
    const c = copySkills();
    // Only what the block itself makes may appear in the repository.
    fs.rmSync(path.join(c.repo, 'tasks'), { recursive: true, force: true });
    const lines = firstBashBlock(section(read(path.join(c.orchSkill, 'SKILL.md')), 'Typical Commands'));
    // The one thing a reader fills in before pasting: where this skill is.
    expect(lines[0]!.text).toBe('SKILL_DIR=/path/to/skills/orch');
    const db = path.join(c.repo, '.orch/coord.db');
    const w = (args: string[]): any => tool(c, 'inbox', db, args);
    const values: Record<string, string> = {};
    const assignments: string[] = [];
    const workers: Record<string, { thread: string; lease: string; question?: number }> = {};
    let waits = 0;
    let t1Worktree = '';
    let t1Branch = '';
    let retryAttempt = '';
    let cleaned = false;

    for (const l of lines) {
      let text = l.text.replace('=/path/to/skills/orch', `=${c.orchSkill}`);
      for (const [k, v] of Object.entries(values)) text = text.replace(new RegExp(`\\b${k}\\b`, 'g'), v);
      // Assignments stay in force for the lines after them, as in one shell session.
      if (/^[A-Z_]+=/.test(text)) {
        assignments.push(text);
        continue;
      }
      const r = spawnSync('bash', ['-euc', [...assignments, text].join('\n')], {
        cwd: c.repo,
        encoding: 'utf8',
        env: cleanEnv(),
        timeout: 30_000,
        killSignal: 'SIGKILL',
      });
      expect(r.status, `${l.text}\n${r.stderr}`).toBe(0);
      if (isSetupLine(l.text)) continue;
      const inv = parseInvocation(l.text)!;
      const target = inv.stdoutTo ? path.resolve(c.repo, inv.stdoutTo) : null;
      const printed = target ? read(target) : r.stdout;
      let o: any = null;
      try {
        o = JSON.parse(printed);
      } catch {
        o = null;
      }
      if (o && typeof o.last_event === 'number') values.LAST_EVENT = String(o.last_event);
      const cmd = `${inv.tool} ${inv.command.join(' ')}`.trim();
      const file = target ? path.basename(target) : '';
      if (cmd === 'orch dispatch' && o.attempt.task === 'T1') {
        t1Worktree = o.attempt.worktree_path;
        t1Branch = o.attempt.branch;
        expect(o.attempt.repo_path).toBe(c.repo);
        expect(t1Worktree).toBe(path.join(c.repo, '.orch/worktrees', RUN, 'T1', '1'));
        expect(o.attempt.body).toBe('Create the app skeleton: an index page and the database wiring.\n');
      }
      if (cmd === 'orch-worker-brief') {
        const src = JSON.parse(read(path.resolve(c.repo, inv.args[inv.args.indexOf('--dispatch-json') + 1]!)));
        const brief = printed;
        const a = src.attempt;
        expect(brief).toContain(`Your thread is ${a.thread_id}.`);
        expect(brief).toContain(`You are ${a.assigned_to},`);
        // The brief names the copied inbox and the database under .orch/ by absolute path.
        expect(brief).toContain(`    ${c.bins.inbox} --db ${db} --json claim --agent ${a.assigned_to} --thread ${a.thread_id}`);
        if (file === 't1-brief.txt') {
          // T1's worker commits in its worktree and reports from the file the brief names beside it.
          const claim = w(['claim', '--agent', a.assigned_to, '--thread', a.thread_id]);
          w(['progress', '--thread', a.thread_id, '--lease', claim.lease.token, '--body', 'Writing the skeleton']);
          fs.writeFileSync(path.join(a.worktree_path, 'app.js'), 'console.log("blog");\n');
          git(a.worktree_path, 'add', 'app.js');
          git(a.worktree_path, 'commit', '-q', '-m', 'Skeleton');
          expect(brief).toContain(`--body-file ${a.worktree_path}.report.md`);
          fs.writeFileSync(`${a.worktree_path}.report.md`, 'Added app.js.\n');
          w(['result', '--thread', a.thread_id, '--lease', claim.lease.token, '--body-file', `${a.worktree_path}.report.md`]);
        } else if (file === 't2-brief.txt') {
          const claim = w(['claim', '--agent', a.assigned_to, '--thread', a.thread_id]);
          const ask = w(['ask', '--thread', a.thread_id, '--lease', claim.lease.token, '--body', 'Which post states?']);
          workers.T2 = { thread: a.thread_id, lease: claim.lease.token, question: ask.message.id };
        } else if (file === 't2-retry-brief.txt') {
          // The retry's worker claims, then stalls.
          const claim = w(['claim', '--agent', a.assigned_to, '--thread', a.thread_id]);
          workers.retry = { thread: a.thread_id, lease: claim.lease.token };
        } else if (file === 't2-reassign-brief.txt') {
          // The fenced retry worker's next write is refused: lease lost.
          const stale = runBin(
            c.bins.inbox,
            ['--db', db, '--json', 'progress', '--thread', workers.retry!.thread, '--lease', workers.retry!.lease, '--body', 'still here'],
            c.work,
          );
          expect(stale.code).toBe(5);
          expect(JSON.parse(stale.stderr).error.code).toBe('LEASE_LOST');
          const claim = w(['claim', '--agent', 'qa-worker-2', '--thread', a.thread_id]);
          w(['result', '--thread', a.thread_id, '--lease', claim.lease.token, '--body', 'Root cause: the cache warm-up race.']);
        } else {
          throw new Error(`unexpected brief file ${file}`);
        }
      }
      switch (cmd) {
        case 'orch wait':
          waits++;
          expect(o.timed_out).toBe(false);
          expect(o.events.map((e: any) => `${e.task}:${e.type}`)).toEqual(
            [['T1:task_done'], ['T2:task_blocked'], ['T2:task_failed'], ['T2:task_done', 'null:run_done']][waits - 1],
          );
          break;
        case 'orch diff':
          expect(o.commits.map((x: any) => x.subject)).toEqual(['Skeleton']);
          expect(o.files).toEqual([{ path: 'app.js', additions: 1, deletions: 0 }]);
          expect(o.uncommitted).toEqual([]);
          break;
        case 'orch merge':
          expect(o).toMatchObject({ into: 'main', merged: true });
          expect(read(path.join(c.repo, 'app.js'))).toBe('console.log("blog");\n');
          break;
        case 'orch ready':
          if (t1Branch) expect(o.tasks.map((t: any) => t.id)).toEqual(['T2']);
          break;
        case 'orch answer': {
          const t2 = workers.T2!;
          const got = w(['wait', '--thread', t2.thread, '--lease', t2.lease, '--after-message', String(t2.question), '--timeout-seconds', '30']);
          expect(got.messages[0]).toMatchObject({ kind: 'answer', body: 'MVP supports draft and published only.' });
          w(['fail', '--thread', t2.thread, '--lease', t2.lease, '--body', 'The CI logs are not available.']);
          break;
        }
        case 'orch task show':
          expect(o.task.state).toBe('failed');
          expect(o.attempts.map((a: any) => a.state)).toEqual(['failed']);
          break;
        case 'orch retry':
          expect(o.attempt).toMatchObject({
            task: 'T2',
            number: 2,
            assigned_to: 'qa-worker',
            execution_mode: 'analysis',
            body: 'Retry with the logs in ci/logs.',
          });
          retryAttempt = o.attempt.id;
          break;
        case 'orch reassign':
          expect(o.attempt).toMatchObject({ task: 'T2', number: 3, assigned_to: 'qa-worker-2', body: 'Retry with the logs in ci/logs.' });
          expect(o.cancelled_attempt.id).toBe(retryAttempt);
          break;
        case 'orch status':
          if (waits === 4) {
            expect(o.run.state).toBe('done');
            expect(o.tasks.map((t: any) => `${t.id}:${t.state}`)).toEqual(['T1:done', 'T2:done']);
          }
          break;
        case 'orch cleanup': {
          const t1 = o.attempts.find((a: any) => a.task === 'T1');
          if (o.dry_run) {
            expect(fs.existsSync(t1Worktree)).toBe(true);
          } else {
            // Merged, so both the worktree and the branch go.
            expect(t1).toMatchObject({ removed: true, branch_deleted: true });
            expect(fs.existsSync(t1Worktree)).toBe(false);
            expect(git(c.repo, 'branch', '--list', t1Branch)).toBe('');
            cleaned = true;
          }
          break;
        }
      }
    }
    expect(cleaned).toBe(true);
    expect(waits).toBe(4);
    // The database, the saved outputs, the briefs and the worktrees all lived in .orch/, which git
    // ignores as a whole: the repository holds only the merged work, and git status is clean.
    expect(fs.existsSync(db)).toBe(true);
    expect(git(c.repo, 'status', '--porcelain')).toBe('');
    expect(git(c.repo, 'ls-files')).toBe('README.md\napp.js');
    // About forty processes in a row: on a loaded machine that outlasts the default minute.
  }, 180_000);

  it('run our inbox "Typical Commands" literally from the copied inbox skill directory', () => {
    const c = copySkills();
    const db = path.join(c.work, 'coord.db');
    tool(c, 'inbox', db, ['init']);
    tool(c, 'orch', db, ['run', 'init', '--run', 'r', '--goal', 'Drop the v1 API']);
    tool(c, 'orch', db, ['task', 'add', '--run', 'r', '--task', 'A', '--title', 'Decide on v1', '--default-to', 'api-worker']);
    const d = tool(c, 'orch', db, ['dispatch', '--run', 'r', '--task', 'A', '--execution-mode', 'analysis', '--body', 'Find what uses v1.']);
    const values: Record<string, string> = { DB_PATH: db, AGENT: 'api-worker', THREAD_ID: d.attempt.thread_id };
    fs.writeFileSync(path.join(c.inboxSkill, 'report.md'), 'Nothing uses v1 any more.\n');
    const typical = firstBashBlock(section(read(path.join(c.inboxSkill, 'SKILL.md')), 'Typical Commands'));
    expect(typical.map((l) => shellWords(l.text)[4])).toEqual(['claim', 'progress', 'heartbeat', 'ask', 'wait', 'progress', 'result']);
    for (const l of typical) {
      const sub = shellWords(l.text)[4];
      if (sub === 'wait') tool(c, 'orch', db, ['answer', '--run', 'r', '--task', 'A', '--body', 'Drop it.', '--payload-json', '{"decision": "drop"}']);
      // Literally `./assets/inbox ...` with the copied skill directory as the working directory.
      const words = shellWords(l.text).map((x) => Object.entries(values).reduce((s, [k, v]) => s.replace(new RegExp(`\\b${k}\\b`, 'g'), v), x));
      const r = runBin(words[0]!, words.slice(1), c.inboxSkill);
      expect(r.code, `${l.text}\n${r.stderr}`).toBe(0);
      const o = JSON.parse(r.stdout);
      if (sub === 'claim') values.LEASE = o.lease.token;
      if (sub === 'ask') values.QUESTION_ID = String(o.message.id);
      if (sub === 'wait') expect(o.messages[0]).toMatchObject({ kind: 'answer', body: 'Drop it.', payload: { decision: 'drop' } });
      if (sub === 'result') expect(o.thread.state).toBe('done');
    }
    const task = tool(c, 'orch', db, ['task', 'show', '--run', 'r', '--task', 'A']);
    expect(task.task.state).toBe('done');
    expect(task.attempts[0].result).toEqual({ body: 'Nothing uses v1 any more.\n', payload: { tests_fixed: 4 } });
  });

  it("need no node_modules: PATH holding only node, NODE_PATH unset, cwd outside the repository; the brief's commands work as printed", () => {
    const c = copySkills();
    // Nothing on the way up from the copy may provide node_modules.
    for (let d = c.dir; ; d = path.dirname(d)) {
      expect(fs.existsSync(path.join(d, 'node_modules')), d).toBe(false);
      if (path.dirname(d) === d) break;
    }
    expect(path.relative(ROOT, c.dir).startsWith('..')).toBe(true);
    // Each copied asset has the native SQLite module beside it, and is executable.
    for (const bin of Object.values(c.bins)) {
      expect(fs.statSync(bin).mode & 0o111, bin).not.toBe(0);
      expect(fs.existsSync(path.join(path.dirname(bin), 'better_sqlite3.node')), bin).toBe(true);
    }
    const onlyNode = path.join(c.dir, 'bin');
    fs.mkdirSync(onlyNode);
    fs.symlinkSync(process.execPath, path.join(onlyNode, 'node'));
    const env = cleanEnv(onlyNode);
    expect(env.NODE_PATH).toBeUndefined();
    const run = (t: Tool, args: string[]): any => {
      const r = runBin(c.bins[t], args, c.work, env);
      expect(r.code, `${t} ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.stdout.trimStart().startsWith('{') ? JSON.parse(r.stdout) : r.stdout;
    };
    for (const t of ['orch', 'inbox', 'orch-worker-brief'] as const) expect(run(t, ['--help'])).toContain('Exit codes');
    const db = 'coord.db';
    expect(run('inbox', ['--db', db, '--json', 'init']).schema_version).toEqual({ inbox: 4 });
    run('orch', ['--db', db, '--json', 'run', 'init', '--run', 'r', '--goal', 'portable']);
    run('orch', ['--db', db, '--json', 'task', 'add', '--run', 'r', '--task', 'A', '--title', 'a', '--default-to', 'w']);
    const d = run('orch', ['--db', db, '--json', 'dispatch', '--run', 'r', '--task', 'A', '--execution-mode', 'analysis', '--body', 'Summarise.']);
    fs.writeFileSync(path.join(c.work, 'd.json'), JSON.stringify(d));
    const brief: string = run('orch-worker-brief', ['--db', db, '--dispatch-json', 'd.json']);
    const json = run('orch-worker-brief', ['--db', db, '--dispatch-json', 'd.json', '--format', 'json']);
    expect(json.inbox).toBe(c.bins.inbox);
    expect(json.db).toBe(path.join(c.work, db));
    // Run the claim, progress and result lines exactly as the brief prints them.
    const cmdLine = (sub: string): string[] => {
      const line = brief.split('\n').find((x) => x.startsWith('    ') && x.includes(` --json ${sub} `));
      expect(line, sub).toBeDefined();
      return shellWords(line!.trim());
    };
    const exec = (words: string[]): any => {
      const r = runBin(words[0]!, words.slice(1), c.dir, env);
      expect(r.code, `${words.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout);
    };
    const claim = exec(cmdLine('claim'));
    expect(claim.claimed).toBe(true);
    const lease = claim.lease.token;
    exec(cmdLine('progress').map((x) => (x === 'LEASE' ? lease : x)));
    fs.writeFileSync(path.join(c.dir, 'report.md'), 'Summary.\n');
    expect(exec(cmdLine('result').map((x) => (x === 'LEASE' ? lease : x))).thread.state).toBe('done');
    const status = run('orch', ['--db', db, '--json', 'status', '--run', 'r']);
    expect(status.run.state).toBe('done');
    expect(status.tasks[0].latest_attempt.result.body).toBe('Summary.\n');
  });
});
