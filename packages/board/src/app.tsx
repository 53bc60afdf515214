import { useCallback, useEffect, useState } from 'preact/hooks';
import { type ApiError, ApiFailure, get, isLeader, type Me, MeContext, onUnauthorized } from './api.ts';
import { BlockedPage } from './blocked-page.tsx';
import { startChanges, stopChanges } from './changes.ts';
import { Button, Empty, ErrorText, Link, Loading } from './components.tsx';
import { Login } from './login.tsx';
import { Nav } from './nav.tsx';
import { type Route, useRoute } from './router.ts';
import { RunPage } from './run-page.tsx';
import { RunsPage } from './runs-page.tsx';
import { TaskPage } from './task-page.tsx';
import { clearToken, getToken, setToken } from './token.ts';
import { LeaseProvider, releaseAll } from './work-lease-keeper.tsx';
import { clearLeases } from './work-leases.ts';
import { WorkPage } from './work-page.tsx';

type Auth = { kind: 'checking' } | { kind: 'login'; error?: ApiError; busy?: boolean } | { kind: 'down'; error: ApiError } | { kind: 'in'; me: Me };

/**
 * The whole page: asks the server who we are (`GET /v1/whoami`, with the stored token if any);
 * a 401 shows the login form, anything else the signed-in board with its change stream.
 */
export function App() {
  const [auth, setAuth] = useState<Auth>({ kind: 'checking' });

  const check = useCallback(async (tried?: boolean) => {
    try {
      const me = await get<Me>('/v1/whoami');
      setAuth({ kind: 'in', me });
    } catch (err) {
      const error = err instanceof ApiFailure ? err.error : { status: 0, exitCode: 1, code: 'INTERNAL', message: String(err) };
      // The server's own words say why (unknown, revoked, expired, or not a token at all).
      if (error.status === 401) setAuth({ kind: 'login', error: tried ? error : undefined });
      else setAuth({ kind: 'down', error });
    }
  }, []);

  useEffect(() => {
    // The token is no longer good: whoever signs in next must not renew this identity's leases.
    onUnauthorized(() => {
      clearLeases();
      setAuth({ kind: 'login', error: undefined });
    });
    void check();
  }, [check]);

  /** Forgets the token and the leases (a revoked token cannot release them: they run out). */
  const leave = useCallback(() => {
    clearLeases();
    clearToken();
    setAuth({ kind: 'checking' });
    void check();
  }, [check]);
  /** Sign out: gives back the leases this tab holds (bounded wait), then leaves. */
  const signOut = useCallback(() => {
    void releaseAll().finally(leave);
  }, [leave]);

  if (auth.kind === 'checking') return <Loading label="Connecting to the server…" />;
  if (auth.kind === 'down')
    return (
      <main class="page">
        <h1>The server cannot be reached</h1>
        <ErrorText error={auth.error} />
        <Button variant="primary" onClick={() => check()}>
          Try again
        </Button>
      </main>
    );
  if (auth.kind === 'login')
    return (
      <Login
        busy={auth.busy ?? false}
        error={auth.error}
        onToken={(token) => {
          setToken(token);
          setAuth({ kind: 'login', busy: true });
          void check(true);
        }}
      />
    );
  return (
    <MeContext.Provider value={auth.me}>
      <LeaseProvider>
        <SignedIn me={auth.me} onSignOut={signOut} onRevoked={leave} />
      </LeaseProvider>
    </MeContext.Provider>
  );
}

function SignedIn({ me, onSignOut, onRevoked }: { me: Me; onSignOut(): void; onRevoked(): void }) {
  const route = useRoute();
  useEffect(() => {
    startChanges(() => {
      clearToken();
      setTimeout(onRevoked, 0);
    });
    return stopChanges;
  }, [onRevoked]);
  useEffect(() => {
    document.title = `${title(route)} · orch board`;
  }, [route]);
  return (
    <div class="shell">
      <Nav me={me} onSignOut={onSignOut} signedInWithToken={getToken() !== undefined} />
      <Page route={route} me={me} />
    </div>
  );
}

function title(route: Route): string {
  switch (route.page) {
    case 'runs':
      return 'Runs';
    case 'run':
      return route.run;
    case 'task':
      return `${route.task} · ${route.run}`;
    case 'blocked':
      return 'Blocked';
    case 'work':
      return 'My work';
    default:
      return 'Not found';
  }
}

function Page({ route, me }: { route: Route; me: Me }) {
  // A worker token sees only My work (the server refuses the leader's commands to it anyway).
  if (!isLeader(me)) return <WorkPage />;
  switch (route.page) {
    case 'runs':
      return <RunsPage />;
    case 'run':
      return <RunPage key={route.run} run={route.run} />;
    case 'task':
      return <TaskPage key={`${route.run}/${route.task}`} run={route.run} task={route.task} />;
    case 'blocked':
      return <BlockedPage />;
    case 'work':
      return <WorkPage />;
    default:
      return (
        <main class="page">
          <h1>Not found</h1>
          <Empty>
            There is no page here. <Link href="#/">See the runs</Link>.
          </Empty>
        </main>
      );
  }
}
