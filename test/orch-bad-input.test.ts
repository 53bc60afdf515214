import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { dirState, expectJsonError, fileTempDir, ok, orch, orchOk, rows, snapshot, tempDir, type JsonError } from './helpers.ts';
import { copyDb, dbExists, freshDb, onPostgres, rawSql, schemaOf, sqliteOnly } from './engine.ts';

/**
 * Every bad input to the orch CLI: the documented exit code, one JSON error line on stderr (with
 * --json), nothing on stdout, and the database exactly as it was.
 */

/** Runs `args` with --json against `db` and asserts it is refused without touching the database. */
function refuse(db: string, args: string[], exit: number, code?: string, message?: RegExp): JsonError {
  const before = snapshot(db);
  const error = expectJsonError(orch(['--db', db, '--json', ...args]), exit, code, message);
  expect(snapshot(db)).toEqual(before);
  return error;
}

// ---------------------------------------------------------------------------------------------
// A template database, built once through the CLIs; every table case runs on its own copy.
//
// Run r1 (active):
//   A  done      (attempt A_AT, finished by wa)
//   B  running   (attempt B_AT, claimed by wb under a 900 s lease)
//   C  pending   ready, no --default-to
//   D  pending   depends on B
//   F  failed    (wf gave up)
//   K  blocked   (wk asked a question)
// Run rc: cancelled (one task X).  Run rd: done (one task Z).

interface Fixture {
  dir: string;
  db: string;
  vars: Record<string, string>;
}

let template: Fixture;

beforeAll(() => {
  const dir = fileTempDir('orch-bad-input-'); // shared by the file's tests
  const db = freshDb(dir);
  ok(db, ['init']);

  orchOk(db, ['run', 'init', '--run', 'r1', '--goal', 'bad input target']);
  for (const [task, agent] of [
    ['A', 'wa'],
    ['B', 'wb'],
    ['C', undefined],
    ['D', 'wd'],
    ['F', 'wf'],
    ['K', 'wk'],
  ] as const) {
    orchOk(db, ['task', 'add', '--run', 'r1', '--task', task, '--title', `task ${task}`, ...(agent ? ['--default-to', agent] : [])]);
  }
  orchOk(db, ['dep', 'add', '--run', 'r1', '--task', 'D', '--depends-on', 'B']);
  const dispatchAndClaim = (task: string, agent: string) => {
    const d = orchOk(db, ['dispatch', '--run', 'r1', '--task', task, '--execution-mode', 'analysis', '--body', `do ${task}`]);
    const c = ok(db, ['claim', '--agent', agent]);
    expect(c.thread.id).toBe(d.attempt.thread_id);
    return { attempt: d.attempt.id as string, thread: c.thread.id as string, lease: c.lease.token as string };
  };
  const a = dispatchAndClaim('A', 'wa');
  ok(db, ['result', '--thread', a.thread, '--lease', a.lease, '--body', 'A is done']);
  const b = dispatchAndClaim('B', 'wb');
  const f = dispatchAndClaim('F', 'wf');
  ok(db, ['fail', '--thread', f.thread, '--lease', f.lease, '--body', 'F failed']);
  const k = dispatchAndClaim('K', 'wk');
  ok(db, ['ask', '--thread', k.thread, '--lease', k.lease, '--body', 'K needs an answer']);

  orchOk(db, ['run', 'init', '--run', 'rc', '--goal', 'cancelled run']);
  orchOk(db, ['task', 'add', '--run', 'rc', '--task', 'X', '--title', 'task X', '--default-to', 'wx']);
  orchOk(db, ['cancel', '--run', 'rc']);

  orchOk(db, ['run', 'init', '--run', 'rd', '--goal', 'done run']);
  orchOk(db, ['task', 'add', '--run', 'rd', '--task', 'Z', '--title', 'task Z', '--default-to', 'wz']);
  orchOk(db, ['dispatch', '--run', 'rd', '--task', 'Z', '--execution-mode', 'analysis', '--body', 'do Z']);
  const z = ok(db, ['claim', '--agent', 'wz']);
  ok(db, ['result', '--thread', z.thread.id, '--lease', z.lease.token, '--body', 'Z is done']);

  // Fold everything in, so a command that reconciles before refusing has nothing left to write.
  orchOk(db, ['status', '--run', 'r1']);
  orchOk(db, ['status', '--run', 'rd']);

  fs.writeFileSync(path.join(dir, 'body.txt'), 'a fine body\n');
  fs.mkdirSync(path.join(dir, 'adir'));

  template = { dir, db, vars: { DIR: dir, A_AT: a.attempt, B_AT: b.attempt, LONG: 'x'.repeat(200) } };
});

