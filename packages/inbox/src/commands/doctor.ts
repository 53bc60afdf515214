import { ExitCode, defineCommand, doctorText } from '@orch/store';
import { z } from 'zod';
import { inboxDoctor } from '../doctor.ts';

export const doctorInput = z.object({ repair: z.boolean().optional() });

export const command = defineCommand({
  name: 'doctor',
  summary: "Check the database file and every thread's lease; --repair fixes what is safe",
  description:
    "Runs SQLite's integrity and foreign-key checks, checks the journal mode and schema version, and the inbox's rules: " +
    'every claimed or blocked thread has a whole lease (a blocked one released with its question pending has none), no open ' +
    'or finished thread keeps a lease token, every thread has ' +
    'its first message, a blocked thread has a question pending. Lists expired leases (warnings: the thread is claimable ' +
    'again). --repair fixes only what is safe (WAL mode, an outdated schema, a broken or stray lease, a blocked thread with ' +
    'nothing to wait for), never deletes anything, and marks each problem it fixed. Exits 4 when an error is left, 0 ' +
    'otherwise (warnings alone are fine). For runs, attempts and worktrees use `orch doctor`.',
  flags: { repair: { type: 'boolean', describe: 'Fix what is safe to fix' } },
  examples: ['--db ./coord.db doctor', '--db ./coord.db --json doctor --repair'],
  input: doctorInput,
  run: (ctx, input) => inboxDoctor({ path: ctx.dbPath, repair: input.repair === true, clock: ctx.clock, nativeBinding: ctx.nativeBinding }),
  text: doctorText,
  exitCode: (r) => (r.ok ? ExitCode.ok : ExitCode.conflict),
});
