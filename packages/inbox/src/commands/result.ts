import { defineCommand } from '@orch/store';
import { z } from 'zod';
import { postResult } from '../leases.ts';
import { bodyFields, bodyFlags, checkBodyChoice, leased, leasedFlags, payloadFlag, runPost } from './shared.ts';

export const resultInput = z.object({ ...leased, ...bodyFields }).superRefine(checkBodyChoice);

export const command = defineCommand({
  name: 'result',
  summary: 'Post the final result; the thread is done and your lease ends',
  flags: { ...leasedFlags, ...bodyFlags, 'payload-json': payloadFlag },
  examples: [
    '--db ./coord.db --json result --thread th_123 --lease ls_abc --body "Root cause: a race in the cache warm-up."',
    '--db ./coord.db --json result --thread th_123 --lease ls_abc --body-file report.md --payload-json \'{"tests_fixed": 4}\'',
  ],
  input: resultInput,
  run: runPost(postResult),
  text: (r) => `result #${r.message.id} posted; thread ${r.thread.id} is done`,
});