/** A private copy of the template database (the CLIs checkpoint and remove the WAL on close). */
function copyTemplate(): string {
  return copyDb(template.db, tempDir());
}

/** Replaces {NAME} placeholders with the template's ids and paths. */
function fill(args: string[]): string[] {
  return args.map((a) =>
    a.replace(/\{([A-Z_]+)\}/g, (_, k: string) => {
      const v = template.vars[k];
      if (v === undefined) throw new Error(`unknown placeholder {${k}}`);
      return v;
    }),
  );
}

type Case = [label: string, args: string[], exit: number, code: string, message?: RegExp];

function runTable(cases: Case[]) {
  it.each(cases)('%s', (_label, args, exit, code, message) => {
    refuse(copyTemplate(), fill(args), exit, code, message);
  });
}

const dispatchC = (extra: string[]): string[] => ['dispatch', '--run', 'r1', '--task', 'C', '--to', 'wc', ...extra];
const analysisC = (extra: string[]): string[] => dispatchC(['--execution-mode', 'analysis', ...extra]);

describe('template sanity (slow)', () => {
  it('has the states the bad-input cases rely on', () => {
    const states = rows<{ run_id: string; id: string; state: string }>(template.db, 'select run_id, id, state from orch_tasks order by run_id, id');
    expect(states.map((t) => `${t.run_id}/${t.id}:${t.state}`)).toEqual([
      'r1/A:done',
      'r1/B:running',
      'r1/C:pending',
      'r1/D:pending',
      'r1/F:failed',
      'r1/K:blocked',
      'rc/X:cancelled',
      'rd/Z:done',
    ]);
    expect(rows(template.db, 'select id, state from orch_runs order by id')).toEqual([
      { id: 'r1', state: 'active' },
      { id: 'rc', state: 'cancelled' },
      { id: 'rd', state: 'done' },
    ]);
    // Nothing is left for reconcile to fold in (so refusals that reconcile first write nothing).
    const r = orch(['--db', copyTemplate(), '--json', 'reconcile', '--run', 'r1']);
    expect(JSON.parse(r.stdout)).toEqual({ run: 'r1', events_written: 0 });
  });
});

