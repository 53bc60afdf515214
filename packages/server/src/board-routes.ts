// The live web board's routes (docs/board.md): its files at `/` and `/assets/<file>`, which need
// no token (the page asks for one), and the two GET routes only the page uses, `/v1/whoami` and
// the change stream `/v1/changes`, which need one like every other /v1 route.
import type { Clock } from '@orch/store';
import type { Context, Hono } from 'hono';
import type { Bindings } from './app.ts';
import type { Principal } from './auth.ts';
import { BOARD_HEADERS, type BoardFiles } from './board.ts';
import { openChanges } from './events.ts';
import { type ServerCommandEnv, principalKey } from './handle.ts';
import type { CommitPulse } from './pulse.ts';
import { EXIT_CODE_HEADER, errorAnswer, jsonText, sseResponse, unknownRoute } from './responses.ts';

export interface BoardRouteDeps {
  board: BoardFiles;
  env: ServerCommandEnv;
  pulse: CommitPulse;
  clock: Clock;
  /** Authenticates a request (app.ts: the token, or the local user). */
  who(c: Context<{ Bindings: Bindings }>): Promise<Principal>;
  /** The error answer for anything thrown. */
  refuse(err: unknown): Response;
}

/** What `/` answers when the server has no board files. */
export const BOARD_NOT_BUILT = 'The board was not built: run `npm run build` in the orch repository (an installed package has it built).\n';

export function addBoardRoutes(app: Hono<{ Bindings: Bindings }>, deps: BoardRouteDeps): void {
  const { board, env, pulse, clock, who, refuse } = deps;
  const file = (c: Context<{ Bindings: Bindings }>, name: string) => {
    const answer = board.answer(name, { ifNoneMatch: c.req.header('if-none-match'), acceptEncoding: c.req.header('accept-encoding') });
    if (answer) return new Response(answer.body, { status: answer.status, headers: answer.headers });
    if (name === 'index.html') {
      return new Response(BOARD_NOT_BUILT, { status: 404, headers: { ...BOARD_HEADERS, 'content-type': 'text/plain; charset=utf-8' } });
    }
    // Only the files the board folder holds: anything else is the server's ordinary 404.
    const refused = errorAnswer(unknownRoute(new URL(c.req.url).pathname));
    return new Response(refused.body, { status: refused.status, headers: { ...refused.headers, ...BOARD_HEADERS } });
  };
  app.get('/', (c) => file(c, 'index.html'));
  app.get('/assets/:file', (c) => file(c, c.req.param('file')));

  // Who the page is signed in as: it shows a worker token its own work only.
  app.get('/v1/whoami', async (c) => {
    try {
      const principal = await who(c);
      env.limits.take(principalKey(principal));
      return new Response(jsonText(principal), {
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', [EXIT_CODE_HEADER]: '0' },
      });
    } catch (err) {
      return refuse(err);
    }
  });

  // One stream per browser (its tabs share it, changes.ts): a tick after every commit (events.ts openChanges); the page re-reads what it shows.
  app.get('/v1/changes', async (c) => {
    try {
      const principal = await who(c);
      const body = await openChanges(env, pulse, clock, {
        principal,
        lastEventId: c.req.header('last-event-id'),
        signal: c.req.raw.signal,
        reauthenticate: async () => void (await who(c)),
      });
      return sseResponse(body);
    } catch (err) {
      return refuse(err);
    }
  });
}
