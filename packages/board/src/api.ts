import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { onChange } from './changes.ts';
import { clearToken, getToken } from './token.ts';

/** A refusal: the CLI's error document plus the HTTP status and the `Orch-Exit-Code` header. */
export interface ApiError {
  status: number;
  exitCode: number;
  code: string;
  message: string;
  details?: unknown;
}

/** Thrown by call() and get(): `error` is what the page shows (<ErrorText>). */
export class ApiFailure extends Error {
  readonly error: ApiError;
  constructor(error: ApiError) {
    super(error.message);
    this.error = error;
  }
}

/** Called when the server answers 401: the app goes back to the login form. */
let unauthorized: () => void = () => {};
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

/** The headers every request carries: the token when the page has one (never in the URL). */
export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function send<T>(path: string, init: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) }, cache: 'no-store' });
  } catch (err) {
    throw new ApiFailure({ status: 0, exitCode: 6, code: 'UNAVAILABLE', message: `the server cannot be reached (${(err as Error).message})` });
  }
  const text = await res.text();
  let doc: unknown;
  try {
    doc = text === '' ? undefined : JSON.parse(text);
  } catch {
    doc = undefined;
  }
  if (res.ok) return doc as T;
  const exitCode = Number(res.headers.get('Orch-Exit-Code') ?? 1);
  const e = (doc as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
  const error: ApiError = {
    status: res.status,
    exitCode: Number.isFinite(exitCode) ? exitCode : 1,
    code: e?.code ?? `HTTP_${res.status}`,
    message: e?.message ?? (text.slice(0, 300) || `${res.status} ${res.statusText}`),
  };
  if (e?.details !== undefined) error.details = e.details;
  if (res.status === 401) {
    clearToken();
    unauthorized();
  }
  throw new ApiFailure(error);
}

/** POST /v1/<command> (command like 'orch/run/list', 'inbox/claim') with the token; throws ApiFailure. */
export function call<T = unknown>(command: string, input?: Record<string, unknown>): Promise<T> {
  return send<T>(`/v1/${command}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(input ?? {}) });
}

/** GET a JSON route ('/v1/whoami'). */
export function get<T = unknown>(path: string): Promise<T> {
  return send<T>(path, { method: 'GET' });
}

function asApiError(err: unknown): ApiError {
  if (err instanceof ApiFailure) return err.error;
  return { status: 0, exitCode: 1, code: 'INTERNAL', message: String((err as Error)?.message ?? err) };
}

export interface Query<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload(): void;
}

/**
 * Runs `call(command, input)` now and again after every change tick (one request in flight; a
 * tick during it runs one more afterwards; keeps the last data while re-fetching). `input`
 * undefined: does not run. A new command or input drops the old data (it was another thing's).
 * `live: false` reads once per input and ignores the ticks (for what can no longer change).
 */
export function useQuery<T>(command: string, input: Record<string, unknown> | undefined, options: { live?: boolean } = {}): Query<T> {
  const follow = options.live ?? true;
  const key = input === undefined ? undefined : `${command} ${JSON.stringify(input)}`;
  const [state, setState] = useState<{ key: string | undefined; data: T | undefined; error: ApiError | undefined; loading: boolean }>({
    key,
    data: undefined,
    error: undefined,
    loading: input !== undefined,
  });
  const live = useRef({ key, inFlight: false, again: false });
  live.current.key = key;

  const fetchNow = useCallback(() => {
    const l = live.current;
    const k = l.key;
    if (k === undefined) return;
    if (l.inFlight) {
      l.again = true;
      return;
    }
    l.inFlight = true;
    l.again = false;
    const space = k.indexOf(' ');
    const done = () => {
      l.inFlight = false;
      if (l.again || l.key !== k) fetchNow();
    };
    call<T>(k.slice(0, space), JSON.parse(k.slice(space + 1)) as Record<string, unknown>).then(
      (data) => {
        if (l.key === k) setState({ key: k, data, error: undefined, loading: false });
        done();
      },
      (err: unknown) => {
        if (l.key === k) setState((s) => ({ key: k, data: s.key === k ? s.data : undefined, error: asApiError(err), loading: false }));
        done();
      },
    );
  }, []);

  useEffect(() => {
    if (key === undefined) return;
    setState((s) => (s.key === key ? { ...s, loading: true } : { key, data: undefined, error: undefined, loading: true }));
    fetchNow();
  }, [key, fetchNow]);
  useEffect(() => (follow ? onChange(fetchNow) : undefined), [fetchNow, follow]);

  const current = state.key === key;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: key !== undefined && (!current || state.loading),
    reload: fetchNow,
  };
}

/** An action button's state: run(command, input) → the document, or undefined after a refusal (then `error` holds it, shown with <ErrorText>). */
export function useAction<T = unknown>(): {
  run(command: string, input: Record<string, unknown>): Promise<T | undefined>;
  busy: boolean;
  error: ApiError | undefined;
  clear(): void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );
  const run = useCallback(async (command: string, input: Record<string, unknown>): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      return await call<T>(command, input);
    } catch (err) {
      if (mounted.current) setError(asApiError(err));
      return undefined;
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, []);
  const clear = useCallback(() => setError(undefined), []);
  return { run, busy, error, clear };
}

/** Who the page acts as: GET /v1/whoami's answer. */
export interface Me {
  kind: 'local' | 'token';
  name?: string;
  role?: 'leader' | 'worker';
  agent?: string;
}

export const MeContext = createContext<Me>({ kind: 'local' });

/** Who is signed in (inside the signed-in app). */
export function useMe(): Me {
  return useContext(MeContext);
}

/** Whether `me` may lead (local or a leader token): a worker token sees only My work. */
export function isLeader(me: Me): boolean {
  return me.kind === 'local' || me.role === 'leader';
}