describe('unknown run (exit 3) for every run-scoped command (slow)', () => {
  runTable([
    ['run show', ['run', 'show', '--run', 'nope'], 3, 'NOT_FOUND', /no run nope/],
    ['task add', ['task', 'add', '--run', 'nope', '--task', 'T', '--title', 't'], 3, 'NOT_FOUND', /no run nope/],
    ['task show', ['task', 'show', '--run', 'nope', '--task', 'A'], 3, 'NOT_FOUND', /no run nope/],
    ['dep add', ['dep', 'add', '--run', 'nope', '--task', 'D', '--depends-on', 'A'], 3, 'NOT_FOUND', /no run nope/],
    ['ready', ['ready', '--run', 'nope'], 3, 'NOT_FOUND', /no run nope/],
    ['dispatch', ['dispatch', '--run', 'nope', '--task', 'C', '--to', 'w', '--execution-mode', 'analysis', '--body', 'b'], 3, 'NOT_FOUND', /no run nope/],
    ['reconcile', ['reconcile', '--run', 'nope'], 3, 'NOT_FOUND', /no run nope/],
    ['status', ['status', '--run', 'nope'], 3, 'NOT_FOUND', /no run nope/],
    ['wait (refused at once, not after the timeout)', ['wait', '--run', 'nope', '--timeout-seconds', '30'], 3, 'NOT_FOUND', /no run nope/],
    ['blocked', ['blocked', '--run', 'nope'], 3, 'NOT_FOUND', /no run nope/],
    ['answer', ['answer', '--run', 'nope', '--task', 'K', '--body', 'b'], 3, 'NOT_FOUND', /no run nope/],
    ['retry', ['retry', '--run', 'nope', '--task', 'F'], 3, 'NOT_FOUND', /no run nope/],
    ['reassign', ['reassign', '--run', 'nope', '--task', 'B', '--to', 'w2'], 3, 'NOT_FOUND', /no run nope/],
    ['cancel (run)', ['cancel', '--run', 'nope'], 3, 'NOT_FOUND', /no run nope/],
    ['cancel --task', ['cancel', '--run', 'nope', '--task', 'B'], 3, 'NOT_FOUND', /no run nope/],
    ['cleanup --all-completed', ['cleanup', '--run', 'nope', '--all-completed'], 3, 'NOT_FOUND', /no run nope/],
    ['cleanup --attempt', ['cleanup', '--run', 'nope', '--attempt', '{A_AT}'], 3, 'NOT_FOUND', /no run nope/],
  ]);
});

describe('unknown task or attempt (exit 3) (slow)', () => {
  runTable([
    ['task show', ['task', 'show', '--run', 'r1', '--task', 'NOPE'], 3, 'NOT_FOUND', /no task NOPE in run r1/],
    ['dep add --task', ['dep', 'add', '--run', 'r1', '--task', 'NOPE', '--depends-on', 'A'], 3, 'NOT_FOUND', /NOPE/],
    ['dep add --depends-on', ['dep', 'add', '--run', 'r1', '--task', 'C', '--depends-on', 'NOPE'], 3, 'NOT_FOUND', /NOPE/],
    ['dispatch', ['dispatch', '--run', 'r1', '--task', 'NOPE', '--to', 'w', '--execution-mode', 'analysis', '--body', 'b'], 3, 'NOT_FOUND', /no task NOPE/],
    ['answer', ['answer', '--run', 'r1', '--task', 'NOPE', '--body', 'b'], 3, 'NOT_FOUND', /no task NOPE/],
    ['retry', ['retry', '--run', 'r1', '--task', 'NOPE'], 3, 'NOT_FOUND', /no task NOPE/],
    ['reassign', ['reassign', '--run', 'r1', '--task', 'NOPE', '--to', 'w2'], 3, 'NOT_FOUND', /no task NOPE/],
    ['cancel', ['cancel', '--run', 'r1', '--task', 'NOPE'], 3, 'NOT_FOUND', /no task NOPE/],
    ['a task of another run', ['task', 'show', '--run', 'rd', '--task', 'A'], 3, 'NOT_FOUND', /no task A in run rd/],
    ['cleanup --attempt unknown', ['cleanup', '--run', 'r1', '--attempt', 'at_nope'], 3, 'NOT_FOUND', /at_nope/],
    ['cleanup --attempt of another run', ['cleanup', '--run', 'rd', '--attempt', '{A_AT}'], 3, 'NOT_FOUND'],
  ]);
});

