import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { dirState, expectJsonError, fileTempDir, inbox, initDb, ok, rows, snapshot, tempDir, type JsonError } from './helpers.ts';
import { copyDb, dbExists, freshDb, onPostgres, rawSql, schemaOf, sqliteOnly, tableNames } from './engine.ts';

/**
 * Every bad input through the built CLI: the exact exit code, one JSON error object on stderr
 * (with --json), nothing on stdout, and the database exactly as it was.
 */

const MiB = 1024 * 1024;

/** Runs `args` with --json against `db` and asserts it is refused without touching the database. */
function refuse(db: string, args: string[], exit: number, code?: string, message?: RegExp): JsonError {
  const before = snapshot(db);
  const r = inbox(['--db', db, '--json', ...args]);
  const error = expectJsonError(r, exit, code, message);
  expect(snapshot(db)).toEqual(before);
  return error;
}

// ---------------------------------------------------------------------------------------------
// A template database with some state, built once; every table case runs on its own copy.

interface Fixture {
  dir: string;
  db: string;
  vars: Record<string, string>;
}

let template: Fixture;

beforeAll(() => {
  const dir = fileTempDir('inbox-bad-input-'); // shared by the file's tests
  const db = freshDb(dir);
  ok(db, ['init']);

  // w1: CLAIMED (held under lease LEASE) and OPEN (open).
  const claimed = ok(db, ['send', '--to', 'w1', '--subject', 'claimed thread', '--body', 'work on this']).thread.id as string;
  const open = ok(db, ['send', '--to', 'w1', '--subject', 'open thread', '--body', 'later']).thread.id as string;
  const c1 = ok(db, ['claim', '--agent', 'w1', '--thread', claimed]);
  expect(c1.claimed).toBe(true);

  // w2: DONE (finished with a result) and OTHER (open, assigned to w2).
  const done = ok(db, ['send', '--to', 'w2', '--subject', 'done thread', '--body', 'finish me']).thread.id as string;
  const c2 = ok(db, ['claim', '--agent', 'w2', '--thread', done]);
  ok(db, ['result', '--thread', done, '--lease', c2.lease.token, '--body', 'finished']);
  const other = ok(db, ['send', '--to', 'w2', '--subject', 'other agent', '--body', 'not for w1']).thread.id as string;

  // w3: RELEASED (claimed with RELEASED_OLD, then released; open again).
  const released = ok(db, ['send', '--to', 'w3', '--subject', 'released', '--body', 'give back']).thread.id as string;
  const c3 = ok(db, ['claim', '--agent', 'w3']);
  ok(db, ['release', '--thread', released, '--lease', c3.lease.token]);

  // w4: RECLAIMED (claimed with RECLAIMED_OLD, released, claimed again with RECLAIMED_NEW).
  const reclaimed = ok(db, ['send', '--to', 'w4', '--subject', 'reclaimed', '--body', 'twice']).thread.id as string;
  const c4a = ok(db, ['claim', '--agent', 'w4']);
  ok(db, ['release', '--thread', reclaimed, '--lease', c4a.lease.token]);
  const c4b = ok(db, ['claim', '--agent', 'w4']);
  expect(c4b.lease.token).not.toBe(c4a.lease.token);

  // Files for --body-file.
  fs.writeFileSync(path.join(dir, 'body.txt'), 'a fine body\n');
  fs.writeFileSync(path.join(dir, 'empty.txt'), '');
  fs.writeFileSync(path.join(dir, 'blank.txt'), '  \n\t\n ');
  fs.writeFileSync(path.join(dir, 'nul.txt'), 'before\u0000after');
  fs.writeFileSync(path.join(dir, 'big.txt'), 'a'.repeat(MiB + 1));
  // 524289 two-byte characters: fewer than 1 MiB characters but more than 1 MiB bytes.
  fs.writeFileSync(path.join(dir, 'big-utf8.txt'), 'é'.repeat(MiB / 2 + 1));
  fs.writeFileSync(path.join(dir, 'max.txt'), 'b'.repeat(MiB));
  fs.mkdirSync(path.join(dir, 'adir'));

  template = {
    dir,
    db,
    vars: {
      DIR: dir,
      CLAIMED: claimed,
      LEASE: c1.lease.token as string,
      OPEN: open,
      DONE: done,
      DONE_LEASE: c2.lease.token as string,
      OTHER: other,
      RELEASED: released,
      RELEASED_OLD: c3.lease.token as string,
      RECLAIMED: reclaimed,
      RECLAIMED_OLD: c4a.lease.token as string,
      RECLAIMED_NEW: c4b.lease.token as string,
    },
  };
});

