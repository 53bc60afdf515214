import { defineCommand } from '@orch/store';
import { ask } from '../leases.ts';
import { leasedBodyInput, leasedFlags, payloadFlag, runPost } from './shared.ts';

export const askInput = leasedBodyInput;

export const command = defineCommand({
  name: 'ask',
  summary: 'Ask a blocking question; the thread becomes blocked until someone replies',
  description:
    'Posts a question and marks the thread blocked (also extends your lease). Then run `inbox wait --thread ID --lease TOKEN` ' +
    'to block until the answer arrives; wait keeps the lease alive meanwhile.',
  flags: { ...leasedFlags, body: { type: 'string', describe: 'The question', required: true }, 'payload-json': payloadFlag },
  examples: ['--db ./coord.db --json ask --thread th_123 --lease ls_abc --body "Keep the v1 API or drop it?"'],
  input: askInput,
  run: runPost(ask),
  text: (r) =>
    `question #${r.message.id} posted; thread ${r.thread.id} is blocked until a reply.\n` +
    `Wait for it with: inbox --db PATH wait --thread ${r.thread.id} --lease ${r.lease?.token ?? 'TOKEN'} --after-message ${r.message.id}`,
});