describe('bad ids (exit 2) (slow)', () => {
  const BAD_IDS: [label: string, id: string][] = [
    ['../x', '../x'],
    ['-x', '-x'],
    ['a..b', 'a..b'],
    ['empty', ''],
    ['200 characters', '{LONG}'],
  ];
  /** `--flag VALUE`, or `--flag=VALUE` for a value starting with "-" (else it is read as a flag). */
  const flag = (name: string, id: string): string[] => (id.startsWith('-') ? [`--${name}=${id}`] : [`--${name}`, id]);
  runTable([
    ...BAD_IDS.flatMap(([label, id]): Case[] => [
      [`status --run ${label}`, ['status', ...flag('run', id)], 2, 'VALIDATION', /--run/],
      [`task add --task ${label}`, ['task', 'add', '--run', 'r1', ...flag('task', id), '--title', 't'], 2, 'VALIDATION', /--task/],
      [
        `dispatch --to ${label}`,
        ['dispatch', '--run', 'r1', '--task', 'C', ...flag('to', id), '--execution-mode', 'analysis', '--body', 'b'],
        2,
        'VALIDATION',
        /--to/,
      ],
    ]),
    ['run init --run ../x', ['run', 'init', '--run', '../x', '--goal', 'g'], 2, 'VALIDATION', /--run: .*must not contain "\.\."/],
    ['run init --run=-x', ['run', 'init', '--run=-x', '--goal', 'g'], 2, 'VALIDATION', /must not start with "-"/],
    ['dep add --depends-on a..b', ['dep', 'add', '--run', 'r1', '--task', 'C', '--depends-on', 'a..b'], 2, 'VALIDATION', /--depends-on/],
    ['cleanup --attempt=-x', ['cleanup', '--run', 'r1', '--attempt=-x'], 2, 'VALIDATION', /--attempt/],
    ['task show --task a/b', ['task', 'show', '--run', 'r1', '--task', 'a/b'], 2, 'VALIDATION', /--task/],
    ["reassign --to 'a b'", ['reassign', '--run', 'r1', '--task', 'B', '--to', 'a b'], 2, 'VALIDATION', /--to/],
    ['task add --default-to ../w', ['task', 'add', '--run', 'r1', '--task', 'N', '--title', 't', '--default-to', '../w'], 2, 'VALIDATION', /--default-to/],
  ]);
});

describe('malformed JSON flags (exit 2) (slow)', () => {
  runTable([
    [
      '--acceptance-json {bad',
      ['task', 'add', '--run', 'r1', '--task', 'N', '--title', 't', '--acceptance-json', '{bad'],
      2,
      'VALIDATION',
      /--acceptance-json: is not valid JSON/,
    ],
    ["--acceptance-json ''", ['task', 'add', '--run', 'r1', '--task', 'N', '--title', 't', '--acceptance-json', ''], 2, 'VALIDATION', /--acceptance-json/],
    [
      '--acceptance-json trailing garbage',
      ['task', 'add', '--run', 'r1', '--task', 'N', '--title', 't', '--acceptance-json', '{"kind":"analysis"} x'],
      2,
      'VALIDATION',
      /--acceptance-json/,
    ],
    ['answer --payload-json {bad', ['answer', '--run', 'r1', '--task', 'K', '--payload-json', '{bad'], 2, 'VALIDATION', /--payload-json: is not valid JSON/],
    [
      'answer --payload-json [1,2] (an array)',
      ['answer', '--run', 'r1', '--task', 'K', '--payload-json', '[1,2]'],
      2,
      'VALIDATION',
      /--payload-json: must be a JSON object/,
    ],
    [
      'answer --body with --payload-json []',
      ['answer', '--run', 'r1', '--task', 'K', '--body', 'b', '--payload-json', '[]'],
      2,
      'VALIDATION',
      /--payload-json: must be a JSON object/,
    ],
    [
      'answer --payload-json null',
      ['answer', '--run', 'r1', '--task', 'K', '--payload-json', 'null'],
      2,
      'VALIDATION',
      /--payload-json: must be a JSON object/,
    ],
    [
      'answer --payload-json "str"',
      ['answer', '--run', 'r1', '--task', 'K', '--payload-json', '"str"'],
      2,
      'VALIDATION',
      /--payload-json: must be a JSON object/,
    ],
    ['answer --payload-json 5', ['answer', '--run', 'r1', '--task', 'K', '--payload-json', '5'], 2, 'VALIDATION', /--payload-json: must be a JSON object/],
  ]);
});

