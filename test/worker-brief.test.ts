import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ManualClock, shellWord } from '@orch/store';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderBrief } from '../packages/worker-brief/src/index.ts';
import { ORCH_SKILL_BIN, ROOT, fileTempDir, git, initDb, initGitRepo, json, ok, orch, orchOk, rows, snapshot, tempDir, type CliRun } from './helpers.ts';
import { dbExists, freshDb, rawSql, relativeDb, tableNames } from './engine.ts';

/**
 * orch-worker-brief end to end: the bundled skill asset and the package build print the worker's
 * prompt orch rendered at dispatch into the attempt's task message, found from a saved dispatch
 * output plus the database. Golden files pin the exact text for an analysis and a code-mode
 * dispatch (temporary paths, generated ids and commit shas replaced by placeholders first). Set
 * UPDATE_GOLDEN=1 to rewrite them after an intended change, and review the diff.
 */

const BRIEF_SKILL = path.join(ROOT, 'skills/orch/assets/orch-worker-brief');
const BRIEF_DIST = path.join(ROOT, 'packages/worker-brief/dist/orch-worker-brief.cjs');
const SKILL_INBOX = path.join(ROOT, 'skills/inbox/assets/inbox');
const DIST_INBOX = path.join(ROOT, 'packages/inbox/dist/inbox.cjs');
const GOLDEN = path.join(ROOT, 'test/golden');
const RUN = 'blog_mvp_001';

