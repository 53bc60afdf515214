import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { INBOX_SKILL_BIN, ROOT, tempDir } from './helpers.ts';

describe('what the set-up command leaves behind (slow)', () => {
  it('`npx inbox --help` works from the repository root', () => {
    const r = spawnSync('npx', ['--no-install', 'inbox', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('inbox claim');
    expect(r.stdout).toContain('Exit codes');
  });

  it('the skill asset is an executable bundle that works from a copy outside the repository', () => {
    expect(fs.statSync(INBOX_SKILL_BIN).mode & 0o111).not.toBe(0);
    const dir = tempDir();
    fs.cpSync(path.join(ROOT, 'skills/inbox'), path.join(dir, 'inbox'), { recursive: true });
    // A package.json that says "module" around the copy must not change how the asset loads.
    fs.writeFileSync(path.join(dir, 'package.json'), '{"type": "module"}');
    const bin = path.join(dir, 'inbox/assets/inbox');
    const db = path.join(dir, 'coord.db');
    const init = spawnSync(bin, ['--db', db, '--json', 'init'], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(init.status, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout).schema_version).toEqual({ inbox: 4 });
    const send = spawnSync(bin, ['--db', db, '--json', 'send', '--to', 'w', '--subject', 's', '--body', 'b'], { cwd: dir, encoding: 'utf8' });
    expect(send.status, send.stderr).toBe(0);
  });

  it('each executable runs its bundle from a code cache this Node accepts, and without one when the cache does not match', () => {
    for (const bin of ['packages/inbox/dist/inbox.cjs', 'packages/orch/dist/orch.cjs', 'skills/inbox/assets/inbox', 'skills/orch/assets/orch-worker-brief']) {
      const file = path.join(ROOT, bin);
      const source = fs.readFileSync(`${file}.bundle`, 'utf8');
      const cache = fs.readFileSync(`${file}.v8cache`);
      const id = source.slice(2, source.indexOf('\n'));
      expect(id, bin).toMatch(/^[0-9a-f]{24}$/);
      expect(cache.toString('latin1', cache.length - id.length), bin).toBe(id);
      const script = new vm.Script(source, { filename: `${file}.bundle`, cachedData: cache.subarray(0, cache.length - id.length) });
      expect(script.cachedDataRejected, bin).toBe(false);
    }
    const dir = tempDir();
    fs.cpSync(path.join(ROOT, 'skills/inbox'), path.join(dir, 'inbox'), { recursive: true });
    const bin = path.join(dir, 'inbox/assets/inbox');
    const runs = () => spawnSync(bin, ['--db', path.join(dir, 'x.db'), '--json', 'init'], { cwd: dir, encoding: 'utf8' });
    fs.writeFileSync(`${bin}.v8cache`, 'not a cache of this bundle');
    expect(runs().status, runs().stderr).toBe(0);
    fs.rmSync(`${bin}.v8cache`);
    expect(runs().status).toBe(0);
    fs.rmSync(`${bin}.bundle`);
    const lone = runs();
    expect(lone.status).toBe(1);
    expect(lone.stderr).toContain('inbox.bundle (ENOENT); copy the whole folder');
  });

  it('the demo runs to the end and says so', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/demo.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 55_000 });
    expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
    const out = r.stdout;
    // The story: a diamond of four tasks, a code and an analysis dispatch, each attempt's worker run
    // by `inbox work` (five runners: D runs twice), whose command is a scripted agent.
    expect(out).toContain('--execution-mode code');
    expect(out).toContain('--execution-mode analysis');
    expect(out).toContain('leader$ orch-worker-brief');
    const runners = out.match(/^worker\$ inbox --db coord\.db work --agent \w+ --once .* -- node .+ --agent-step$/gm) ?? [];
    expect(runners.map((l) => /--agent (\w+)/.exec(l)?.[1])).toEqual(['planner', 'coder', 'reviewer', 'writer', 'writer']);
    for (const agent of ['planner', 'coder', 'reviewer', 'writer']) expect(out).toMatch(new RegExp(`^  \\[inbox work, ${agent}\\] claimed th_`, 'm'));
    // The agents report through "$INBOX_BIN" themselves (progress, ask + wait, result) or let the runner do it.
    for (const step of ['progress', 'ask', 'wait', 'result'])
      expect(out).toMatch(new RegExp(`^\\w+\\$ "\\$INBOX_BIN" --db "\\$INBOX_DB" ${step} --thread "\\$INBOX_THREAD_ID" --lease "\\$INBOX_LEASE"`, 'm'));
    expect(out).toMatch(/\(reviewer\) woke with the answer from leader: "Take a name, defaulting to 'world'\."/);
    expect(out).toMatch(/^coder\$ git add greet\.js && git commit -m 'Add a greeting module'$/m);
    // The runner's outcomes: the result it posted, the result the reviewer posted itself, the failure of D's attempt 1.
    expect(out).toMatch(/^ {2}-> inbox work \(planner\) exited 0: th_\w+ done: the runner posted the result$/m);
    expect(out).toMatch(/^ {2}-> inbox work \(reviewer\) exited 0: th_\w+ posted: the command's own result stands$/m);
    expect(out).toMatch(/^ {2}-> inbox work \(writer\) exited 4: th_\w+ failed: the runner posted the exit status and stderr as the failure$/m);
    expect(out).toMatch(/D failed: "The command exited with status 1\. End of its stderr: make-changelog: crashed/);
    // The leader follows it with orch wait and reacts: answer, retry, merge, cleanup.
    for (const cmd of ['wait', 'blocked', 'answer', 'retry', 'diff', 'merge', 'cleanup', 'status'])
      expect(out).toMatch(new RegExp(`^leader\\$ orch --db coord\\.db ${cmd} `, 'm'));
    for (const event of ['task_blocked B', 'task_failed D', 'task_done A', 'run_done']) expect(out).toContain(event);
    expect(out).toMatch(/merged orch\/demo\/A\/1 into main/);
    expect(out).toMatch(/run demo \[done\]/);
    expect(out).toMatch(/D +added \(after A, B\) .*failed -> retry: attempt 2 .*-> done/);
    expect(out).toContain('is done');
    expect(out.trim().endsWith('demo: ok')).toBe(true);
    expect(r.stderr).toBe('');
  });
});
