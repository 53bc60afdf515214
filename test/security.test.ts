import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  dirState,
  expectJsonError,
  fileTempDir,
  git,
  inbox,
  INBOX_BIN,
  initDb,
  json,
  newGitRepo,
  ok,
  orch,
  ORCH_BIN,
  orchOk,
  rows,
  snapshot,
  tempDir,
  type CliRun,
} from './helpers.ts';
import { dbExists, freshDb, rawSql, sqliteOnly, tableNames as listTables } from './engine.ts';

/**
 * Hostile input through the built CLIs (issue 8): ids and refs that try to escape the workspace
 * root or pass options to git, SQL metacharacters in every free-text field, foreign and stale
 * lease tokens on every worker command, and `--db` paths that are not an inbox database. Each is
 * refused cleanly (documented exit code, one JSON error line) and nothing is written anywhere:
 * not in the database, not in the repository, not outside the test's temporary directories.
 * (Plain bad ids, bad JSON and the basic --db cases are in cli-bad-input / orch-bad-input.)
 */

// ---------------------------------------------------------------------------------------------
// helpers

const makeRepo = (): string => newGitRepo('sec-repo-', { 'src/a.txt': 'one\n' });

/** Every path under `dir`, relative and sorted (symbolic links are listed, not followed). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel === '' ? name : path.join(rel, name);
      out.push(r);
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) walk(r);
    }
  };
  if (fs.existsSync(dir)) walk('');
  return out;
}

/** git's view of a repository: branches, worktrees, status, every file (the .git directory included). */
function repoState(repo: string) {
  return {
    branches: git(repo, 'for-each-ref', '--format=%(refname) %(objectname)'),
    worktrees: git(repo, 'worktree', 'list', '--porcelain'),
    status: git(repo, 'status', '--porcelain', '--untracked-files=all', '--ignored'),
    files: tree(repo).filter((f) => !/^\.git\/(index|logs|objects|ORIG_HEAD|FETCH_HEAD)/.test(f)),
  };
}

const sha256 = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** `--flag VALUE`, or `--flag=VALUE` when the value starts with "-" (else it is read as a flag). */
const flag = (name: string, value: string): string[] => (value.startsWith('-') ? [`--${name}=${value}`] : [`--${name}`, value]);

/** A path that must never come into existence: every injection attempt names it. */
function sentinel(): string {
  return path.join(fs.realpathSync(tempDir('sec-sentinel-')), 'pwned');
}

// ---------------------------------------------------------------------------------------------

describe('ids that try to escape or pass options (exit 2, nothing written) (slow)', () => {
  const pwned = path.join(os.tmpdir(), `orch-sec-pwned-${process.pid}`);
  /** Ids that would escape a path, be read as an option, or break a line; argv cannot carry NUL at all. */
  const BAD_IDS: string[] = [
    '../x',
    '../../../../tmp/escape',
    'a/b',
    '/etc/passwd',
    '-rf',
    `--upload-pack=touch ${pwned}`,
    '.',
    '..',
    'a b',
    'two\nlines',
    'T1;rm -rf ~',
    '$(touch x)',
  ];
  const cases = BAD_IDS.map((id) => [JSON.stringify(id).slice(0, 40), id]);

  // One database per CLI for every id: a refusal writes nothing (asserted each time), so they can share it.
  let shared: { dir: string; db: string; thread: string; lease: string } | undefined;
  const fixture = () => {
    if (shared && dbExists(shared.db)) return shared;
    const dir = fileTempDir('sec-ids-');
    const db = freshDb(dir);
    ok(db, ['init']);
    const thread = ok(db, ['send', '--to', 'w1', '--subject', 's', '--body', 'b']).thread.id as string;
    const lease = ok(db, ['claim', '--agent', 'w1']).lease.token as string;
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    orchOk(db, ['task', 'add', '--run', 'r', '--task', 'T', '--title', 't', '--default-to', 'w']);
    shared = { dir, db, thread, lease };
    return shared;
  };

  it.each(cases)('inbox: %s is refused by every command that takes an id', (_label, id) => {
    const { dir, db, thread: t, lease } = fixture();
    const before = { db: snapshot(db), files: tree(dir) };
    const commands: string[][] = [
      ['send', ...flag('to', id), '--subject', 's', '--body', 'b'],
      ['send', '--to', 'w1', ...flag('from', id), '--subject', 's', '--body', 'b'],
      ['claim', ...flag('agent', id)],
      ['show', ...flag('thread', id)],
      ['progress', ...flag('thread', id), '--lease', lease, '--body', 'b'],
      ['heartbeat', '--thread', t, ...flag('lease', id)],
      ['reply', '--thread', t, ...flag('from', id), '--body', 'b'],
    ];
    for (const args of commands) expectJsonError(inbox(['--db', db, '--json', ...args]), 2);
    expect({ db: snapshot(db), files: tree(dir) }).toEqual(before);
    expect(fs.existsSync(pwned)).toBe(false);
  });

  it.each(cases)('orch: %s is refused as a run, task, agent or attempt id', (_label, id) => {
    const { dir, db } = fixture();
    const before = { db: snapshot(db), files: tree(dir) };
    const commands: string[][] = [
      ['run', 'init', ...flag('run', id), '--goal', 'g'],
      ['status', ...flag('run', id)],
      ['task', 'add', '--run', 'r', ...flag('task', id), '--title', 't'],
      ['dep', 'add', '--run', 'r', '--task', 'T', ...flag('depends-on', id)],
      ['dispatch', '--run', 'r', '--task', 'T', '--execution-mode', 'analysis', ...flag('to', id), '--body', 'b'],
      ['cleanup', '--run', 'r', ...flag('attempt', id)],
    ];
    for (const args of commands) expectJsonError(orch(['--db', db, '--json', ...args]), 2);
    expect({ db: snapshot(db), files: tree(dir) }).toEqual(before);
    expect(fs.existsSync(pwned)).toBe(false);
  });
});