/** Runs the orch skill asset (which points the briefs it renders at the inbox skill beside it) and expects success. */
function skillOrchOk(db: string, args: string[], options: { cwd?: string } = {}): any {
  const r = orch(['--db', db, '--json', ...args], { ...options, bin: ORCH_SKILL_BIN });
  if (r.code !== 0) throw new Error(`orch ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return json(r);
}

/** Runs the brief CLI: the skill asset (an executable) or the package build (through node). */
function brief(args: string[], options: { cwd?: string; dist?: boolean } = {}): CliRun {
  const [cmd, pre] = options.dist ? [process.execPath, [BRIEF_DIST]] : [BRIEF_SKILL, []];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: options.cwd ?? ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Fixture {
  dir: string;
  db: string;
  repo: string;
  /** Saved dispatch outputs. */
  analysisJson: string;
  codeJson: string;
  analysis: any;
  code: any;
}

/**
 * One database with run blog_mvp_001 and two tasks dispatched by the orch skill asset: T1 in code
 * mode (a worktree of a fresh repository, body from a file, no acceptance criteria) and T2 in
 * analysis mode (acceptance criteria, a multi-line body with characters a shell would care about).
 */
function fixture(makeDir: (prefix: string) => string = tempDir): Fixture {
  const dir = fs.realpathSync(makeDir('orch-brief-db-'));
  const db = freshDb(dir);
  ok(db, ['init']);
  const repo = initGitRepo(makeDir('orch-brief-repo-'), { 'README.md': '# blog\n' }, { user: ['Brief Test', 'brief@example.com'] });
  fs.mkdirSync(path.join(repo, 'tasks'));
  fs.writeFileSync(path.join(repo, 'tasks/t1.md'), 'Create the app skeleton.\n\n- an index page\n- the database wiring\n');

  orchOk(db, ['run', 'init', '--run', RUN, '--goal', 'Build blog MVP', '--summary', 'Public blog plus admin CRUD']);
  orchOk(db, [
    'task',
    'add',
    '--run',
    RUN,
    '--task',
    'T1',
    '--title',
    'Project skeleton',
    '--summary',
    'Initialize app structure and database wiring',
    '--default-to',
    'foundation-worker',
  ]);
  orchOk(db, [
    'task',
    'add',
    '--run',
    RUN,
    '--task',
    'T2',
    '--title',
    'Summarize flaky tests',
    '--summary',
    'Read logs and report next steps',
    '--default-to',
    'qa-worker',
    '--acceptance-json',
    '{"kind":"analysis","must_cover":["root cause","next steps"]}',
  ]);
  const code = skillOrchOk(
    db,
    [
      'dispatch',
      '--run',
      RUN,
      '--task',
      'T1',
      '--execution-mode',
      'code',
      '--to',
      'foundation-worker',
      '--base-ref',
      'main',
      '--workspace-root',
      '.orch/worktrees',
      '--body-file',
      'tasks/t1.md',
    ],
    { cwd: repo },
  );
  const analysis = skillOrchOk(db, [
    'dispatch',
    '--run',
    RUN,
    '--task',
    'T2',
    '--execution-mode',
    'analysis',
    '--to',
    'qa-worker',
    '--body',
    'Read the failing test logs and summarize the root cause.\nQuote the "flaky" ones; ignore $HOME and `tmp`.',
  ]);
  const analysisJson = path.join(dir, 't2-dispatch.json');
  const codeJson = path.join(dir, 't1-dispatch.json');
  fs.writeFileSync(analysisJson, `${JSON.stringify(analysis, null, 2)}\n`);
  fs.writeFileSync(codeJson, `${JSON.stringify(code, null, 2)}\n`);
  return { dir, db, repo, analysisJson, codeJson, analysis, code };
}

/** Replaces what differs between runs (temp paths, generated ids, commit shas) with placeholders. */
function normalise(text: string, f: Fixture): string {
  const swaps: [string, string][] = [
    [shellWord(f.db), '<DB>'],
    [f.db, '<DB>'],
    [f.repo, '<REPO>'],
    [f.dir, '<TMP>'],
    [ROOT, '<ROOT>'],
  ];
  let out = text;
  for (const [from, to] of swaps) out = out.split(from).join(to);
  return out
    .replace(/\bth_[A-Za-z0-9_-]+/g, '<THREAD_ID>')
    .replace(/\bat_[A-Za-z0-9_-]+/g, '<ATTEMPT_ID>')
    .replace(/\b[0-9a-f]{40}\b/g, '<SHA>');
}

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1' || !fs.existsSync(file)) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, actual);
  }
  expect(actual).toBe(fs.readFileSync(file, 'utf8'));
}

let edits = 0;
function edited(f: Fixture, change: (d: any) => void): string {
  const d = structuredClone(f.analysis);
  change(d);
  const file = path.join(f.dir, `edited-${++edits}.json`);
  fs.writeFileSync(file, JSON.stringify(d));
  return file;
}

/** Expects a refusal: the exit code, nothing on stdout, one JSON error line, the database untouched. */
function refused(f: Fixture, args: string[], code: number, errorCode: string): any {
  const before = snapshot(f.db);
  const r = brief(['--db', f.db, '--json', ...args]);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  const err = JSON.parse(lines[0]!).error;
  expect(err.code).toBe(errorCode);
  expect(snapshot(f.db)).toEqual(before);
  return err;
}

/**
 * One fixture shared by the tests that only read it (every refusal is checked to leave the database
 * unchanged); tests that let workers write make their own.
 */
let shared: Fixture;
beforeAll(() => {
  // Worktrees live inside the repository directory, so removing it (after the file) removes them too.
  shared = fixture(fileTempDir);
});

describe('orch-worker-brief (slow)', () => {
  it('renders an analysis dispatch exactly as the golden file says (skill asset and package build agree)', () => {
    const f = shared;
    const r = brief(['--dispatch-json', f.analysisJson, '--db', f.db]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const text = r.stdout;
    expect(text).toContain(`Your thread is ${f.analysis.attempt.thread_id}.`);
    // The skill asset points the worker at the bundled inbox beside it, the database by absolute path.
    expect(text).toContain(`${SKILL_INBOX} --db ${shellWord(f.db)} --json claim --agent qa-worker --thread ${f.analysis.attempt.thread_id}`);
    golden('worker-brief-analysis.txt', normalise(text, f));

    // The package build prints the same stored brief; --inbox renders it again for another inbox command.
    const dist = brief(['--dispatch-json', f.analysisJson, '--db', f.db], { dist: true });
    expect(dist.code, dist.stderr).toBe(0);
    expect(dist.stdout).toBe(text);
    expect(brief(['--dispatch-json', f.analysisJson, '--db', f.db, '--inbox', DIST_INBOX], { dist: true }).stdout).toBe(
      text.split(SKILL_INBOX).join(DIST_INBOX),
    );
    expect(brief(['--dispatch-json', f.analysisJson, '--db', f.db, '--inbox', SKILL_INBOX], { dist: true }).stdout).toBe(text);
  });

  it('prints the brief stored in the task message at dispatch, not a new rendering', () => {
    const f = fixture();
    for (const d of [f.analysis, f.code]) {
      const stored = ok(f.db, ['show', '--thread', d.attempt.thread_id]).messages[0].payload.brief;
      expect(stored.inbox).toBe(SKILL_INBOX);
      expect(stored.db).toBe(f.db);
      const file = d === f.analysis ? f.analysisJson : f.codeJson;
      expect(brief(['--dispatch-json', file, '--db', f.db]).stdout).toBe(stored.text);
      expect(brief(['--dispatch-json', file, '--db', f.db], { dist: true }).stdout).toBe(stored.text);
    }
    // The package's orch points its briefs at the package's inbox build.
    orchOk(f.db, ['task', 'add', '--run', RUN, '--task', 'T3', '--title', 'Another', '--default-to', 'w3']);
    const d3 = orchOk(f.db, ['dispatch', '--run', RUN, '--task', 'T3', '--execution-mode', 'analysis', '--body', 'Look.']);
    fs.writeFileSync(path.join(f.dir, 't3.json'), JSON.stringify(d3));
    const r3 = json(brief(['--dispatch-json', path.join(f.dir, 't3.json'), '--db', f.db, '--format', 'json']));
    expect(r3.inbox).toBe(DIST_INBOX);
    expect(r3.brief).toContain(`${DIST_INBOX} --db ${shellWord(f.db)} --json claim --agent w3 --thread ${d3.attempt.thread_id}`);
  });

  it('an attempt dispatched before briefs were stored gets one rendered from its task message, with the default inbox', () => {
    const f = fixture();
    const stored = ok(f.db, ['show', '--thread', f.analysis.attempt.thread_id]).messages[0].payload.brief.text;
    const thread = f.analysis.attempt.thread_id;
    for (const m of rows<{ id: number; payload: string }>(f.db, 'select id, payload from inbox_messages where thread_id = ? and payload is not null', thread)) {
      const { brief: _, ...rest } = JSON.parse(m.payload) as Record<string, unknown>;
      rawSql(f.db, 'update inbox_messages set payload = ? where id = ?', [JSON.stringify(rest), m.id]);
    }
    const r = brief(['--dispatch-json', f.analysisJson, '--db', f.db]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(stored);
    const dist = brief(['--dispatch-json', f.analysisJson, '--db', f.db], { dist: true });
    expect(dist.stdout).toBe(stored.split(SKILL_INBOX).join(DIST_INBOX));
  });

  it('renders a code-mode dispatch exactly as the golden file says: worktree, branch, base ref and commit', () => {
    const f = shared;
    const a = f.code.attempt;
    const r = brief(['--dispatch-json', f.codeJson, '--db', f.db]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`    cd ${a.worktree_path}\n`);
    expect(a.worktree_path).toBe(path.join(f.repo, '.orch/worktrees', RUN, 'T1', '1'));
    expect(r.stdout).toContain(`branch orch/${RUN}/T1/1, created for this attempt from main at commit ${git(f.repo, 'rev-parse', 'main')}.`);
    expect(r.stdout).toContain(`Your thread is ${a.thread_id}.`);
    golden('worker-brief-code.txt', normalise(r.stdout, f));
  });

  it('is deterministic: the same input gives the same bytes, whatever the cwd and whatever the worker did since', () => {
    const f = fixture();
    for (const file of [f.analysisJson, f.codeJson]) {
      const first = brief(['--dispatch-json', file, '--db', f.db]);
      const second = brief(['--dispatch-json', file, '--db', f.db]);
      expect(first.code).toBe(0);
      expect(second.stdout).toBe(first.stdout);
      // A relative --db from another directory names the same file: same text.
      const rel = brief(['--dispatch-json', path.basename(file), '--db', relativeDb(f.db, f.dir)], { cwd: f.dir });
      expect(rel.stdout).toBe(first.stdout);
      const asJson = brief(['--dispatch-json', file, '--db', f.db, '--format', 'json']);
      expect(brief(['--dispatch-json', file, '--db', f.db, '--format', 'json']).stdout).toBe(asJson.stdout);
    }
    // The worker claims, reports progress and asks: the brief does not change.
    const before = brief(['--dispatch-json', f.analysisJson, '--db', f.db]).stdout;
    const t = f.analysis.attempt.thread_id;
    const claim = ok(f.db, ['claim', '--agent', 'qa-worker', '--thread', t]);
    ok(f.db, ['progress', '--thread', t, '--lease', claim.lease.token, '--body', 'reading logs']);
    ok(f.db, ['ask', '--thread', t, '--lease', claim.lease.token, '--body', 'Which job?']);
    orchOk(f.db, ['status', '--run', RUN]);
    expect(brief(['--dispatch-json', f.analysisJson, '--db', f.db]).stdout).toBe(before);
  });

  it('the library renderBrief (injected clock) gives the same text as the CLI', async () => {
    const f = shared;
    const cli = brief(['--dispatch-json', f.codeJson, '--db', f.db, '--inbox', 'inbox']).stdout;
    const input = { dispatch: f.code, dbPath: f.db, inbox: 'inbox', clock: new ManualClock() };
    const one = await renderBrief(input);
    const two = await renderBrief(input);
    expect(one.brief).toBe(cli);
    expect(two).toEqual(one);
    expect(one).toMatchObject({ worker: 'foundation-worker', run: RUN, task: 'T1', execution_mode: 'code', inbox: 'inbox', db: f.db });
  });

  it('--format json: the fields a launcher needs plus the brief itself', () => {
    const f = shared;
    for (const [file, d] of [
      [f.analysisJson, f.analysis],
      [f.codeJson, f.code],
    ] as const) {
      const r = brief(['--dispatch-json', file, '--db', f.db, '--format', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const out = json(r);
      expect(Object.keys(out).sort()).toEqual(
        ['attempt', 'brief', 'db', 'execution_mode', 'inbox', 'run', 'task', 'thread_id', 'worker', 'worktree_path'].sort(),
      );
      expect(out).toEqual({
        worker: d.attempt.assigned_to,
        run: RUN,
        task: d.task.id,
        attempt: d.attempt.id,
        thread_id: d.attempt.thread_id,
        execution_mode: d.attempt.execution_mode,
        worktree_path: d.attempt.worktree_path,
        db: f.db,
        inbox: SKILL_INBOX,
        brief: brief(['--dispatch-json', file, '--db', f.db]).stdout,
      });
    }
    expect(json(brief(['--dispatch-json', f.analysisJson, '--db', f.db, '--format', 'json'])).worktree_path).toBeNull();
  });

  it('--inbox PATH replaces the inbox command in every line, shell-quoted when it needs it', () => {
    const f = shared;
    const t = f.analysis.attempt.thread_id;
    const plain = brief(['--dispatch-json', f.analysisJson, '--db', f.db, '--inbox', '/opt/tools/inbox']);
    expect(plain.code, plain.stderr).toBe(0);
    const commandLines = plain.stdout.split('\n').filter((l) => l.startsWith('    /'));
    expect(commandLines.map((l) => l.split(' --json ')[1]!.split(' ')[0])).toEqual(['claim', 'progress', 'heartbeat', 'ask', 'wait', 'result', 'fail']);
    for (const l of commandLines) expect(l.startsWith(`    /opt/tools/inbox --db ${shellWord(f.db)} --json `)).toBe(true);
    expect(plain.stdout).not.toContain(SKILL_INBOX);
    expect(plain.stdout).toContain(`/opt/tools/inbox --db ${shellWord(f.db)} --json claim --agent qa-worker --thread ${t}`);
    expect(json(brief(['--dispatch-json', f.analysisJson, '--db', f.db, '--inbox', '/opt/tools/inbox', '--format', 'json'])).inbox).toBe('/opt/tools/inbox');
    const spaced = brief(['--dispatch-json', f.analysisJson, '--db', f.db, '--inbox', '/opt/my tools/inbox']);
    expect(spaced.stdout).toContain(`    '/opt/my tools/inbox' --db ${shellWord(f.db)} --json claim --agent qa-worker --thread ${t}`);
  });

  it('accepts retry and reassign outputs too, each naming its own attempt and thread', () => {
    const f = fixture();
    const t = f.analysis.attempt.thread_id;
    const claim = ok(f.db, ['claim', '--agent', 'qa-worker', '--thread', t]);
    ok(f.db, ['fail', '--thread', t, '--lease', claim.lease.token, '--body', 'no logs']);
    const retried = skillOrchOk(f.db, ['retry', '--run', RUN, '--task', 'T2']);
    fs.writeFileSync(path.join(f.dir, 'retry.json'), JSON.stringify(retried));
    const r = brief(['--dispatch-json', path.join(f.dir, 'retry.json'), '--db', f.db]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('# Your task: T2 (attempt 2)');
    expect(r.stdout).toContain(`Your thread is ${retried.attempt.thread_id}.`);
    expect(retried.attempt.thread_id).not.toBe(t);
    const moved = skillOrchOk(f.db, ['reassign', '--run', RUN, '--task', 'T2', '--to', 'qa-worker-2']);
    fs.writeFileSync(path.join(f.dir, 'reassign.json'), JSON.stringify(moved));
    const m = brief(['--dispatch-json', path.join(f.dir, 'reassign.json'), '--db', f.db]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout.startsWith(`You are qa-worker-2, a worker on run ${RUN}.`)).toBe(true);
    expect(m.stdout).toContain(`claim --agent qa-worker-2 --thread ${moved.attempt.thread_id}`);
  });

  describe('refuses bad input clearly and changes nothing', () => {
    it('a dispatch JSON that does not parse: exit 2', () => {
      const f = shared;
      const file = path.join(f.dir, 'broken.json');
      fs.writeFileSync(file, '{"run": {"id": "blog_mvp_001"},');
      const err = refused(f, ['--dispatch-json', file], 2, 'VALIDATION');
      expect(err.message).toMatch(/not valid JSON/);
      // Without --json: one line for a person.
      const text = brief(['--db', f.db, '--dispatch-json', file]);
      expect(text.code).toBe(2);
      expect(text.stderr).toMatch(/^orch-worker-brief: --dispatch-json .*broken\.json is not valid JSON/);
      expect(text.stderr.trim().split('\n')).toHaveLength(1);
    });

    it('a dispatch JSON that lacks fields: exit 2, every missing field named', () => {
      const f = shared;
      const noThread = edited(f, (d) => {
        delete d.attempt.thread_id;
        delete d.task;
      });
      const err = refused(f, ['--dispatch-json', noThread], 2, 'VALIDATION');
      expect(err.details.map((x: any) => x.path).sort()).toEqual(['attempt.thread_id', 'task']);
      expect(err.message).toMatch(/not the output of `orch --json dispatch`/);
      const wrongType = edited(f, (d) => {
        d.attempt.number = '1';
        d.attempt.execution_mode = 'review';
      });
      expect(
        refused(f, ['--dispatch-json', wrongType], 2, 'VALIDATION')
          .details.map((x: any) => x.path)
          .sort(),
      ).toEqual(['attempt.execution_mode', 'attempt.number']);
      const array = path.join(f.dir, 'array.json');
      fs.writeFileSync(array, '[]');
      expect(refused(f, ['--dispatch-json', array], 2, 'VALIDATION').details).toEqual([{ path: '(document)', message: expect.any(String) }]);
    });

    it('an attempt the database does not have: exit 3', () => {
      const f = shared;
      const file = edited(f, (d) => {
        d.attempt.id = 'at_not_in_this_db';
      });
      const err = refused(f, ['--dispatch-json', file], 3, 'NOT_FOUND');
      expect(err.message).toContain('at_not_in_this_db');
      expect(err.details).toEqual({ attempt: 'at_not_in_this_db' });
    });

    it('a dispatch JSON that disagrees with the database: exit 4, every mismatch named', () => {
      const f = shared;
      const file = edited(f, (d) => {
        d.attempt.assigned_to = 'someone-else';
        d.attempt.thread_id = f.code.attempt.thread_id;
      });
      const err = refused(f, ['--dispatch-json', file], 4, 'CONFLICT');
      expect(err.details.mismatches).toEqual([
        { field: 'attempt.thread_id', json: f.code.attempt.thread_id, database: f.analysis.attempt.thread_id },
        { field: 'attempt.assigned_to', json: 'someone-else', database: 'qa-worker' },
      ]);
      // The task of another attempt is a mismatch too.
      const otherTask = edited(f, (d) => {
        d.task.id = 'T1';
      });
      expect(refused(f, ['--dispatch-json', otherTask], 4, 'CONFLICT').details.mismatches).toEqual([{ field: 'task.id', json: 'T1', database: 'T2' }]);
    });

    it('no --dispatch-json, no --db, a missing file or an unknown --format: exit 2', () => {
      const f = shared;
      expect(refused(f, [], 2, 'VALIDATION').message).toMatch(/--dispatch-json/);
      expect(refused(f, ['--dispatch-json', path.join(f.dir, 'nope.json')], 2, 'VALIDATION').message).toMatch(/no such file/);
      expect(refused(f, ['--dispatch-json', f.analysisJson, '--format', 'yaml'], 2, 'VALIDATION').message).toMatch(/text or json/);
      expect(refused(f, ['--dispatch-json', f.analysisJson, '--bogus'], 2, 'USAGE').message).toMatch(/bogus/);
      const noDb = brief(['--json', '--dispatch-json', f.analysisJson]);
      expect(noDb.code).toBe(2);
      expect(JSON.parse(noDb.stderr).error.code).toBe('USAGE');
      expect(noDb.stderr).toMatch(/--db/);
    });

    it('the missing --db message points at `orch-worker-brief --help`', () => {
      const r = brief(['--dispatch-json', shared.analysisJson]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('see `orch-worker-brief --help`');
      expect(r.stderr).not.toContain('$0');
    });

    it('a database without orch tables: exit 3, and it still has none afterwards', () => {
      const f = shared;
      const { db } = initDb();
      const before = snapshot(db);
      const r = brief(['--db', db, '--json', '--dispatch-json', f.analysisJson]);
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'NOT_FOUND', details: { attempt: f.analysis.attempt.id } });
      expect(snapshot(db)).toEqual(before);
      expect(tableNames(db).filter((n) => n.includes('run'))).toEqual([]);
    });

    it('a database that does not exist: exit 6, and no file (on PostgreSQL, schema) is created', () => {
      const f = shared;
      const missing = freshDb(f.dir, 'missing.db');
      const r = brief(['--db', missing, '--json', '--dispatch-json', f.analysisJson]);
      expect(r.code).toBe(6);
      expect(JSON.parse(r.stderr).error.code).toBe('DB_MISSING');
      expect(dbExists(missing)).toBe(false);
    });
  });
});
