// The MCP SDK is only for `orch mcp` and `inbox mcp`: the bundled CLIs keep it in a file of its own
// beside them (mcp-sdk.cjs, scripts/build.mjs), and no other call, --help included, may read it
// (CLI start-up must not pay for it). Real processes on copies of the built folders.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers.ts';

const MARK = 'mcp-sdk-was-loaded';

/** Copies packages/<pkg>/dist into `dir`/<pkg> with a tripwire in place of its mcp-sdk.cjs. */
function copyDist(dir: string, pkg: 'inbox' | 'orch', sdk: 'absent' | 'tripwire'): string {
  const to = path.join(dir, pkg);
  fs.cpSync(path.join(ROOT, 'packages', pkg, 'dist'), to, { recursive: true });
  const file = path.join(to, 'mcp-sdk.cjs');
  expect(fs.existsSync(file), `the build puts mcp-sdk.cjs beside ${pkg}.cjs`).toBe(true);
  if (sdk === 'absent') fs.rmSync(file);
  else fs.writeFileSync(file, `require('node:fs').writeFileSync(require('node:path').join(__dirname, '${MARK}'), ''); throw new Error('tripwire sdk');\n`);
  return path.join(to, `${pkg}.cjs`);
}

function run(bin: string, args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', input: '', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('the MCP SDK loads only for the mcp commands (slow)', () => {
  it('no other call reads mcp-sdk.cjs; `mcp` does, and without it fails with one clear line', () => {
    const dir = tempDir();
    const inbox = copyDist(dir, 'inbox', 'tripwire');
    const orch = copyDist(dir, 'orch', 'tripwire');
    const db = path.join(dir, 'coord.db');
    for (const [bin, args] of [
      [inbox, ['--help']],
      [inbox, ['mcp', '--help']],
      [orch, ['--help']],
      [inbox, ['--db', db, 'init']],
      [inbox, ['--db', db, 'send', '--to', 'w', '--subject', 's', '--body', 'b']],
      [inbox, ['--db', db, '--json', 'claim', '--agent', 'w']],
      [orch, ['--db', db, 'run', 'init', '--run', 'r', '--goal', 'g']],
      [orch, ['--db', db, '--json', 'status', '--run', 'r']],
    ] as const) {
      const r = run(bin, [...args], dir);
      expect(r.code, `${path.basename(bin)} ${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    expect(fs.existsSync(path.join(dir, 'inbox', MARK))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'orch', MARK))).toBe(false);
    // The tripwire works: `mcp` trips it and fails cleanly, with nothing on stdout.
    for (const [bin, args] of [
      [inbox, ['--db', db, 'mcp', '--agent', 'w']],
      [orch, ['--db', db, 'mcp']],
    ] as const) {
      const r = run(bin, [...args], dir);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/the MCP server cannot load \(tripwire sdk\); copy the whole folder/);
    }
    expect(fs.existsSync(path.join(dir, 'inbox', MARK))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'orch', MARK))).toBe(true);
  });

  it('without mcp-sdk.cjs, `inbox mcp` says what is missing', () => {
    const dir = tempDir();
    const inbox = copyDist(dir, 'inbox', 'absent');
    const db = path.join(dir, 'coord.db');
    expect(run(inbox, ['--db', db, 'init'], dir).code).toBe(0);
    const r = run(inbox, ['--db', db, 'mcp', '--agent', 'w'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the MCP server cannot load .*mcp-sdk\.cjs belongs beside it/);
  });
});

describe('the MCP servers from a copy of the skills (slow)', () => {
  it('serve their tools with no node_modules anywhere above them', async () => {
    const dir = fs.realpathSync(tempDir('orch-mcp-skills-'));
    for (let d = dir; ; d = path.dirname(d)) {
      expect(fs.existsSync(path.join(d, 'node_modules')), d).toBe(false);
      if (path.dirname(d) === d) break;
    }
    for (const skill of ['orch', 'inbox']) fs.cpSync(path.join(ROOT, 'skills', skill), path.join(dir, skill), { recursive: true });
    const db = path.join(dir, 'coord.db');
    expect(run(path.join(dir, 'inbox/assets/inbox'), ['--db', db, 'init'], dir).code).toBe(0);
    for (const [bin, args, tool] of [
      ['orch/assets/orch', ['--db', db, 'mcp'], 'plan'],
      ['inbox/assets/inbox', ['--db', db, 'mcp', '--agent', 'w'], 'claim'],
    ] as const) {
      const env = { PATH: path.dirname(process.execPath), HOME: dir };
      const client = new Client({ name: 'mcp-skills-test', version: '1.0.0' });
      await client.connect(new StdioClientTransport({ command: process.execPath, args: [path.join(dir, bin), ...args], cwd: dir, env, stderr: 'pipe' }));
      try {
        expect((await client.listTools()).tools.map((t) => t.name)).toContain(tool);
      } finally {
        await client.close();
      }
    }
  });
});