describe('code mode: refs and workspace roots that try to escape (nothing written anywhere) (slow)', () => {
  function setup(...tasks: string[]) {
    const { dir, db } = initDb();
    const repo = makeRepo();
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    for (const t of tasks) orchOk(db, ['task', 'add', '--run', 'r', '--task', t, '--title', `title ${t}`, '--default-to', `w-${t}`]);
    return { dir, db, repo };
  }
  const dispatchArgs = (task: string, extra: string[]): string[] => [
    'dispatch',
    '--run',
    'r',
    '--task',
    task,
    '--execution-mode',
    'code',
    '--body',
    'b',
    ...extra,
  ];

  it('base refs that look like options, climb out, or name no commit: exit 2, no branch, worktree, file or row', () => {
    const f = setup('T');
    const pwned = sentinel();
    const outside = path.dirname(pwned);
    const REFS = [
      `--output=${pwned}`,
      '-b',
      '--end-of-options',
      `--upload-pack=touch ${pwned}`,
      `--exec=touch ${pwned}`,
      'HEAD:../',
      'refs/../..',
      '../../etc/passwd',
      'main..HEAD',
      'main...HEAD',
      'HEAD:src/a.txt', // a blob, not a commit
      'main:src', // a tree
      'main with space',
      'main\ttab',
      'main\nHEAD',
      'refs/heads/nope',
      `$(touch ${pwned})`,
      'x'.repeat(251),
    ];
    orchOk(f.db, ['status', '--run', 'r']);
    const before = { db: snapshot(f.db), repo: repoState(f.repo), outside: tree(outside), dir: tree(f.dir) };
    for (const ref of REFS) {
      const r = orch(['--db', f.db, '--json', ...dispatchArgs('T', flag('base-ref', ref))], { cwd: f.repo });
      expectJsonError(r, 2, 'VALIDATION');
      expect({ db: snapshot(f.db), repo: repoState(f.repo), outside: tree(outside), dir: tree(f.dir) }, ref).toEqual(before);
    }
    expect(fs.existsSync(pwned)).toBe(false);
    // A --repo-path that looks like an option is a path, not a flag to git.
    expectJsonError(
      orch(['--db', f.db, '--json', ...dispatchArgs('T', [`--repo-path=--upload-pack=touch ${pwned}`])], { cwd: f.repo }),
      2,
      'VALIDATION',
      /no such directory/,
    );
    expect({ db: snapshot(f.db), repo: repoState(f.repo) }).toEqual({ db: before.db, repo: before.repo });
    expect(fs.existsSync(pwned)).toBe(false);
  });

  it('merge --into and retry --base-ref refuse option-like and climbing refs, leaving git and the database alone', () => {
    const f = setup('T');
    const pwned = sentinel();
    const a = orchOk(f.db, dispatchArgs('T', []), { cwd: f.repo }).attempt;
    const c = ok(f.db, ['claim', '--agent', 'w-T', '--thread', a.thread_id]);
    fs.writeFileSync(path.join(a.worktree_path, 'new.txt'), 'work\n');
    git(a.worktree_path, 'add', '-A');
    git(a.worktree_path, 'commit', '-q', '-m', 'work');
    ok(f.db, ['fail', '--thread', a.thread_id, '--lease', c.lease.token, '--body', 'failed after committing']);
    orchOk(f.db, ['status', '--run', 'r']);
    const before = { db: snapshot(f.db), repo: repoState(f.repo) };
    for (const ref of [`--output=${pwned}`, '-b', 'main..x', 'HEAD:../', '--', 'a b']) {
      expectJsonError(orch(['--db', f.db, '--json', 'merge', '--run', 'r', '--task', 'T', ...flag('into', ref)]), 2, 'VALIDATION', /--into/);
      expectJsonError(orch(['--db', f.db, '--json', 'retry', '--run', 'r', '--task', 'T', ...flag('base-ref', ref)]), 2, 'VALIDATION', /--base-ref/);
      expect({ db: snapshot(f.db), repo: repoState(f.repo) }, ref).toEqual(before);
    }
    expect(fs.existsSync(pwned)).toBe(false);
  });

  it('workspace roots that are the repository, lead into it through a link, or lie in .git: exit 2, nothing made', () => {
    const f = setup('T');
    const links = fs.realpathSync(tempDir('sec-links-'));
    fs.symlinkSync(f.repo, path.join(links, 'to-repo'));
    fs.symlinkSync(path.join(f.repo, 'src'), path.join(links, 'to-src'));
    fs.symlinkSync(path.join(f.repo, '.git'), path.join(links, 'to-git'));
    fs.writeFileSync(path.join(links, 'a-file'), 'not a directory\n');
    const ROOTS: [string, RegExp][] = [
      [f.repo, /repository itself/],
      [`${f.repo}/.`, /repository itself/],
      [`${f.repo}/src/..`, /repository itself/],
      [path.join(links, 'to-repo'), /repository itself/],
      [path.join(links, 'to-src'), /tracks/],
      [path.join(f.repo, 'src'), /tracks/],
      [path.join(f.repo, '.git'), /git directory/],
      [path.join(f.repo, '.git', 'worktrees'), /git directory/],
      [path.join(links, 'to-git', 'x'), /git directory/],
      [path.join(links, 'a-file'), /cannot create directory/],
      [`${f.repo}/wt\nx`, /control characters/],
    ];
    orchOk(f.db, ['status', '--run', 'r']);
    const before = { db: snapshot(f.db), repo: repoState(f.repo), links: tree(links) };
    for (const [root, message] of ROOTS) {
      const r = orch(['--db', f.db, '--json', ...dispatchArgs('T', ['--workspace-root', root])], { cwd: f.repo });
      expectJsonError(r, 2, 'VALIDATION', message);
      expect({ db: snapshot(f.db), repo: repoState(f.repo), links: tree(links) }, root).toEqual(before);
    }
  });

  it('a workspace root outside the repository (or reached through a link) gets exactly <root>/<run>/<task>/<n> and nothing else', () => {
    const f = setup('T1', 'T2', 'T3');
    const outside = fs.realpathSync(tempDir('sec-ws-'));
    const links = fs.realpathSync(tempDir('sec-links-'));
    fs.mkdirSync(path.join(outside, 'real'));
    fs.symlinkSync(path.join(outside, 'real'), path.join(links, 'ws'));
    const a1 = orchOk(f.db, dispatchArgs('T1', ['--workspace-root', path.join(outside, 'plain')]), { cwd: f.repo }).attempt;
    expect(a1.worktree_path).toBe(path.join(outside, 'plain', 'r', 'T1', '1'));
    const a2 = orchOk(f.db, dispatchArgs('T2', ['--workspace-root', path.join(links, 'ws')]), { cwd: f.repo }).attempt;
    // Recorded where the link leads, so later cleanup compares real paths.
    expect(a2.workspace_root).toBe(path.join(outside, 'real'));
    expect(a2.worktree_path).toBe(path.join(outside, 'real', 'r', 'T2', '1'));
    // A directory inside the repository whose name merely starts with ".." is inside: it is kept out of git status.
    const a3 = orchOk(f.db, dispatchArgs('T3', ['--workspace-root', '..wt']), { cwd: f.repo }).attempt;
    expect(a3.worktree_path).toBe(path.join(f.repo, '..wt', 'r', 'T3', '1'));
    expect(git(f.repo, 'status', '--porcelain', '--untracked-files=all')).toBe('');
    expect(tree(links)).toEqual(['ws']);
    expect(tree(outside).filter((p) => p.split(path.sep).length <= 4)).toEqual([
      'plain',
      'plain/r',
      'plain/r/T1',
      'plain/r/T1/1',
      'real',
      'real/r',
      'real/r/T2',
      'real/r/T2/1',
    ]);
    expect(tree(f.repo).filter((p) => !p.startsWith('.git/'))).toEqual(expect.arrayContaining(['..wt', '.git', 'src', 'src/a.txt']));
    expect(tree(f.repo).filter((p) => !p.startsWith('.git/') && !p.startsWith('..wt'))).toEqual(['.git', 'src', 'src/a.txt']);
  });
});

