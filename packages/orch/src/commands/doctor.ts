import { ExitCode, defineCommand, doctorText, idSchema } from '@orch/store';
import path from 'node:path';
import { z } from 'zod';
import { orchDoctor } from '../doctor.ts';

export const command = defineCommand({
  name: 'doctor',
  summary: 'Check the database, every run, attempt and worktree; --repair fixes what is safe',
  description:
    'Runs everything `inbox doctor` checks (SQLite integrity, foreign keys, leases), then for each run (or --run): event ' +
    "numbers without gaps, at most one live attempt per task and none but its newest, every attempt's thread exists, each task's state agrees " +
    "with its latest attempt and latest event, the run's state agrees with its tasks, leases that ran out on live attempts, " +
    'code-mode worktrees that are gone, and worktrees, directories, branches and stale dispatch markers ' +
    '(<worktree>.dispatch, naming a dead process) under the workspace roots that no attempt owns (left by an interrupted dispatch; --repo-path adds a repository no attempt names yet; ' +
    'what another orch database marked as its own is left out, an unmarked one is reported and kept), and leftover ' +
    '<worktree>.report.md files and empty <run>/<task>/ folders. ' +
    '--repair fixes only what is safe: it reconciles, cancels live attempts a newer attempt replaced, closes a live ' +
    'attempt whose thread is gone (failed, so the task can be retried), settles a finished run (never while an error ' +
    'of the run is left), removes orphaned worktrees at least a ' +
    'minute old that this database marked and that hold no work, empty orphaned directories and orphaned branches whose ' +
    'commits are on other branches, report files of cleaned-up attempts and folders empty for a minute, ' +
    'and marks each problem it fixed. It never removes anything that holds work. Exits 4 when an error is left, 0 ' +
    'otherwise (warnings alone are fine).',
  flags: {
    run: { type: 'string', describe: 'Only this run (default: every run)' },
    repair: { type: 'boolean', describe: 'Fix what is safe to fix' },
    'repo-path': { type: 'string', describe: 'Also look for orphaned worktrees of this repository' },
  },
  examples: ['--db ./coord.db doctor', '--db ./coord.db --json doctor --run blog_mvp_001 --repair'],
  input: z.object({
    run: idSchema.optional(),
    repair: z.boolean().optional(),
    repoPath: z.string().min(1, 'must not be empty').optional(),
  }),
  run: (ctx, input) =>
    orchDoctor({
      path: ctx.dbPath,
      runId: input.run,
      repair: input.repair === true,
      repoPath: input.repoPath === undefined ? undefined : path.resolve(ctx.cwd, input.repoPath),
      clock: ctx.clock,
      nativeBinding: ctx.nativeBinding,
    }),
  text: doctorText,
  exitCode: (r) => (r.ok ? ExitCode.ok : ExitCode.conflict),
});
