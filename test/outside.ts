import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { ROOT, type CliRun } from './helpers.ts';

/**
 * The adversarial suites (`test/adversarial-*.test.ts`) attack the built executables from outside:
 * the skill folders are copied out of the repository once per test file, so nothing they do can
 * lean on the source tree or on node_modules above them.
 */
let copied: { dir: string; inbox: string; orch: string; brief: string } | undefined;

/** The copied executables (made on first use, removed after the file's tests). */
export function outside(): { dir: string; inbox: string; orch: string; brief: string } {
  if (copied) return copied;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-outside-'));
  fs.cpSync(path.join(ROOT, 'skills'), path.join(dir, 'skills'), { recursive: true });
  copied = {
    dir,
    inbox: path.join(dir, 'skills/inbox/assets/inbox'),
    orch: path.join(dir, 'skills/orch/assets/orch'),
    brief: path.join(dir, 'skills/orch/assets/orch-worker-brief'),
  };
  return copied;
}

afterAll(() => {
  if (copied) fs.rmSync(copied.dir, { recursive: true, force: true });
  copied = undefined;
});

/** Environment for the copied executables: no colour, no NODE_OPTIONS from the test runner. */
export function outsideEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

/** Runs a copied executable (`inbox`, `orch` or `brief`) synchronously. */
export function run(
  which: 'inbox' | 'orch' | 'brief',
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): CliRun {
  const r = spawnSync(outside()[which], args, {
    cwd: options.cwd ?? outside().dir,
    encoding: 'utf8',
    env: outsideEnv(options.env),
    input: options.input,
    timeout: options.timeoutMs ?? 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Runs a copied executable asynchronously (for races); resolves when it exits. */
export function runAsync(which: 'inbox' | 'orch' | 'brief', args: string[], options: SpawnOptions & { env?: Record<string, string> } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(outside()[which], args, {
      ...options,
      cwd: options.cwd ?? outside().dir,
      env: outsideEnv(options.env as Record<string, string> | undefined),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
