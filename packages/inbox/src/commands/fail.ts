import { defineCommand } from '@orch/store';
import { postFailure } from '../leases.ts';
import { leasedBodyInput, leasedFlags, payloadFlag, runPost } from './shared.ts';

export const failInput = leasedBodyInput;

export const command = defineCommand({
  name: 'fail',
  summary: 'Report that the work failed; the thread is failed and your lease ends',
  flags: { ...leasedFlags, body: { type: 'string', describe: 'Why it failed', required: true }, 'payload-json': payloadFlag },
  examples: ['--db ./coord.db --json fail --thread th_123 --lease ls_abc --body "The repository does not build on this branch."'],
  input: failInput,
  run: runPost(postFailure),
  text: (r) => `failure #${r.message.id} posted; thread ${r.thread.id} is failed`,
});