describe('dispatch flags (exit 2) (slow)', () => {
  runTable([
    ['missing --body', analysisC([]), 2, 'VALIDATION', /--body: is required/],
    ['both --body and --body-file', analysisC(['--body', 'b', '--body-file', '{DIR}/body.txt']), 2, 'VALIDATION', /not both/],
    ['--body-file that does not exist', analysisC(['--body-file', '{DIR}/nope.md']), 2, 'VALIDATION', /--body-file .*no such file/],
    ['--body-file that is a directory', analysisC(['--body-file', '{DIR}/adir']), 2, 'VALIDATION', /--body-file .*is a directory/],
    ["--body ''", analysisC(['--body', '']), 2, 'VALIDATION', /--body/],
    ["--body '   '", analysisC(['--body', '   ']), 2, 'VALIDATION', /--body/],
    ['without --execution-mode', dispatchC(['--body', 'b']), 2, 'VALIDATION', /--execution-mode: must be one of analysis, code/],
    ['--execution-mode bogus', dispatchC(['--execution-mode', 'bogus', '--body', 'b']), 2, 'VALIDATION', /--execution-mode: must be one of analysis, code/],
    ['--repo-path with analysis', analysisC(['--body', 'b', '--repo-path', '{DIR}']), 2, 'VALIDATION', /--repo-path applies to --execution-mode code only/],
    [
      '--workspace-root with analysis',
      analysisC(['--body', 'b', '--workspace-root', '{DIR}/wt']),
      2,
      'VALIDATION',
      /--workspace-root applies to --execution-mode code only/,
    ],
    ['--base-ref with analysis', analysisC(['--body', 'b', '--base-ref', 'main']), 2, 'VALIDATION', /--base-ref applies to --execution-mode code only/],
    [
      'no --to and no --default-to',
      ['dispatch', '--run', 'r1', '--task', 'C', '--execution-mode', 'analysis', '--body', 'b'],
      2,
      'VALIDATION',
      /no default agent.*--to/,
    ],
    [
      'retry with both --body and --body-file',
      ['retry', '--run', 'r1', '--task', 'F', '--body', 'b', '--body-file', '{DIR}/body.txt'],
      2,
      'VALIDATION',
      /not both/,
    ],
    ['retry --body-file that does not exist', ['retry', '--run', 'r1', '--task', 'F', '--body-file', '{DIR}/nope.md'], 2, 'VALIDATION', /no such file/],
    ['reassign without --to', ['reassign', '--run', 'r1', '--task', 'B'], 2, 'VALIDATION', /--to: is required/],
    [
      'reassign with both --body and --body-file',
      ['reassign', '--run', 'r1', '--task', 'B', '--to', 'w2', '--body', 'b', '--body-file', '{DIR}/body.txt'],
      2,
      'VALIDATION',
      /not both/,
    ],
    ['answer with no body or payload', ['answer', '--run', 'r1', '--task', 'K'], 2, 'VALIDATION', /--body: is required/],
    [
      'answer with both --body and --body-file',
      ['answer', '--run', 'r1', '--task', 'K', '--body', 'b', '--body-file', '{DIR}/body.txt'],
      2,
      'VALIDATION',
      /not both/,
    ],
    ["answer --body '  '", ['answer', '--run', 'r1', '--task', 'K', '--body', '  '], 2, 'VALIDATION', /--body/],
  ]);
});