// ---------------------------------------------------------------------------------------------

/** Strings that break naive SQL, LIKE patterns, shells or quoting; each stored and read back byte for byte. */
const NASTY_LABELS: string[] = [
  "'; drop table inbox_threads; --",
  '" OR 1=1 --',
  "Robert'); DROP TABLE orch_tasks;--",
  '100% of _all_ rows \\ back\\\\slash \\\' \\" \\x00 \\n',
  '‘single’ “double” ＂fullwidth＂ ʼmodifierʼ ‛reversed‛ «guillemets»',
  '$1 ?1 ?NNN :name @name ${x} %s %n {0}',
  '🧪 zero\u200bwidth right\u202eleft \ufeffbom',
  'x'.repeat(500),
];
const NASTY_BODIES: string[] = [
  ...NASTY_LABELS,
  "line one\nline two'); delete from inbox_messages; --\r\n\ttabbed",
  "   leading and trailing spaces '   ",
  '\u2028separators\u2029',
  'a\\\u0001\u001b[31mred\u001b[0m',
];

describe('SQL metacharacters in every free-text field are stored and read back byte for byte (slow)', () => {
  const tables = (db: string) => listTables(db);

  it('inbox: subjects, bodies and payload strings through send, progress, ask, reply, result, show, list, claim, wait', () => {
    const { db } = initDb();
    const tableNames = tables(db);
    const threads = NASTY_LABELS.map((subject, i) => {
      const payload = { text: subject, [subject]: NASTY_BODIES[i], nested: { list: NASTY_BODIES } };
      const sent = ok(db, ['send', '--to', 'w1', '--subject', subject, '--body', NASTY_BODIES[i] as string, '--payload-json', JSON.stringify(payload)]);
      expect(sent.thread.subject).toBe(subject);
      expect(sent.message).toMatchObject({ body: NASTY_BODIES[i], payload });
      return sent.thread.id as string;
    });
    const listed = ok(db, ['list'])
      .threads.map((t: { subject: string }) => t.subject)
      .sort();
    expect(listed).toEqual([...NASTY_LABELS].sort());

    // Every body through every kind of message, on the oldest thread (the one claim picks).
    const id = threads[0] as string;
    const c = ok(db, ['claim', '--agent', 'w1']);
    expect(c.thread.id).toBe(id);
    const lease = c.lease.token as string;
    const posted: { kind: string; body: string; payload: unknown }[] = [{ kind: 'task', body: NASTY_BODIES[0] as string, payload: c.messages[0].payload }];
    for (const [n, b] of NASTY_BODIES.entries()) {
      const p = { i: n, s: b };
      if (n % 3 === 0) {
        ok(db, ['progress', '--thread', id, '--lease', lease, '--body', b, '--payload-json', JSON.stringify(p)]);
        posted.push({ kind: 'progress', body: b, payload: p });
      } else if (n % 3 === 1) {
        ok(db, ['send', '--thread', id, '--body', b, '--payload-json', JSON.stringify(p)]);
        posted.push({ kind: 'note', body: b, payload: p });
      } else {
        ok(db, ['ask', '--thread', id, '--lease', lease, '--body', b, '--payload-json', JSON.stringify(p)]);
        ok(db, ['reply', '--thread', id, '--body', b, '--payload-json', JSON.stringify(p)]);
        posted.push({ kind: 'question', body: b, payload: p }, { kind: 'answer', body: b, payload: p });
      }
    }
    const last = NASTY_BODIES[4] as string;
    ok(db, ['result', '--thread', id, '--lease', lease, '--body', last]);
    posted.push({ kind: 'result', body: last, payload: null });

    const shown = ok(db, ['show', '--thread', id]);
    expect(shown.thread.subject).toBe(NASTY_LABELS[0]);
    expect(shown.messages.map((m: { kind: string; body: string; payload: unknown }) => ({ kind: m.kind, body: m.body, payload: m.payload }))).toEqual(posted);
    // The same bytes in the table itself (nothing escaped on the way in).
    expect(rows<{ body: string }>(db, 'select body from inbox_messages where thread_id = ? order by id', id).map((r) => r.body)).toEqual(
      posted.map((p) => p.body),
    );
    const waited = ok(db, ['wait', '--thread', id, '--agent', 'leader', '--after-message', '0', '--timeout-seconds', '0']);
    expect(waited.messages.at(-1).body).toBe(last);
    // "%" is not an id character, so no agent filter can become a LIKE pattern.
    expectJsonError(inbox(['--db', db, '--json', 'list', '--agent', '%']), 2, 'VALIDATION');
    expect(tables(db)).toEqual(tableNames);
    expect(rows(db, 'select count(*) as n from inbox_threads')).toEqual([{ n: NASTY_LABELS.length }]);
  });

  it('orch: goals, summaries, titles, acceptance JSON, dispatch bodies, answers, reasons through status, task show, run show/list, blocked, wait', () => {
    const { db } = initDb();
    const goal = NASTY_LABELS[5] as string;
    const summary = NASTY_BODIES[3] as string;
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', goal, '--summary', summary]);
    const tableNames = tables(db);
    const ids = NASTY_LABELS.map((_, i) => `T${i}`);
    for (const [i, title] of NASTY_LABELS.entries()) {
      const acceptance = { kind: title, checks: NASTY_BODIES, [title]: [title, { deep: NASTY_BODIES[i] }] };
      orchOk(db, [
        'task',
        'add',
        '--run',
        'r',
        '--task',
        ids[i] as string,
        '--title',
        title,
        '--summary',
        NASTY_BODIES[i] as string,
        '--default-to',
        `w${i}`,
        '--acceptance-json',
        JSON.stringify(acceptance),
      ]);
      const shown = orchOk(db, ['task', 'show', '--run', 'r', '--task', ids[i] as string]).task;
      expect(shown).toMatchObject({ title, summary: NASTY_BODIES[i], acceptance });
    }
    // T0: dispatched, asked, answered; T1: failed with a nasty reason; T2: cancelled with a nasty reason.
    const body0 = NASTY_BODIES[9] as string;
    const d0 = orchOk(db, ['dispatch', '--run', 'r', '--task', 'T0', '--execution-mode', 'analysis', '--body', body0]).attempt;
    expect(d0.body).toBe(body0);
    const c0 = ok(db, ['claim', '--agent', 'w0']);
    expect(c0.messages[0].body).toBe(body0);
    expect(c0.messages[0].payload.run).toEqual({ id: 'r', goal, summary });
    expect(c0.messages[0].payload.task.title).toBe(NASTY_LABELS[0]);
    const question = NASTY_BODIES[10] as string;
    ok(db, ['ask', '--thread', c0.thread.id, '--lease', c0.lease.token, '--body', question, '--payload-json', JSON.stringify({ q: question })]);
    const blocked = orchOk(db, ['blocked', '--run', 'r']).tasks;
    expect(blocked).toHaveLength(1);
    expect(blocked[0].question).toMatchObject({ body: question, payload: { q: question } });
    const answer = NASTY_BODIES[1] as string;
    const answered = orchOk(db, ['answer', '--run', 'r', '--task', 'T0', '--body', answer, '--payload-json', JSON.stringify({ a: answer, [answer]: 1 })]);
    expect(answered.message).toMatchObject({ body: answer, payload: { a: answer, [answer]: 1 } });

    orchOk(db, ['dispatch', '--run', 'r', '--task', 'T1', '--execution-mode', 'analysis', '--body', NASTY_BODIES[0] as string]);
    const c1 = ok(db, ['claim', '--agent', 'w1']);
    const failure = NASTY_BODIES[2] as string;
    ok(db, ['fail', '--thread', c1.thread.id, '--lease', c1.lease.token, '--body', failure]);
    const reason = NASTY_LABELS[2] as string;
    orchOk(db, ['cancel', '--run', 'r', '--task', 'T2', '--reason', reason]);

    const status = orchOk(db, ['status', '--run', 'r']);
    expect(status.run).toMatchObject({ goal, summary });
    expect(status.tasks.map((t: { id: string; title: string }) => [t.id, t.title])).toEqual(expect.arrayContaining(ids.map((id, i) => [id, NASTY_LABELS[i]])));
    const t1 = status.tasks.find((t: { id: string }) => t.id === 'T1');
    expect(t1.state).toBe('failed');
    expect(t1.latest_message.body).toBe(failure);
    const events = orchOk(db, ['wait', '--run', 'r', '--after-event', '0', '--timeout-seconds', '0']).events as {
      type: string;
      data: Record<string, unknown>;
    }[];
    expect(events.find((e) => e.type === 'task_cancelled')?.data.reason).toBe(reason);
    expect(events.find((e) => e.type === 'task_blocked')?.data.body).toBe(question);
    expect(events.find((e) => e.type === 'task_failed')?.data.body).toBe(failure);
    expect(orchOk(db, ['run', 'show', '--run', 'r']).run).toMatchObject({ goal, summary });
    expect(orchOk(db, ['run', 'list']).runs.map((r: { goal: string }) => r.goal)).toEqual([goal]);
    expect(tables(db)).toEqual(tableNames);
    expect(rows(db, 'select count(*) as n from orch_tasks')).toEqual([{ n: NASTY_LABELS.length }]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('foreign or stale lease tokens on every worker command (exit 5, nothing changed) (slow)', () => {
  /**
   * Threads: HELD (claimed now, token LIVE), OTHER (claimed by another agent, OTHER_LIVE),
   * AGAIN (claimed, released, claimed again: AGAIN_OLD is stale, AGAIN_NEW live), MOVED (an orch
   * attempt claimed with MOVED_OLD, then reassigned: its thread is cancelled and the token revoked).
   */
  function fixture(dir: string) {
    const db = freshDb(dir);
    ok(db, ['init']);
    const held = ok(db, ['send', '--to', 'w1', '--subject', 'held', '--body', 'b']).thread.id as string;
    const live = ok(db, ['claim', '--agent', 'w1', '--thread', held]).lease.token as string;
    const other = ok(db, ['send', '--to', 'w2', '--subject', 'other', '--body', 'b']).thread.id as string;
    const otherLive = ok(db, ['claim', '--agent', 'w2', '--thread', other]).lease.token as string;
    const again = ok(db, ['send', '--to', 'w3', '--subject', 'again', '--body', 'b']).thread.id as string;
    const againOld = ok(db, ['claim', '--agent', 'w3', '--thread', again]).lease.token as string;
    ok(db, ['release', '--thread', again, '--lease', againOld]);
    const againNew = ok(db, ['claim', '--agent', 'w3', '--thread', again]).lease.token as string;
    orchOk(db, ['run', 'init', '--run', 'r', '--goal', 'g']);
    orchOk(db, ['task', 'add', '--run', 'r', '--task', 'M', '--title', 'moved', '--default-to', 'w4']);
    const moved = orchOk(db, ['dispatch', '--run', 'r', '--task', 'M', '--execution-mode', 'analysis', '--body', 'b']).attempt.thread_id as string;
    const movedOld = ok(db, ['claim', '--agent', 'w4', '--thread', moved]).lease.token as string;
    orchOk(db, ['reassign', '--run', 'r', '--task', 'M', '--to', 'w5']);
    return { dir, db, held, live, other, otherLive, again, againOld, againNew, moved, movedOld };
  }

  const WORKER_COMMANDS: [name: string, args: (thread: string, lease: string) => string[]][] = [
    ['heartbeat', (t, l) => ['heartbeat', '--thread', t, '--lease', l]],
    ['heartbeat --lease-seconds', (t, l) => ['heartbeat', '--thread', t, '--lease', l, '--lease-seconds', '60']],
    ['progress', (t, l) => ['progress', '--thread', t, '--lease', l, '--body', 'sneaky progress']],
    ['ask', (t, l) => ['ask', '--thread', t, '--lease', l, '--body', 'sneaky question']],
    ['result', (t, l) => ['result', '--thread', t, '--lease', l, '--body', 'sneaky result']],
    ['result --body-file', (t, l) => ['result', '--thread', t, '--lease', l, '--body-file', 'package.json']],
    ['fail', (t, l) => ['fail', '--thread', t, '--lease', l, '--body', 'sneaky failure']],
    ['release', (t, l) => ['release', '--thread', t, '--lease', l]],
    ['wait --lease', (t, l) => ['wait', '--thread', t, '--lease', l, '--timeout-seconds', '0']],
  ];

  let f: ReturnType<typeof fixture>;
  beforeAll(() => {
    f = fixture(fileTempDir('sec-leases-'));
  });

  const TOKENS: [label: string, pick: () => [thread: string, lease: string]][] = [
    ['a made-up token', () => [f.held, 'ls_AAAAAAAAAAAAAAAA']],
    ['a token of another shape', () => [f.held, 'x']],
    ["another thread's live token", () => [f.held, f.otherLive]],
    ["another thread's live token (the other way round)", () => [f.other, f.live]],
    ['the token from before a release and re-claim', () => [f.again, f.againOld]],
    ['a live token of another agent on a re-claimed thread', () => [f.again, f.live]],
    ['the token of an attempt that was reassigned (thread cancelled)', () => [f.moved, f.movedOld]],
    ['a token differing only in case', () => [f.held, f.live.toUpperCase() === f.live ? f.live.toLowerCase() : f.live.toUpperCase()]],
  ];

  it.each(TOKENS)('every worker command with %s', (label, pick) => {
    const [thread, lease] = pick();
    const before = { db: snapshot(f.db), files: tree(f.dir) };
    for (const [name, args] of WORKER_COMMANDS) {
      const error = expectJsonError(inbox(['--db', f.db, '--json', ...args(thread, lease)]), 5, 'LEASE_LOST');
      expect(error.message, `${name} with ${label}`).toMatch(/lease/i);
    }
    expect({ db: snapshot(f.db), files: tree(f.dir) }, label).toEqual(before);
  });

  it('after all those refusals the real tokens still work: nothing was revoked or extended', () => {
    expect(ok(f.db, ['heartbeat', '--thread', f.held, '--lease', f.live]).thread.id).toBe(f.held);
    expect(ok(f.db, ['heartbeat', '--thread', f.again, '--lease', f.againNew]).thread.id).toBe(f.again);
    expect(ok(f.db, ['release', '--thread', f.other, '--lease', f.otherLive]).thread.state).toBe('open');
  });

  it('a token with surrounding spaces is malformed, not a lease: exit 2', () => {
    const before = snapshot(f.db);
    for (const [, args] of WORKER_COMMANDS) expectJsonError(inbox(['--db', f.db, '--json', ...args(f.held, ` ${f.live} `)]), 2, 'VALIDATION', /--lease/);
    expect(snapshot(f.db)).toEqual(before);
  });

  it('an orch worker fenced out by reassign cannot post into the new attempt with its old token', () => {
    const g = fixture(tempDir('sec-leases-'));
    const newThread = orchOk(g.db, ['task', 'show', '--run', 'r', '--task', 'M']).attempts.at(-1).thread_id as string;
    expect(newThread).not.toBe(g.moved);
    const newLease = ok(g.db, ['claim', '--agent', 'w5', '--thread', newThread]).lease.token as string;
    const before = snapshot(g.db);
    for (const [, args] of WORKER_COMMANDS) expectJsonError(inbox(['--db', g.db, '--json', ...args(newThread, g.movedOld)]), 5, 'LEASE_LOST');
    for (const [, args] of WORKER_COMMANDS) expectJsonError(inbox(['--db', g.db, '--json', ...args(g.moved, newLease)]), 5, 'LEASE_LOST');
    expect(snapshot(g.db)).toEqual(before);
    expect(orchOk(g.db, ['reconcile', '--run', 'r']).events_written).toBe(1); // the new claim, nothing else
  });
});

// ---------------------------------------------------------------------------------------------

describe('--db that is not an inbox database (exit 6, the file byte for byte unchanged) (slow)', () => {
  const COMMANDS: [bin: 'inbox' | 'orch', args: string[]][] = [
    ['inbox', ['init']],
    ['inbox', ['list']],
    ['inbox', ['send', '--to', 'w1', '--subject', 's', '--body', 'b']],
    ['inbox', ['claim', '--agent', 'w1']],
    ['orch', ['run', 'init', '--run', 'r', '--goal', 'g']],
    ['orch', ['run', 'list']],
    ['orch', ['status', '--run', 'r']],
  ];
  const run = (bin: 'inbox' | 'orch', db: string, args: string[]): CliRun => (bin === 'inbox' ? inbox : orch)(['--db', db, '--json', ...args]);

  /** Runs every command against `db` (inside `dir`), expecting exit 6 and `dir` unchanged; returns the error codes by command. */
  function refuseAll(dir: string, db: string, also: string[] = []): string[] {
    const before = { dir: dirState(dir), also: also.map((d) => dirState(d)) };
    const codes: string[] = [];
    for (const [bin, args] of COMMANDS) {
      const error = expectJsonError(run(bin, db, args), 6);
      expect(error.code).toMatch(/^DB_/);
      codes.push(error.code);
      expect({ dir: dirState(dir), also: also.map((d) => dirState(d)) }, `${bin} ${args.join(' ')}`).toEqual(before);
    }
    return codes;
  }

  function foreignSqlite(file: string, sql: string): void {
    rawSql(file, sql);
  }

  sqliteOnly.it('symbolic links are about files', 'a dangling symbolic link: nothing is created at its target', () => {
    const dir = fs.realpathSync(tempDir());
    const target = path.join(dir, 'sub', 'missing.db');
    fs.symlinkSync(target, path.join(dir, 'coord.db'));
    const codes = refuseAll(dir, path.join(dir, 'coord.db'));
    expect(new Set(codes)).toEqual(new Set(['DB_CANNOT_OPEN', 'DB_MISSING']));
    const e = expectJsonError(inbox(['--db', path.join(dir, 'coord.db'), '--json', 'init']), 6, 'DB_CANNOT_OPEN');
    expect(e.message).toContain('symbolic link');
    // Even when the target's directory exists, init does not create a file through the link.
    fs.mkdirSync(path.join(dir, 'sub'));
    expectJsonError(inbox(['--db', path.join(dir, 'coord.db'), '--json', 'init']), 6, 'DB_CANNOT_OPEN', /symbolic link/);
    expect(fs.readdirSync(path.join(dir, 'sub'))).toEqual([]);
  });

  sqliteOnly.it('symbolic links and files in place of the database file', 'a symbolic link to a PNG, and to a text file, elsewhere', () => {
    const dir = fs.realpathSync(tempDir());
    const elsewhere = fs.realpathSync(tempDir());
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), crypto.randomBytes(8192)]);
    fs.writeFileSync(path.join(elsewhere, 'image.png'), png);
    fs.writeFileSync(path.join(elsewhere, 'notes.txt'), 'SQLite format 3 is what this line pretends to be\n'.repeat(200));
    fs.symlinkSync(path.join(elsewhere, 'image.png'), path.join(dir, 'png.db'));
    fs.symlinkSync(path.join(elsewhere, 'notes.txt'), path.join(dir, 'txt.db'));
    expect(new Set(refuseAll(dir, path.join(dir, 'png.db'), [elsewhere]))).toEqual(new Set(['DB_NOT_A_DATABASE']));
    expect(new Set(refuseAll(dir, path.join(dir, 'txt.db'), [elsewhere]))).toEqual(new Set(['DB_NOT_A_DATABASE']));
    expect(fs.readFileSync(path.join(elsewhere, 'image.png')).equals(png)).toBe(true);
  });

  sqliteOnly.it('symbolic links are about files', "a symbolic link to another program's SQLite database: init refuses (DB_FOREIGN) and adds no table", () => {
    const dir = fs.realpathSync(tempDir());
    const elsewhere = fs.realpathSync(tempDir());
    const other = path.join(elsewhere, 'app.sqlite');
    foreignSqlite(other, "create table users (id integer primary key, name text); insert into users (name) values ('alice'), ('bob');");
    fs.symlinkSync(other, path.join(dir, 'coord.db'));
    const rowsBefore = snapshot(other);
    const codes = refuseAll(dir, path.join(dir, 'coord.db'), [elsewhere]);
    expect(codes[0]).toBe('DB_FOREIGN');
    expect(snapshot(other)).toEqual(rowsBefore);
  });

  it("another program's database with its own schema_migrations table (as Rails makes): refused as foreign, not an internal error", () => {
    const dir = fs.realpathSync(tempDir());
    const file = freshDb(dir, 'development.sqlite3');
    foreignSqlite(
      file,
      "create table schema_migrations (version varchar not null primary key); insert into schema_migrations values ('20240101000000');" +
        'create table ar_internal_metadata (key varchar primary key, value varchar); create table posts (id integer primary key, title text);',
    );
    const codes = refuseAll(dir, file);
    expect(new Set(codes)).toEqual(new Set(['DB_FOREIGN']));
    const e = expectJsonError(inbox(['--db', file, '--json', 'init']), 6, 'DB_FOREIGN', /schema_migrations/);
    expect(e.details).toEqual({ tables: ['ar_internal_metadata', 'posts', 'schema_migrations'] });
  });

  sqliteOnly.it('the bytes of a database file', 'a SQLite file with garbage over page 2 onwards, and one cut in half', () => {
    const src = initDb();
    fs.writeFileSync(path.join(src.dir, 'body.txt'), 'x'.repeat(200_000));
    ok(src.db, ['send', '--to', 'w1', '--subject', 'big', '--body-file', path.join(src.dir, 'body.txt')]);
    const good = fs.readFileSync(src.db);
    const pageSize = good.readUInt16BE(16);
    expect(good.length).toBeGreaterThan(4 * pageSize);

    const dir = fs.realpathSync(tempDir());
    const garbage = Buffer.concat([good.subarray(0, pageSize), crypto.randomBytes(good.length - pageSize)]);
    fs.writeFileSync(path.join(dir, 'garbage.db'), garbage, { mode: 0o600 });
    expect(new Set(refuseAll(dir, path.join(dir, 'garbage.db')))).toEqual(new Set(['DB_CORRUPT']));
    for (const args of [
      ['show', '--thread', 'th_x'],
      ['reply', '--thread', 'th_x', '--body', 'b'],
    ]) {
      expectJsonError(inbox(['--db', path.join(dir, 'garbage.db'), '--json', ...args]), 6, 'DB_CORRUPT');
    }

    const dir2 = fs.realpathSync(tempDir());
    fs.writeFileSync(path.join(dir2, 'half.db'), good.subarray(0, Math.floor(good.length / 2 / pageSize) * pageSize), { mode: 0o600 });
    const codes = refuseAll(dir2, path.join(dir2, 'half.db'));
    for (const c of codes) expect(['DB_CORRUPT', 'DB_NOT_A_DATABASE']).toContain(c);
    expect(sha256(path.join(dir, 'garbage.db'))).toBe(crypto.createHash('sha256').update(garbage).digest('hex'));
  });

  sqliteOnly.it('a zero-length file', 'a zero-length file: every command but init refuses it and it stays zero bytes; init then makes it a database', () => {
    const dir = fs.realpathSync(tempDir());
    const file = path.join(dir, 'coord.db');
    fs.writeFileSync(file, '', { mode: 0o600 });
    const before = dirState(dir);
    for (const [bin, args] of COMMANDS.slice(1)) {
      expectJsonError(run(bin, file, args), 6, 'DB_NOT_INITIALISED', /init/);
      expect(dirState(dir)).toEqual(before);
    }
    expect(fs.statSync(file).size).toBe(0);
    ok(file, ['init']);
    expect(ok(file, ['list']).threads).toEqual([]);
  });

  sqliteOnly.it('symbolic links are about files', 'a symbolic link to a real inbox database works, and the link stays a link', () => {
    const { db } = initDb();
    const dir = fs.realpathSync(tempDir());
    const link = path.join(dir, 'link.db');
    fs.symlinkSync(db, link);
    const id = ok(link, ['send', '--to', 'w1', '--subject', 'via link', '--body', 'b']).thread.id as string;
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(rows(db, 'select id from inbox_threads')).toEqual([{ id }]);
    expect(fs.readdirSync(dir)).toEqual(['link.db']);
  });
});

sqliteOnly.describe('file modes of the database, its -wal and -shm', 'owner-only permissions (slow)', () => {
  /** Runs the inbox CLI under `umask 000`, so any file it creates without an explicit mode would be world-writable. */
  function inboxUmask0(args: string[]): CliRun {
    const r = spawnSync('sh', ['-c', 'umask 000 && exec "$@"', 'sh', process.execPath, INBOX_BIN, ...args], { encoding: 'utf8' });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  it('init makes the database 0600 under a permissive umask, and its -wal and -shm are 0600 while in use', async () => {
    const dir = fs.realpathSync(tempDir());
    const db = path.join(dir, 'coord.db');
    const r = inboxUmask0(['--db', db, '--json', 'init']);
    expect(r.code, r.stderr).toBe(0);
    const mode = (f: string): string => (fs.statSync(f).mode & 0o777).toString(8);
    expect(mode(db)).toBe('600');
    expect(fs.readdirSync(dir)).toEqual(['coord.db']);

    const sent = json(inboxUmask0(['--db', db, '--json', 'send', '--to', 'w1', '--subject', 's', '--body', 'b']));
    // A waiting reader (also under umask 000) keeps the database open, so -wal and -shm exist.
    const waiter = spawn(
      'sh',
      [
        '-c',
        'umask 000 && exec "$@"',
        'sh',
        process.execPath,
        INBOX_BIN,
        '--db',
        db,
        '--json',
        'wait',
        '--thread',
        sent.thread.id,
        '--agent',
        'w1',
        '--timeout-seconds',
        '120',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    waiter.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number>((resolve) => waiter.on('close', (code) => resolve(code ?? -1)));
    try {
      while (!fs.existsSync(`${db}-shm`) || !fs.existsSync(`${db}-wal`)) await new Promise((res) => setTimeout(res, 20));
      expect(mode(`${db}-wal`)).toBe('600');
      expect(mode(`${db}-shm`)).toBe('600');
      // A write by another process while the files exist keeps them owner-only.
      expect(inboxUmask0(['--db', db, '--json', 'reply', '--thread', sent.thread.id, '--body', 'wake up']).code).toBe(0);
      expect(await exited).toBe(0);
      expect(JSON.parse(out).messages[0].body).toBe('wake up');
    } finally {
      if (waiter.exitCode === null) waiter.kill();
    }
    expect(mode(db)).toBe('600');
    for (const f of fs.readdirSync(dir)) expect(mode(path.join(dir, f)), f).toBe('600');
  });

  it('the orch bundle too: run init and dispatch on a 0600 database leave every file beside it 0600', () => {
    const dir = fs.realpathSync(tempDir());
    const db = path.join(dir, 'coord.db');
    expect(inboxUmask0(['--db', db, 'init']).code).toBe(0);
    const r = spawnSync(
      'sh',
      ['-c', 'umask 000 && exec "$@"', 'sh', process.execPath, ORCH_BIN, '--db', db, '--json', 'run', 'init', '--run', 'r', '--goal', 'g'],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    for (const f of fs.readdirSync(dir)) expect((fs.statSync(path.join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
  });
});
