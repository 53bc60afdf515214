import { defineCommand } from '@orch/store';
import { progress } from '../leases.ts';
import { leasedBodyInput, leasedFlags, payloadFlag, runPost } from './shared.ts';

export const progressInput = leasedBodyInput;

export const command = defineCommand({
  name: 'progress',
  summary: 'Post a progress note (also extends your lease)',
  flags: { ...leasedFlags, body: { type: 'string', describe: 'What happened', required: true }, 'payload-json': payloadFlag },
  examples: ['--db ./coord.db --json progress --thread th_123 --lease ls_abc --body "Parsed 3 of 5 logs"'],
  input: progressInput,
  run: runPost(progress),
  text: (r) => `progress #${r.message.id} posted on thread ${r.thread.id}; lease until ${r.lease?.expires_at ?? '-'}`,
});