describe('other validation (exit 2) (slow)', () => {
  runTable([
    [
      'task add --priority abc',
      ['task', 'add', '--run', 'r1', '--task', 'N', '--title', 't', '--priority', 'abc'],
      2,
      'VALIDATION',
      /--priority: must be a whole number/,
    ],
    ['task add --priority 1.5', ['task', 'add', '--run', 'r1', '--task', 'N', '--title', 't', '--priority', '1.5'], 2, 'VALIDATION', /--priority/],
    ['task add --priority 10000000', ['task', 'add', '--run', 'r1', '--task', 'N', '--title', 't', '--priority', '10000000'], 2, 'VALIDATION', /--priority/],
    ['task add without --title', ['task', 'add', '--run', 'r1', '--task', 'N'], 2, 'VALIDATION', /--title: is required/],
    ["task add --title ''", ['task', 'add', '--run', 'r1', '--task', 'N', '--title', ''], 2, 'VALIDATION', /--title/],
    ['run init without --goal', ['run', 'init', '--run', 'r9'], 2, 'VALIDATION', /--goal: is required/],
    ["run init --goal ''", ['run', 'init', '--run', 'r9', '--goal', ''], 2, 'VALIDATION', /--goal/],
    ['status without --run', ['status'], 2, 'VALIDATION', /--run: is required/],
    ['run list --state bogus', ['run', 'list', '--state', 'bogus'], 2, 'VALIDATION', /--state: must be one of active, done, cancelled/],
    ['run list --limit 0', ['run', 'list', '--limit', '0'], 2, 'VALIDATION', /--limit/],
    [
      'wait --for bogus_type',
      ['wait', '--run', 'r1', '--for', 'bogus_type', '--timeout-seconds', '0'],
      2,
      'VALIDATION',
      /--for: unknown event type bogus_type/,
    ],
    [
      'wait --for with one bogus type among good ones',
      ['wait', '--run', 'r1', '--for', 'task_done,bogus_type', '--timeout-seconds', '0'],
      2,
      'VALIDATION',
      /unknown event type bogus_type/,
    ],
    ["wait --for ''", ['wait', '--run', 'r1', '--for', '', '--timeout-seconds', '0'], 2, 'VALIDATION', /--for/],
    [
      'wait --timeout-seconds -1',
      ['wait', '--run', 'r1', '--timeout-seconds=-1'],
      2,
      'VALIDATION',
      /--timeout-seconds: must be a whole number from 0 to 86400/,
    ],
    [
      'wait --timeout-seconds abc',
      ['wait', '--run', 'r1', '--timeout-seconds', 'abc'],
      2,
      'VALIDATION',
      /--timeout-seconds: must be a whole number from 0 to 86400/,
    ],
    ['wait --timeout-seconds 86401', ['wait', '--run', 'r1', '--timeout-seconds', '86401'], 2, 'VALIDATION', /--timeout-seconds/],
    ['wait --after-event -1', ['wait', '--run', 'r1', '--after-event=-1', '--timeout-seconds', '0'], 2, 'VALIDATION', /--after-event/],
    ['wait --after-event abc', ['wait', '--run', 'r1', '--after-event', 'abc', '--timeout-seconds', '0'], 2, 'VALIDATION', /--after-event/],
    ['cleanup with neither --all-completed nor --attempt', ['cleanup', '--run', 'r1'], 2, 'VALIDATION', /exactly one of --all-completed or --attempt/],
    [
      'cleanup with both --all-completed and --attempt',
      ['cleanup', '--run', 'r1', '--all-completed', '--attempt', '{A_AT}'],
      2,
      'VALIDATION',
      /exactly one of --all-completed or --attempt/,
    ],
    ['dep add self', ['dep', 'add', '--run', 'r1', '--task', 'C', '--depends-on', 'C'], 2, 'VALIDATION', /cannot depend on itself/],
    ["cancel --reason ''", ['cancel', '--run', 'r1', '--task', 'C', '--reason', ''], 2, 'VALIDATION', /--reason/],
    ['a flag given twice', ['status', '--run', 'r1', '--run', 'rd'], 2, 'VALIDATION', /--run was given more than once/],
  ]);
});

