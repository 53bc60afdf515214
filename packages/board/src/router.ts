import { useEffect, useState } from 'preact/hooks';

/** The page's routes, all in the URL's hash so the server serves one page for every one of them. */
export type Route =
  | { page: 'runs' }
  | { page: 'run'; run: string }
  | { page: 'task'; run: string; task: string }
  | { page: 'blocked' }
  | { page: 'work' }
  | { page: 'unknown'; hash: string };

/** Parses `#/runs/R/tasks/T` and its siblings; anything else is 'unknown' (shown as not found). */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter((p) => p !== '');
  let p: string[];
  try {
    p = parts.map((x) => decodeURIComponent(x));
  } catch {
    return { page: 'unknown', hash };
  }
  if (p.length === 0) return { page: 'runs' };
  if (p[0] === 'runs' && p.length === 2) return { page: 'run', run: p[1] as string };
  if (p[0] === 'runs' && p.length === 4 && p[2] === 'tasks') return { page: 'task', run: p[1] as string, task: p[3] as string };
  if (p[0] === 'blocked' && p.length === 1) return { page: 'blocked' };
  if (p[0] === 'work' && p.length === 1) return { page: 'work' };
  return { page: 'unknown', hash };
}

/** The hash of a run's page. */
export function runHref(run: string): string {
  return `#/runs/${encodeURIComponent(run)}`;
}

/** The hash of a task's page. */
export function taskHref(run: string, task: string): string {
  return `#/runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(task)}`;
}

/** The current route, re-rendering on every hash change. */
export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parseRoute(hash);
}
