import { useEffect, useState } from 'preact/hooks';
import { isLeader, type Me } from './api.ts';
import { useBlocked } from './blocked-query.tsx';
import { type LiveState, liveState, onLiveState } from './changes.ts';
import { Button } from './components.tsx';
import type { Route } from './router.ts';
import { useRoute } from './router.ts';

function section(route: Route): string {
  if (route.page === 'blocked' || route.page === 'work') return route.page;
  return 'runs';
}

/** The bar on every page: Runs, Blocked (pending questions), My work, the live indicator, who, Sign out. */
export function Nav({ me, onSignOut, signedInWithToken }: { me: Me; onSignOut(): void; signedInWithToken: boolean }) {
  const here = section(useRoute());
  const leader = isLeader(me);
  const blocked = useBlocked();
  const pending = blocked.data?.tasks.filter((t) => t.question).length;
  const current = (s: string) => (here === s ? 'page' : undefined);
  return (
    <header class="nav">
      <nav aria-label="Board">
        <a class="brand" href="#/">
          orch
        </a>
        {leader ? (
          <>
            <a href="#/" aria-current={current('runs')}>
              Runs
            </a>
            <a href="#/blocked" aria-current={current('blocked')}>
              Blocked{' '}
              <span class={`count ${pending ? 'count-alert' : ''}`} data-testid="blocked-count" title="Pending questions">
                {pending ?? '–'}
              </span>
            </a>
          </>
        ) : null}
        <a href="#/work" aria-current={current('work')}>
          My work
        </a>
      </nav>
      <div class="nav-end">
        <Live />
        <span class="who" title={me.kind === 'local' ? 'The local user (no token)' : `${me.name ?? ''} (${me.role ?? ''})`}>
          {me.kind === 'local' ? 'local' : `${me.name ?? 'token'} · ${me.role ?? ''}`}
        </span>
        <Button data-testid="signout" onClick={onSignOut} title={signedInWithToken ? 'Forget the token in this tab' : 'No token is stored in this tab'}>
          Sign out
        </Button>
      </div>
    </header>
  );
}

/** Whether the change stream is open: the page is live (`connected`) or catching up (`reconnecting`). */
function Live() {
  const [state, setState] = useState<LiveState>(liveState());
  useEffect(() => {
    setState(liveState());
    return onLiveState(setState);
  }, []);
  const connected = state === 'connected';
  return (
    <span
      class={`live ${connected ? 'live-on' : 'live-off'}`}
      data-testid="live"
      data-state={connected ? 'connected' : 'reconnecting'}
      role="status"
      title={connected ? 'Live: the page follows every change' : 'Reconnecting to the change stream'}
    >
      <span class="dot" aria-hidden="true" />
      {connected ? 'live' : state === 'connecting' ? 'connecting…' : 'reconnecting…'}
    </span>
  );
}
