import { useState } from 'preact/hooks';
import { useAction, useMe, useQuery } from './api.ts';
import { Button, Empty, ErrorText, Field, Loading, StateBadge, Time } from './components.tsx';
import { ThreadPanel } from './task-thread.tsx';
import type { Lease, Message, Thread } from './task-types.ts';
import { type Beat, type Gone, useLeases } from './work-lease-keeper.tsx';
import { type HeldLease, rememberAgent, rememberedAgent } from './work-leases.ts';
import { HeldThread } from './work-thread.tsx';

const FINISHED = new Set(['done', 'failed', 'cancelled']);

interface ClaimDoc {
  claimed: boolean;
  thread?: Thread;
  messages?: Message[];
  lease?: Lease;
}

/**
 * `#/work`: a person working as an agent. The threads assigned to the agent name (fixed to the
 * token's agent for a worker token), Claim on an open one, and for a claimed one its messages and
 * the worker's forms. The leases are kept alive by the signed-in app (LeaseProvider) while the tab
 * is open on any page; this page shows their state.
 */
export function WorkPage() {
  const me = useMe();
  const fixed = me.kind === 'token' && me.role === 'worker' ? (me.agent ?? '') : undefined;
  const [typed, setTyped] = useState(rememberedAgent);
  const agent = (fixed ?? typed).trim();
  const { held: leases, beats, gone, hold, end, check } = useLeases();
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [leaseSeconds, setLeaseSeconds] = useState('');
  const list = useQuery<{ threads: Thread[] }>('inbox/list', agent === '' ? undefined : { agent });
  const claim = useAction<ClaimDoc>();

  const held = Object.keys(leases).filter((id) => leases[id]?.agent === agent);
  const current = selected ?? held[0];

  async function doClaim(thread: string) {
    const input: Record<string, unknown> = { agent, thread };
    if (leaseSeconds.trim() !== '') input.leaseSeconds = leaseSeconds.trim();
    const r = await claim.run('inbox/claim', input);
    if (r?.claimed && r.lease) {
      hold(thread, { ...r.lease, agent });
      setSelected(thread);
      list.reload();
    } else if (r) {
      end(thread, { done: 'Nothing was claimed: the thread is no longer open.' });
    }
  }
  function onGone(thread: string, why: Gone) {
    end(thread, why);
    list.reload();
  }

  return (
    <main class="page work-page" data-testid="work-page">
      <div class="page-head">
        <h1>My work</h1>
        <span class="muted">Work as an agent: claim a thread, report, ask, and post the result.</span>
      </div>
      <form class="controls agent-form" onSubmit={(e) => e.preventDefault()}>
        <Field
          label="Agent"
          name="agent"
          value={fixed ?? typed}
          readOnly={fixed !== undefined}
          hint={fixed !== undefined ? 'Fixed by your token.' : 'Remembered in this browser.'}
          autocomplete="off"
          placeholder="the agent name you work as"
          onInput={(e) => {
            setTyped(e.currentTarget.value);
            rememberAgent(e.currentTarget.value.trim());
            setSelected(undefined);
          }}
        />
        <Field
          label="Lease (s)"
          class="lease-field"
          name="leaseSeconds"
          type="number"
          min={1}
          max={86400}
          value={leaseSeconds}
          hint="Of a claim; 900 if empty."
          autocomplete="off"
          placeholder="900"
          onInput={(e) => setLeaseSeconds(e.currentTarget.value)}
        />
      </form>
      {agent === '' ? (
        <Empty>Type the agent name you work as to see its threads.</Empty>
      ) : list.data === undefined ? (
        list.error ? (
          <ErrorText error={list.error} />
        ) : (
          <Loading />
        )
      ) : (
        <div class="two-col">
          <div class="stack">
            <ThreadList threads={list.data.threads} leases={leases} current={current} onSelect={setSelected} onClaim={doClaim} busy={claim.busy} />
            <ErrorText error={claim.error ?? list.error} />
          </div>
          {current ? (
            <WorkDetail
              key={current}
              threadId={current}
              lease={leases[current]}
              gone={gone[current]}
              beat={beats[current]}
              onCheck={() => check(current)}
              onGone={(why) => onGone(current, why)}
            />
          ) : (
            <Empty>Select a thread to read it; claim an open one to work on it.</Empty>
          )}
        </div>
      )}
    </main>
  );
}

function WorkDetail({
  threadId,
  lease,
  gone,
  beat,
  onCheck,
  onGone,
}: {
  threadId: string;
  lease: HeldLease | undefined;
  gone: Gone | undefined;
  beat: Beat | undefined;
  onCheck: () => void;
  onGone: (why: Gone) => void;
}) {
  return (
    <section class="card" aria-label="Thread">
      {gone?.lost && (
        <div class="lease-lost" data-testid="lease-lost" role="alert">
          <strong>Lease lost.</strong> This page no longer holds the thread: stop working on it. Claim it again if it is open.
          <ErrorText error={gone.lost} />
        </div>
      )}
      {gone?.done && (
        <p class="ok" role="status">
          {gone.done}
        </p>
      )}
      {lease ? <HeldThread threadId={threadId} lease={lease} beat={beat} onCheck={onCheck} onGone={onGone} /> : <ThreadPanel threadId={threadId} />}
    </section>
  );
}

function ThreadList({
  threads,
  leases,
  current,
  onSelect,
  onClaim,
  busy,
}: {
  threads: Thread[];
  leases: Record<string, HeldLease>;
  current: string | undefined;
  onSelect: (id: string) => void;
  onClaim: (id: string) => void;
  busy: boolean;
}) {
  if (threads.length === 0) return <Empty>No threads are assigned to this agent yet.</Empty>;
  const active = threads.filter((t) => !FINISHED.has(t.state));
  const finished = threads.filter((t) => FINISHED.has(t.state));
  const row = (t: Thread) => {
    const mine = leases[t.id] !== undefined;
    const claimable = (t.state === 'open' || t.lease_expired) && !mine;
    return (
      <li key={t.id} class={t.id === current ? 'item selected' : 'item'} data-testid="work-thread" data-thread={t.id} data-state={t.state}>
        <div class="item-head">
          <button type="button" class="link-button" aria-pressed={t.id === current} onClick={() => onSelect(t.id)}>
            {t.subject}
          </button>
          <StateBadge state={t.state} />
          {claimable && (
            <Button variant="primary" busy={busy} onClick={() => onClaim(t.id)}>
              Claim
            </Button>
          )}
        </div>
        <div class="small muted">
          <Time iso={t.created_at} />
          {mine ? ' · held by this tab' : t.claimed_by ? ` · claimed by ${t.claimed_by}` : ''}
          {t.lease_expired && ' · lease expired'}
        </div>
      </li>
    );
  };
  return (
    <div class="stack">
      {active.length === 0 ? <Empty>Nothing open for this agent right now.</Empty> : <ul class="items">{active.map(row)}</ul>}
      {finished.length > 0 && (
        <details>
          <summary>Finished ({finished.length})</summary>
          <ul class="items">{finished.map(row)}</ul>
        </details>
      )}
    </div>
  );
}
