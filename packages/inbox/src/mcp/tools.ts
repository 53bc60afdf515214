// The worker's MCP tools (`inbox mcp --agent NAME`): which inbox commands they are (the registry's
// `mcp` names in cli.ts) is said there; what MCP needs besides the commands is said here.
import type { McpSetSpec } from '@orch/store';
import { MAX_LEASE_SECONDS } from '../leases.ts';
import { MAX_MESSAGE_BYTES } from '../message-pages.ts';

/** Longest wait one tool call may make: clients give up on a call (often after 60 s). */
export const MCP_MAX_WAIT_SECONDS = 300;
/** How long a waiting tool waits when not told. */
export const MCP_DEFAULT_WAIT_SECONDS = 45;
/** Message bytes one answer carries when not told: an answer lands in the agent's context. */
export const MCP_DEFAULT_MESSAGE_BYTES = 64 * 1024;

const maxBytes = {
  default: MCP_DEFAULT_MESSAGE_BYTES,
  max: MAX_MESSAGE_BYTES,
  describe: `About this many bytes of messages at most (default ${MCP_DEFAULT_MESSAGE_BYTES}); one message is always returned`,
};

export const inboxMcp: McpSetSpec = {
  name: 'inbox',
  instructions:
    'You are one worker agent: these tools touch only threads assigned to you. Loop: claim; do the task (the first message); ' +
    'post progress now and then; when blocked post ask, then wait (timed_out: call wait again); finish with post result or ' +
    'fail. LEASE_LOST: stop working on that thread. Nothing wakes you between calls; unattended workers use `inbox work`.',
  resources: [
    {
      uriTemplate: 'inbox://threads/{thread}',
      name: 'thread',
      description: 'One of your threads and its messages (as the show tool, first page).',
      command: 'show',
    },
  ],
  tools: {
    claim: {
      description:
        'Claim your oldest open thread (or `thread`) and get a lease: {claimed, thread, messages, lease: {token}}. Pass ' +
        'lease.token as `lease` to later calls. {claimed: false} when nothing is open.',
      agentKeys: ['agent'],
      bounds: {
        waitSeconds: {
          default: 0,
          max: MCP_MAX_WAIT_SECONDS,
          describe: `Wait up to this long for a claimable thread (default 0, max ${MCP_MAX_WAIT_SECONDS})`,
        },
        maxBytes,
      },
    },
    show: {
      description: 'Read your thread, oldest first after after_message. more: true means call again with after_message = last_message_id.',
      bounds: { maxBytes },
    },
    heartbeat: { description: `Extend your lease (progress and ask extend it too; at most ${MAX_LEASE_SECONDS} s).` },
    post: {
      description:
        'Write on your claimed thread: progress (a note), ask (a blocking question; then wait for the answer), result ' +
        '(done, lease ends), fail (failed, lease ends). payload_json: a JSON object as text.',
      omit: ['bodyFile'],
    },
    wait: {
      description:
        "Wait for the leader's answer on your thread (with lease: keeps it alive). {timed_out: true}: nothing yet, call " +
        'again. LEASE_LOST: the thread was cancelled or lost, stop.',
      agentKeys: ['agent'],
      omit: ['as'],
      bounds: {
        timeoutSeconds: {
          default: MCP_DEFAULT_WAIT_SECONDS,
          max: MCP_MAX_WAIT_SECONDS,
          describe: `Give up after this long (default ${MCP_DEFAULT_WAIT_SECONDS}, max ${MCP_MAX_WAIT_SECONDS})`,
        },
        maxBytes,
      },
    },
    release: { description: 'Give your thread back unfinished: open again for you (or a fresh claim) later.' },
  },
};