describe('conflicts and invalid states (exit 4) (slow)', () => {
  runTable([
    ['run init of an existing run', ['run', 'init', '--run', 'r1', '--goal', 'again'], 4, 'CONFLICT', /run r1 already exists/],
    ['task add of an existing task', ['task', 'add', '--run', 'r1', '--task', 'A', '--title', 'again'], 4, 'CONFLICT', /task A already exists/],
    ['task add to a cancelled run', ['task', 'add', '--run', 'rc', '--task', 'Y', '--title', 't'], 4, 'CONFLICT', /cancelled/],
    ['dep add closing a cycle', ['dep', 'add', '--run', 'r1', '--task', 'B', '--depends-on', 'D'], 4, 'CONFLICT', /cycle: B -> D -> B/],
    [
      'dispatch a running task',
      ['dispatch', '--run', 'r1', '--task', 'B', '--execution-mode', 'analysis', '--body', 'b'],
      4,
      'CONFLICT',
      /task B is not ready: it already has a live attempt/,
    ],
    [
      'dispatch a task waiting on another',
      ['dispatch', '--run', 'r1', '--task', 'D', '--execution-mode', 'analysis', '--body', 'b'],
      4,
      'CONFLICT',
      /task D is not ready: it waits on B/,
    ],
    [
      'dispatch a done task',
      ['dispatch', '--run', 'r1', '--task', 'A', '--execution-mode', 'analysis', '--body', 'b'],
      4,
      'CONFLICT',
      /task A is not ready: it is done/,
    ],
    ['dispatch a blocked task', ['dispatch', '--run', 'r1', '--task', 'K', '--execution-mode', 'analysis', '--body', 'b'], 4, 'CONFLICT', /not ready/],
    [
      'dispatch in a cancelled run',
      ['dispatch', '--run', 'rc', '--task', 'X', '--execution-mode', 'analysis', '--body', 'b'],
      4,
      'CONFLICT',
      /run rc is cancelled/,
    ],
    ['answer a running task', ['answer', '--run', 'r1', '--task', 'B', '--body', 'b'], 4, 'CONFLICT', /task B is running, not blocked/],
    ['answer a pending task', ['answer', '--run', 'r1', '--task', 'C', '--body', 'b'], 4, 'CONFLICT', /task C is pending, not blocked/],
    ['answer a done task', ['answer', '--run', 'r1', '--task', 'A', '--payload-json', '{"a":1}'], 4, 'CONFLICT', /not blocked/],
    ['retry a running task', ['retry', '--run', 'r1', '--task', 'B'], 4, 'CONFLICT', /task B is running; only failed or expired tasks can be retried/],
    ['retry a blocked task', ['retry', '--run', 'r1', '--task', 'K'], 4, 'CONFLICT', /only failed or expired/],
    ['retry a pending task', ['retry', '--run', 'r1', '--task', 'C'], 4, 'CONFLICT', /only failed or expired/],
    ['retry a done task', ['retry', '--run', 'r1', '--task', 'A'], 4, 'CONFLICT', /only failed or expired/],
    ['retry in a cancelled run', ['retry', '--run', 'rc', '--task', 'X'], 4, 'CONFLICT', /cancelled/],
    ['reassign a never-dispatched task', ['reassign', '--run', 'r1', '--task', 'C', '--to', 'w2'], 4, 'CONFLICT', /never dispatched/],
    ['reassign a done task', ['reassign', '--run', 'r1', '--task', 'A', '--to', 'w2'], 4, 'CONFLICT', /nothing to reassign/],
    ['cancel a done task', ['cancel', '--run', 'r1', '--task', 'A'], 4, 'CONFLICT', /task A is done; it cannot be cancelled/],
    ['cancel a done run', ['cancel', '--run', 'rd'], 4, 'CONFLICT', /run rd is done/],
    ['cleanup a live attempt', ['cleanup', '--run', 'r1', '--attempt', '{B_AT}'], 4, 'CONFLICT', /is running/],
  ]);
});