/** A private copy of the template database (the CLI checkpoints and removes the WAL on close). */
function copyTemplate(): string {
  return copyDb(template.db, tempDir());
}

/** Replaces {NAME} placeholders with the template's ids, tokens and paths. */
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

const progressOn = (extra: string[]): string[] => ['progress', '--thread', '{CLAIMED}', '--lease', '{LEASE}', ...extra];
const sendNew = (extra: string[]): string[] => ['send', '--to', 'w1', '--subject', 's', ...extra];

describe('template sanity (slow)', () => {
  it('has the states the bad-input cases rely on', () => {
    const states = Object.fromEntries(rows<{ id: string; state: string }>(template.db, 'select id, state from inbox_threads').map((r) => [r.id, r.state]));
    const v = template.vars;
    expect(states).toEqual({
      [v.CLAIMED!]: 'claimed',
      [v.OPEN!]: 'open',
      [v.DONE!]: 'done',
      [v.OTHER!]: 'open',
      [v.RELEASED!]: 'open',
      [v.RECLAIMED!]: 'claimed',
    });
  });
});

describe('malformed --payload-json (exit 2) (slow)', () => {
  runTable([
    ['send {bad', [...sendNew(['--body', 'b', '--payload-json', '{bad'])], 2, 'VALIDATION', /--payload-json: is not valid JSON/],
    ['send [1,2]', [...sendNew(['--body', 'b', '--payload-json', '[1,2]'])], 2, 'VALIDATION', /--payload-json: must be a JSON object/],
    ['send 5', [...sendNew(['--body', 'b', '--payload-json', '5'])], 2, 'VALIDATION', /--payload-json: must be a JSON object/],
    ['send null', [...sendNew(['--body', 'b', '--payload-json', 'null'])], 2, 'VALIDATION', /--payload-json: must be a JSON object/],
    ['send "str"', [...sendNew(['--body', 'b', '--payload-json', '"str"'])], 2, 'VALIDATION', /--payload-json: must be a JSON object/],
    ['send empty', [...sendNew(['--body', 'b', '--payload-json', ''])], 2, 'VALIDATION', /--payload-json/],
    ['progress {bad', progressOn(['--body', 'b', '--payload-json', '{bad']), 2, 'VALIDATION', /--payload-json/],
    ['result [1,2]', ['result', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body', 'b', '--payload-json', '[1,2]'], 2, 'VALIDATION', /--payload-json/],
    ['reply null', ['reply', '--thread', '{CLAIMED}', '--body', 'b', '--payload-json', 'null'], 2, 'VALIDATION', /--payload-json/],
    ['fail 5', ['fail', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body', 'b', '--payload-json', '5'], 2, 'VALIDATION', /--payload-json/],
    ['ask {bad', ['ask', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body', 'b', '--payload-json', '{"a":'], 2, 'VALIDATION', /--payload-json/],
  ]);
});

describe('unknown flags and commands (exit 2) (slow)', () => {
  runTable([
    ['unknown flag on claim', ['claim', '--agent', 'w1', '--bogus', '1'], 2, 'USAGE', /bogus/],
    ['typo of a flag', ['list', '--agnet', 'w1'], 2, 'USAGE', /agnet/],
    ['a flag of another command (progress --body-file)', progressOn(['--body-file', '{DIR}/body.txt']), 2, 'USAGE', /body-file/],
    ['--wait-seconds on show', ['show', '--thread', '{CLAIMED}', '--wait-seconds', '5'], 2, 'USAGE', /wait-seconds/],
    ['unknown command', ['frobnicate'], 2, 'USAGE', /frobnicate/],
    // yargs answers a near miss with only "Did you mean claim?" (the word "claims" is not echoed).
    ['near-miss command', ['claims', '--agent', 'w1'], 2, 'USAGE', /claim/],
    ['no command', [], 2, 'USAGE'],
    ['extra positional argument', ['list', 'extra'], 2, 'USAGE', /extra/],
  ]);

  it('no --db at all (exit 2)', () => {
    const db = copyTemplate();
    const before = snapshot(db);
    expectJsonError(inbox(['--json', 'list']), 2, 'USAGE', /--db/);
    expect(snapshot(db)).toEqual(before);
  });
});

describe('missing required flags (exit 2) (slow)', () => {
  runTable([
    ['claim without --agent', ['claim'], 2, 'VALIDATION', /--agent: is required/],
    ['progress without --lease', ['progress', '--thread', '{CLAIMED}', '--body', 'b'], 2, 'VALIDATION', /--lease: is required/],
    ['progress without --thread', ['progress', '--lease', '{LEASE}', '--body', 'b'], 2, 'VALIDATION', /--thread: is required/],
    ['progress without --body', ['progress', '--thread', '{CLAIMED}', '--lease', '{LEASE}'], 2, 'VALIDATION', /--body: is required/],
    ['send without --to (no --thread)', ['send', '--subject', 's', '--body', 'b'], 2, 'VALIDATION', /--to: is required/],
    ['send without --subject (no --thread)', ['send', '--to', 'w1', '--body', 'b'], 2, 'VALIDATION', /--subject: is required/],
    ['send without --to and --subject', ['send', '--body', 'b'], 2, 'VALIDATION', /--to: .*--subject: /],
    ['send without a body', ['send', '--to', 'w1', '--subject', 's'], 2, 'VALIDATION', /--body: is required/],
    ['send --thread without a body', ['send', '--thread', '{OPEN}'], 2, 'VALIDATION', /--body/],
    ['result without a body', ['result', '--thread', '{CLAIMED}', '--lease', '{LEASE}'], 2, 'VALIDATION', /--body/],
    ['heartbeat without --thread', ['heartbeat', '--lease', '{LEASE}'], 2, 'VALIDATION', /--thread: is required/],
    ['release without --lease', ['release', '--thread', '{CLAIMED}'], 2, 'VALIDATION', /--lease: is required/],
    ['reply without --body', ['reply', '--thread', '{CLAIMED}'], 2, 'VALIDATION', /--body: is required/],
    ['show without --thread', ['show'], 2, 'VALIDATION', /--thread: is required/],
    ['wait without --thread', ['wait', '--timeout-seconds', '0'], 2, 'VALIDATION', /--thread: is required/],
    ['--agent with no value', ['claim', '--agent'], 2, 'VALIDATION', /--agent/],
  ]);
});

describe('empty bodies and --body/--body-file (exit 2) (slow)', () => {
  runTable([
    ["send --body ''", sendNew(['--body', '']), 2, 'VALIDATION', /--body: .*must not be empty/],
    ["send --body '   '", sendNew(['--body', '   ']), 2, 'VALIDATION', /--body: .*must not be empty/],
    ['send --body of newlines and tabs', sendNew(['--body', '\n\t \n']), 2, 'VALIDATION', /--body: .*must not be empty/],
    ["progress --body ''", progressOn(['--body', '']), 2, 'VALIDATION', /--body/],
    ["progress --body '   '", progressOn(['--body', '   ']), 2, 'VALIDATION', /--body/],
    ["ask --body '   '", ['ask', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body', '   '], 2, 'VALIDATION', /--body/],
    ["reply --body ''", ['reply', '--thread', '{CLAIMED}', '--body', ''], 2, 'VALIDATION', /--body/],
    ["result --body '  '", ['result', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body', '  '], 2, 'VALIDATION', /--body/],
    ["fail --body ''", ['fail', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body', ''], 2, 'VALIDATION', /--body/],
    ["send --thread --body ' '", ['send', '--thread', '{OPEN}', '--body', ' '], 2, 'VALIDATION', /--body/],
    ['send with both --body and --body-file', sendNew(['--body', 'b', '--body-file', '{DIR}/body.txt']), 2, 'VALIDATION', /not both/],
    [
      'result with both --body and --body-file',
      ['result', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body', 'b', '--body-file', '{DIR}/body.txt'],
      2,
      'VALIDATION',
      /not both/,
    ],
    ['--body-file that does not exist', sendNew(['--body-file', '{DIR}/nope.txt']), 2, 'VALIDATION', /--body-file .*no such file/],
    ['--body-file that is a directory', sendNew(['--body-file', '{DIR}/adir']), 2, 'VALIDATION', /--body-file .*is a directory/],
    ['--body-file that is empty', sendNew(['--body-file', '{DIR}/empty.txt']), 2, 'VALIDATION', /--body-file: .*must not be empty/],
    ['--body-file of whitespace only', sendNew(['--body-file', '{DIR}/blank.txt']), 2, 'VALIDATION', /--body-file: .*must not be empty/],
    ['--body-file with a NUL byte', sendNew(['--body-file', '{DIR}/nul.txt']), 2, 'VALIDATION', /--body-file: .*NUL/],
    ["--body-file ''", sendNew(['--body-file', '']), 2, 'VALIDATION', /--body-file/],
    [
      'result --body-file that does not exist',
      ['result', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body-file', '{DIR}/nope.txt'],
      2,
      'VALIDATION',
      /no such file/,
    ],
    ['a 1 MiB + 1 byte body (send)', sendNew(['--body-file', '{DIR}/big.txt']), 2, 'VALIDATION', /at most 1048576 bytes/],
    [
      'a 1 MiB + 1 byte body (result)',
      ['result', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--body-file', '{DIR}/big.txt'],
      2,
      'VALIDATION',
      /at most 1048576 bytes/,
    ],
    ['a body over 1 MiB in UTF-8 bytes but not in characters', sendNew(['--body-file', '{DIR}/big-utf8.txt']), 2, 'VALIDATION', /at most 1048576 bytes/],
  ]);

  it('a body of exactly 1 MiB is accepted (the limit is not off by one)', () => {
    const db = copyTemplate();
    // Without --json: the JSON answer would echo the 1 MiB body, past spawnSync's 1 MiB stdout buffer.
    const r = inbox(['--db', db, ...fill(['send', '--to', 'w1', '--subject', 'max', '--body-file', '{DIR}/max.txt'])]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^opened thread th_/);
    expect(rows(db, "select length(m.body) as n from inbox_messages m join inbox_threads t on t.id = m.thread_id where t.subject = 'max'")).toEqual([
      { n: MiB },
    ]);
  });
});

describe('bad ids (exit 2) (slow)', () => {
  runTable([
    ['--agent with /', ['claim', '--agent', 'a/b'], 2, 'VALIDATION', /--agent/],
    ['--agent with ..', ['claim', '--agent', 'a..b'], 2, 'VALIDATION', /--agent: must not contain "\.\."/],
    ['--agent ../x', ['claim', '--agent', '../x'], 2, 'VALIDATION', /--agent/],
    ['--agent with a space', ['claim', '--agent', 'w 1'], 2, 'VALIDATION', /--agent/],
    ['--agent=-x (leading -)', ['claim', '--agent=-x'], 2, 'VALIDATION', /--agent: .*must not start with "-"/],
    ['--agent -x (read as a flag)', ['claim', '--agent', '-x'], 2, 'USAGE', /-x/],
    ['--agent .hidden (leading .)', ['claim', '--agent', '.hidden'], 2, 'VALIDATION', /--agent/],
    ['--agent of 129 characters', ['claim', '--agent', 'a'.repeat(129)], 2, 'VALIDATION', /at most 128/],
    ['--agent with a newline', ['claim', '--agent', 'w1\nw2'], 2, 'VALIDATION', /--agent/],
    ['send --to with /', ['send', '--to', 'x/y', '--subject', 's', '--body', 'b'], 2, 'VALIDATION', /--to/],
    ['send --to=-w1', ['send', '--to=-w1', '--subject', 's', '--body', 'b'], 2, 'VALIDATION', /--to/],
    ['send --from with a space', sendNew(['--body', 'b', '--from', 'the leader']), 2, 'VALIDATION', /--from/],
    ['send --thread with ..', ['send', '--thread', 'th_..x', '--body', 'b'], 2, 'VALIDATION', /--thread/],
    ['show --thread ../etc', ['show', '--thread', '../etc/passwd'], 2, 'VALIDATION', /--thread/],
    ['show --thread with a space', ['show', '--thread', 'th x'], 2, 'VALIDATION', /--thread/],
    ['show --thread=-th', ['show', '--thread=-th_1'], 2, 'VALIDATION', /--thread/],
    ['reply --from with /', ['reply', '--thread', '{CLAIMED}', '--body', 'b', '--from', 'a/b'], 2, 'VALIDATION', /--from/],
    ['progress --lease with /', ['progress', '--thread', '{CLAIMED}', '--lease', 'ls/1', '--body', 'b'], 2, 'VALIDATION', /--lease/],
    ['progress --thread with /', ['progress', '--thread', 'a/b', '--lease', '{LEASE}', '--body', 'b'], 2, 'VALIDATION', /--thread/],
    ['heartbeat --lease=-x', ['heartbeat', '--thread', '{CLAIMED}', '--lease=-x'], 2, 'VALIDATION', /--lease/],
    ['list --agent with ..', ['list', '--agent', '..'], 2, 'VALIDATION', /--agent/],
    ['wait --agent with a space', ['wait', '--thread', '{CLAIMED}', '--agent', 'a b', '--timeout-seconds', '0'], 2, 'VALIDATION', /--agent/],
    ['wait --as bogus', ['wait', '--thread', '{CLAIMED}', '--as', 'boss', '--timeout-seconds', '0'], 2, 'VALIDATION', /--as: must be worker or leader/],
    [
      'wait --as leader with --lease',
      ['wait', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--as', 'leader', '--timeout-seconds', '0'],
      2,
      'VALIDATION',
      /--as/,
    ],
    ['show --limit 0', ['show', '--thread', '{CLAIMED}', '--limit', '0'], 2, 'VALIDATION', /--limit/],
    ['claim --max-bytes 0', ['claim', '--agent', 'w1', '--max-bytes', '0'], 2, 'VALIDATION', /--max-bytes/],
    ['show --max-bytes over 64 MiB', ['show', '--thread', '{CLAIMED}', '--max-bytes', '67108865'], 2, 'VALIDATION', /--max-bytes/],
  ]);
});

describe('control characters in --subject (exit 2) (slow)', () => {
  runTable([
    ['a newline', ['send', '--to', 'w1', '--subject', 'line one\nline two', '--body', 'b'], 2, 'VALIDATION', /--subject: must be one line/],
    ['a carriage return', ['send', '--to', 'w1', '--subject', 'a\rb', '--body', 'b'], 2, 'VALIDATION', /--subject/],
    ['a tab', ['send', '--to', 'w1', '--subject', 'a\tb', '--body', 'b'], 2, 'VALIDATION', /--subject/],
    ['an escape sequence', ['send', '--to', 'w1', '--subject', 'red \u001b[31m text', '--body', 'b'], 2, 'VALIDATION', /--subject/],
    ['DEL', ['send', '--to', 'w1', '--subject', 'a\u007fb', '--body', 'b'], 2, 'VALIDATION', /--subject/],
    ['whitespace only', ['send', '--to', 'w1', '--subject', '   ', '--body', 'b'], 2, 'VALIDATION', /--subject: must not be empty/],
    ['501 characters', ['send', '--to', 'w1', '--subject', 's'.repeat(501), '--body', 'b'], 2, 'VALIDATION', /--subject: must be at most 500/],
  ]);
});

describe('absurd numbers (exit 2) (slow)', () => {
  const claimWith = (flag: string, value: string): string[] => ['claim', '--agent', 'w1', '--thread', '{OPEN}', flag, value];
  runTable([
    ['--lease-seconds -5', claimWith('--lease-seconds', '-5'), 2, 'VALIDATION', /--lease-seconds: must be a whole number from 1 to 86400/],
    ['--lease-seconds=-5', ['claim', '--agent', 'w1', '--lease-seconds=-5'], 2, 'VALIDATION', /--lease-seconds/],
    ['--lease-seconds 1e12', claimWith('--lease-seconds', '1e12'), 2, 'VALIDATION', /--lease-seconds/],
    ['--lease-seconds 0', claimWith('--lease-seconds', '0'), 2, 'VALIDATION', /--lease-seconds/],
    ['--lease-seconds 3.5', claimWith('--lease-seconds', '3.5'), 2, 'VALIDATION', /--lease-seconds/],
    ['--lease-seconds ten', claimWith('--lease-seconds', 'ten'), 2, 'VALIDATION', /--lease-seconds/],
    ['--lease-seconds 86401', claimWith('--lease-seconds', '86401'), 2, 'VALIDATION', /--lease-seconds/],
    ['--lease-seconds 0x10', claimWith('--lease-seconds', '0x10'), 2, 'VALIDATION', /--lease-seconds/],
    ['--lease-seconds Infinity', claimWith('--lease-seconds', 'Infinity'), 2, 'VALIDATION', /--lease-seconds/],
    ["--lease-seconds ''", claimWith('--lease-seconds', ''), 2, 'VALIDATION', /--lease-seconds/],
    ['--lease-seconds 9007199254740993', claimWith('--lease-seconds', '9007199254740993'), 2, 'VALIDATION', /--lease-seconds/],
    ['heartbeat --lease-seconds 0', ['heartbeat', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--lease-seconds', '0'], 2, 'VALIDATION', /--lease-seconds/],
    [
      'heartbeat --lease-seconds 86401',
      ['heartbeat', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--lease-seconds', '86401'],
      2,
      'VALIDATION',
      /--lease-seconds/,
    ],
    ['--wait-seconds -1', claimWith('--wait-seconds', '-1'), 2, 'VALIDATION', /--wait-seconds/],
    ['--wait-seconds 1.5', claimWith('--wait-seconds', '1.5'), 2, 'VALIDATION', /--wait-seconds/],
    ['--timeout-seconds 1e3', ['wait', '--thread', '{CLAIMED}', '--timeout-seconds', '1e3'], 2, 'VALIDATION', /--timeout-seconds/],
    ['--timeout-seconds -1', ['wait', '--thread', '{CLAIMED}', '--timeout-seconds', '-1'], 2, 'VALIDATION', /--timeout-seconds/],
    ['--timeout-seconds 86401', ['wait', '--thread', '{CLAIMED}', '--timeout-seconds', '86401'], 2, 'VALIDATION', /--timeout-seconds/],
    ['--limit 0', ['list', '--limit', '0'], 2, 'VALIDATION', /--limit: must be a whole number from 1 to 10000/],
    ['--limit -1', ['list', '--limit', '-1'], 2, 'VALIDATION', /--limit/],
    ['--limit 10001', ['list', '--limit', '10001'], 2, 'VALIDATION', /--limit/],
    ['show --after-message -1', ['show', '--thread', '{CLAIMED}', '--after-message', '-1'], 2, 'VALIDATION', /--after-message/],
    ['show --after-message abc', ['show', '--thread', '{CLAIMED}', '--after-message', 'abc'], 2, 'VALIDATION', /--after-message/],
    ['wait --after-message 2.0', ['wait', '--thread', '{CLAIMED}', '--after-message', '2.0', '--timeout-seconds', '0'], 2, 'VALIDATION', /--after-message/],
  ]);
});

describe('flags given twice, bad --state (exit 2) (slow)', () => {
  runTable([
    ['--agent twice (same value)', ['claim', '--agent', 'w1', '--agent', 'w1'], 2, 'VALIDATION', /--agent was given more than once/],
    ['--body twice', sendNew(['--body', 'a', '--body', 'b']), 2, 'VALIDATION', /--body was given more than once/],
    ['--lease twice', ['heartbeat', '--thread', '{CLAIMED}', '--lease', '{LEASE}', '--lease', '{LEASE}'], 2, 'VALIDATION', /--lease was given more than once/],
    ['--state twice', ['list', '--state', 'open', '--state', 'done'], 2, 'VALIDATION', /--state/],
    ['list --state bogus', ['list', '--state', 'bogus'], 2, 'VALIDATION', /--state: must be one of open, claimed, blocked, done, failed, cancelled/],
    ['list --state OPEN (case matters)', ['list', '--state', 'OPEN'], 2, 'VALIDATION', /--state/],
    ["list --state ''", ['list', '--state', ''], 2, 'VALIDATION', /--state/],
  ]);

  it('--db given twice is refused, and the message does not claim --db is missing', () => {
    const db = copyTemplate();
    const before = snapshot(db);
    const error = expectJsonError(inbox(['--db', db, '--db', db, '--json', 'list']), 2, 'USAGE');
    expect(snapshot(db)).toEqual(before);
    // Every other flag says "--X was given more than once"; --db twice is reported as missing.
    expect(error.message).toMatch(/more than once/);
  });
});

describe('not found (exit 3) (slow)', () => {
  runTable([
    ['show unknown thread', ['show', '--thread', 'th_nope'], 3, 'NOT_FOUND', /th_nope/],
    ['reply unknown thread', ['reply', '--thread', 'th_nope', '--body', 'b'], 3, 'NOT_FOUND', /th_nope/],
    ['progress unknown thread', ['progress', '--thread', 'th_nope', '--lease', '{LEASE}', '--body', 'b'], 3, 'NOT_FOUND', /th_nope/],
    ['heartbeat unknown thread', ['heartbeat', '--thread', 'th_nope', '--lease', '{LEASE}'], 3, 'NOT_FOUND'],
    ['result unknown thread', ['result', '--thread', 'th_nope', '--lease', '{LEASE}', '--body', 'b'], 3, 'NOT_FOUND'],
    ['release unknown thread', ['release', '--thread', 'th_nope', '--lease', '{LEASE}'], 3, 'NOT_FOUND'],
    ['claim --thread unknown', ['claim', '--agent', 'w1', '--thread', 'th_nope'], 3, 'NOT_FOUND'],
    ['send --thread unknown', ['send', '--thread', 'th_nope', '--body', 'b'], 3, 'NOT_FOUND'],
    ['wait on unknown thread', ['wait', '--thread', 'th_nope', '--timeout-seconds', '0'], 3, 'NOT_FOUND'],
  ]);
});

describe('conflicts (exit 4) (slow)', () => {
  runTable([
    ['result on a done thread', ['result', '--thread', '{DONE}', '--lease', '{DONE_LEASE}', '--body', 'again'], 4, 'CONFLICT', /done/],
    ['progress on a done thread', ['progress', '--thread', '{DONE}', '--lease', '{DONE_LEASE}', '--body', 'b'], 4, 'CONFLICT', /done/],
    ['fail on a done thread', ['fail', '--thread', '{DONE}', '--lease', '{DONE_LEASE}', '--body', 'b'], 4, 'CONFLICT'],
    ['release a done thread', ['release', '--thread', '{DONE}', '--lease', '{DONE_LEASE}'], 4, 'CONFLICT'],
    ['reply on a done thread', ['reply', '--thread', '{DONE}', '--body', 'too late'], 4, 'CONFLICT', /done/],
    ['send --thread to a done thread', ['send', '--thread', '{DONE}', '--body', 'b'], 4, 'CONFLICT', /done/],
    ['claim --thread assigned to another agent', ['claim', '--agent', 'w1', '--thread', '{OTHER}'], 4, 'CONFLICT', /assigned to w2/],
    ['claim --thread of a done thread', ['claim', '--agent', 'w2', '--thread', '{DONE}'], 4, 'CONFLICT', /done/],
    ['send --thread with --to of another agent', ['send', '--thread', '{OPEN}', '--to', 'w2', '--body', 'b'], 4, 'CONFLICT', /assigned to w1/],
  ]);
});

describe('lease lost (exit 5) (slow)', () => {
  runTable([
    ['progress with a wrong token', ['progress', '--thread', '{CLAIMED}', '--lease', 'ls_wrongtoken123', '--body', 'b'], 5, 'LEASE_LOST'],
    ["progress with another thread's token", ['progress', '--thread', '{CLAIMED}', '--lease', '{RECLAIMED_NEW}', '--body', 'b'], 5, 'LEASE_LOST'],
    ['heartbeat with the token from before a release', ['heartbeat', '--thread', '{RELEASED}', '--lease', '{RELEASED_OLD}'], 5, 'LEASE_LOST'],
    ['release twice with the old token', ['release', '--thread', '{RELEASED}', '--lease', '{RELEASED_OLD}'], 5, 'LEASE_LOST'],
    ['progress after release + re-claim, old token', ['progress', '--thread', '{RECLAIMED}', '--lease', '{RECLAIMED_OLD}', '--body', 'b'], 5, 'LEASE_LOST'],
    ['ask after release + re-claim, old token', ['ask', '--thread', '{RECLAIMED}', '--lease', '{RECLAIMED_OLD}', '--body', 'b'], 5, 'LEASE_LOST'],
    ['result after release + re-claim, old token', ['result', '--thread', '{RECLAIMED}', '--lease', '{RECLAIMED_OLD}', '--body', 'b'], 5, 'LEASE_LOST'],
    ['heartbeat after release + re-claim, old token', ['heartbeat', '--thread', '{RECLAIMED}', '--lease', '{RECLAIMED_OLD}'], 5, 'LEASE_LOST'],
    ['wait --lease with the old token', ['wait', '--thread', '{RECLAIMED}', '--lease', '{RECLAIMED_OLD}', '--timeout-seconds', '0'], 5, 'LEASE_LOST'],
  ]);

  it('progress after the lease expired (exit 5, nothing written)', async () => {
    const { db } = initDb();
    const id = ok(db, ['send', '--to', 'w9', '--subject', 'short', '--body', 'b']).thread.id as string;
    const token = ok(db, ['claim', '--agent', 'w9', '--lease-seconds', '1']).lease.token as string;
    await new Promise((r) => setTimeout(r, 1200));
    refuse(db, ['progress', '--thread', id, '--lease', token, '--body', 'late'], 5, 'LEASE_LOST', /expired/);
    refuse(db, ['heartbeat', '--thread', id, '--lease', token], 5, 'LEASE_LOST', /expired/);
  });
});

// ---------------------------------------------------------------------------------------------
// --db pointing at things that are not an inbox database (exit 6).

function foreignDb(): { dir: string; file: string } {
  const dir = tempDir();
  const file = freshDb(dir, 'other.db');
  rawSql(file, "create table notes (id integer primary key, text text); insert into notes (id, text) values (1, 'keep me');");
  return { dir, file };
}

describe('--db that is not usable (exit 6) (slow)', () => {
  sqliteOnly.it('a directory is not a file', 'a directory: every command (init included) exits 6 and creates nothing inside it', () => {
    const dir = tempDir();
    const target = path.join(dir, 'a-dir');
    fs.mkdirSync(target);
    for (const args of [['list'], ['init'], ['send', '--to', 'w1', '--subject', 's', '--body', 'b']]) {
      expectJsonError(inbox(['--db', target, '--json', ...args]), 6, 'DB_CANNOT_OPEN', /directory/);
    }
    expect(fs.readdirSync(target)).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual(['a-dir']);
  });

  sqliteOnly.it('a text file in place of the database file', 'a text file: exits 6 (init too) and the bytes are unchanged, no side files', () => {
    const dir = tempDir();
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'just some text, not a database\n'.repeat(50));
    const before = dirState(dir);
    for (const args of [['list'], ['claim', '--agent', 'w1'], ['send', '--to', 'w1', '--subject', 's', '--body', 'b'], ['init']]) {
      expectJsonError(inbox(['--db', file, '--json', ...args]), 6, 'DB_NOT_A_DATABASE', /not a SQLite database/);
    }
    expect(dirState(dir)).toEqual(before);
  });

  it('a missing file (on PostgreSQL, schema) for a non-init command: exits 6, mentions init, and the file is not created', () => {
    const dir = tempDir();
    const file = freshDb(dir, 'nothing-here.db');
    for (const args of [['list'], ['claim', '--agent', 'w1'], ['send', '--to', 'w1', '--subject', 's', '--body', 'b'], ['show', '--thread', 'th_1']]) {
      const error = expectJsonError(inbox(['--db', file, '--json', ...args]), 6, 'DB_MISSING');
      expect(error.message).toMatch(/\binit\b/);
      expect(error.message).toContain(onPostgres ? schemaOf(file) : file);
    }
    expect(dbExists(file)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  sqliteOnly.it('a directory of the file path', 'init in a directory that does not exist: exits 6 and creates nothing', () => {
    const dir = tempDir();
    const file = path.join(dir, 'no-such-dir', 'coord.db');
    expectJsonError(inbox(['--db', file, '--json', 'init']), 6, 'DB_CANNOT_OPEN', /does not exist/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("another program's SQLite file: non-init commands exit 6 mentioning init; rows and bytes unchanged", () => {
    const { dir, file } = foreignDb();
    const before = snapshot(file);
    const files = dirState(dir);
    for (const args of [['list'], ['claim', '--agent', 'w1'], ['send', '--to', 'w1', '--subject', 's', '--body', 'b'], ['show', '--thread', 'th_1']]) {
      const error = expectJsonError(inbox(['--db', file, '--json', ...args]), 6, 'DB_NOT_INITIALISED');
      expect(error.message).toMatch(/\binit\b/);
    }
    expect(snapshot(file)).toEqual(before);
    expect(dirState(dir)).toEqual(files);
  });

  it("another program's SQLite file: init exits 6 and adds no tables", () => {
    const { file } = foreignDb();
    const before = snapshot(file);
    const error = expectJsonError(inbox(['--db', file, '--json', 'init']), 6, 'DB_FOREIGN', /notes/);
    expect(error.details).toEqual({ tables: ['notes'] });
    expect(snapshot(file)).toEqual(before);
    expect(tableNames(file)).toEqual(['notes']);
    expect(rows(file, 'select text from notes')).toEqual([{ text: 'keep me' }]);
  });

  sqliteOnly.it(
    'the bytes and journal mode of a file',
    "another program's SQLite file: a refused init leaves the file's bytes (and journal mode) unchanged",
    () => {
      const { dir, file } = foreignDb();
      const bytes = fs.readFileSync(file);
      expect([bytes[18], bytes[19]]).toEqual([1, 1]); // rollback journal, as the other program made it
      expectJsonError(inbox(['--db', file, '--json', 'init']), 6, 'DB_FOREIGN');
      const after = fs.readFileSync(file);
      // Header bytes 18-19 are 2 when the file has been switched to WAL mode.
      expect([after[18], after[19]], 'journal mode of the foreign file changed').toEqual([1, 1]);
      expect(after.equals(bytes)).toBe(true);
      expect(fs.readdirSync(dir)).toEqual(['other.db']);
    },
  );
});
