import { EXIT_CODES_HELP, VERSION, type CliSpec } from '@orch/store';
import type { ClaimResult, PostResult } from './leases.ts';
import type { SendResult, ShowResult } from './threads.ts';
import type { WaitResult } from './waiting.ts';
import type { WorkResult } from './work-options.ts';
import { inboxMcp } from './mcp/tools.ts';

/** `show` from just before the first of `messages` (none: nothing to see again). */
function since(threadId: string, messages: { id: number }[]): string | undefined {
  const first = messages[0];
  return first === undefined ? undefined : `show --thread ${threadId} --after-message ${first.id - 1}`;
}

export const inboxCli: CliSpec = {
  program: 'inbox',
  version: VERSION,
  about:
    'inbox: the worker side of orch. Threads of messages are assigned to agents; a worker claims a thread\n' +
    'with a lease, posts progress, asks blocking questions and waits for answers, then posts a result.\n' +
    'Start with `inbox --db PATH init`; every command takes --db PATH, and --json for scripts.',
  epilogue: EXIT_CODES_HELP,
  afterCommit: {
    send: (r: SendResult) => `show --thread ${r.thread.id}`,
    reply: (r: SendResult) => `show --thread ${r.thread.id} --after-message ${r.message.id - 1}`,
    claim: (r: ClaimResult) => (r.claimed ? `show --thread ${r.thread.id}` : undefined),
    progress: (r: PostResult) => `show --thread ${r.thread.id} --after-message ${r.message.id - 1}`,
    ask: (r: PostResult) => `show --thread ${r.thread.id} --after-message ${r.message.id - 1}`,
    result: (r: PostResult) => `show --thread ${r.thread.id} --after-message ${r.message.id - 1}`,
    fail: (r: PostResult) => `show --thread ${r.thread.id} --after-message ${r.message.id - 1}`,
    release: (r: { thread: { id: string } }) => `show --thread ${r.thread.id}`,
    work: (r: WorkResult) => (r.handled.length > 0 ? `list --agent ${r.agent}` : undefined),
    // With --lease these advance the lease's delivery mark: what they returned counts as given.
    wait: (r: WaitResult, input: { lease?: string }) => (input.lease === undefined ? undefined : since(r.thread.id, r.messages)),
    show: (r: ShowResult, input: { lease?: string }) => (input.lease === undefined ? undefined : since(r.thread.id, r.messages)),
  },
  // The worker's MCP tools: the commands with an `mcp` tool name below (`inbox mcp`).
  mcp: inboxMcp,
  commands: [
    { name: 'init', load: () => import('./commands/init.ts').then((m) => m.command) },
    { name: 'send', load: () => import('./commands/send.ts').then((m) => m.command) },
    { name: 'list', load: () => import('./commands/list.ts').then((m) => m.command) },
    { name: 'show', mcp: 'show', load: () => import('./commands/show.ts').then((m) => m.command) },
    { name: 'claim', mcp: 'claim', load: () => import('./commands/claim.ts').then((m) => m.command) },
    { name: 'heartbeat', mcp: 'heartbeat', load: () => import('./commands/heartbeat.ts').then((m) => m.command) },
    { name: 'progress', mcp: 'post', load: () => import('./commands/progress.ts').then((m) => m.command) },
    { name: 'ask', mcp: 'post', load: () => import('./commands/ask.ts').then((m) => m.command) },
    { name: 'reply', load: () => import('./commands/reply.ts').then((m) => m.command) },
    { name: 'wait', mcp: 'wait', load: () => import('./commands/wait.ts').then((m) => m.command) },
    { name: 'result', mcp: 'post', load: () => import('./commands/result.ts').then((m) => m.command) },
    { name: 'fail', mcp: 'post', load: () => import('./commands/fail.ts').then((m) => m.command) },
    { name: 'release', mcp: 'release', load: () => import('./commands/release.ts').then((m) => m.command) },
    { name: 'work', load: () => import('./commands/work.ts').then((m) => m.command) },
    { name: 'doctor', load: () => import('./commands/doctor.ts').then((m) => m.command) },
    { name: 'copy', load: () => import('./commands/copy.ts').then((m) => m.command) },
    { name: 'mcp', load: () => import('./commands/mcp.ts').then((m) => m.command) },
  ],
};