describe('command line problems (exit 2) (slow)', () => {
  runTable([
    ['unknown command', ['frobnicate'], 2, 'USAGE', /frobnicate/],
    ['near-miss command', ['statu', '--run', 'r1'], 2, 'USAGE', /Did you mean status/],
    ['no command', [], 2, 'USAGE', /no command given/],
    ['a group without its subcommand', ['run'], 2, 'USAGE', /needs a subcommand/],
    ['an unknown subcommand', ['task', 'remove', '--run', 'r1', '--task', 'A'], 2, 'USAGE', /remove/],
    ['unknown flag', ['status', '--run', 'r1', '--bogus', '1'], 2, 'USAGE', /bogus/],
    ['a flag of another command', ['ready', '--run', 'r1', '--task', 'C'], 2, 'USAGE', /task/],
    ['extra positional argument', ['status', '--run', 'r1', 'extra'], 2, 'USAGE', /extra/],
  ]);

  it.each([
    ['run', 'list'],
    ['status', '--run', 'r1'],
    ['dispatch', '--run', 'r1', '--task', 'C', '--to', 'w', '--execution-mode', 'analysis', '--body', 'b'],
  ])('no --db at all (exit 2): %s', (...args) => {
    const db = copyTemplate();
    const before = snapshot(db);
    expectJsonError(orch(['--json', ...args]), 2, 'USAGE', /missing required flag --db/);
    expect(snapshot(db)).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------
// --db that is not a usable orchestration database (exit 6).

const DB_COMMANDS: string[][] = [
  ['run', 'list'],
  ['run', 'init', '--run', 'r', '--goal', 'g'],
  ['status', '--run', 'r'],
  ['dispatch', '--run', 'r', '--task', 'T', '--to', 'w', '--execution-mode', 'analysis', '--body', 'b'],
];

describe('--db that is not usable (exit 6) (slow)', () => {
  it('a file (on PostgreSQL, schema) that does not exist: exit 6 naming `inbox init`, and it is not created', () => {
    const dir = tempDir();
    const file = freshDb(dir, 'nothing-here.db');
    for (const args of DB_COMMANDS) {
      const error = expectJsonError(orch(['--db', file, '--json', ...args]), 6, 'DB_MISSING');
      expect(error.message).toContain(onPostgres ? schemaOf(file) : file);
      expect(error.message).toMatch(/inbox .*init/);
    }
    expect(dbExists(file)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it(`${onPostgres ? 'an empty schema' : 'a zero-byte file SQLite made'} (never initialised): exit 6, nothing written`, () => {
    const dir = tempDir();
    const file = freshDb(dir, 'zero.db');
    // Opening makes the file (or the schema) and nothing in it.
    rawSql(file, 'select 1');
    const before = { files: dirState(dir), db: snapshot(file) };
    for (const args of DB_COMMANDS) {
      const error = expectJsonError(orch(['--db', file, '--json', ...args]), 6, 'DB_NOT_INITIALISED');
      expect(error.message).toMatch(/inbox .*init/);
    }
    expect({ files: dirState(dir), db: snapshot(file) }).toEqual(before);
  });

  sqliteOnly.it('the header of a database file', 'an empty SQLite database (valid header, no tables): exit 6, nothing written', () => {
    const dir = tempDir();
    const file = path.join(dir, 'empty.db');
    rawSql(file, 'create table t (x); drop table t;');
    const before = dirState(dir);
    for (const args of DB_COMMANDS) expectJsonError(orch(['--db', file, '--json', ...args]), 6, 'DB_NOT_INITIALISED');
    expect(dirState(dir)).toEqual(before);
  });

  sqliteOnly.it('a text file in place of the database file', 'a text file: exit 6 and the bytes are unchanged', () => {
    const dir = tempDir();
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'not a database\n'.repeat(100));
    const before = dirState(dir);
    for (const args of DB_COMMANDS.slice(0, 2)) expectJsonError(orch(['--db', file, '--json', ...args]), 6, 'DB_NOT_A_DATABASE');
    expect(dirState(dir)).toEqual(before);
  });

  sqliteOnly.it('a directory in place of the database file', 'a directory: exit 6, nothing created inside it', () => {
    const dir = tempDir();
    for (const args of DB_COMMANDS.slice(0, 2)) expectJsonError(orch(['--db', dir, '--json', ...args]), 6, 'DB_CANNOT_OPEN');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
