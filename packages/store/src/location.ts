import path from 'node:path';

/** Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`). */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * `location` with any password removed, safe to print: a PostgreSQL URL loses the password of its
 * user part (and a `password` parameter); a file path is returned as it is.
 */
export function redactLocation(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const url = new URL(location);
    url.password = '';
    url.searchParams.delete('password');
    return url.toString();
  } catch {
    // Not parseable: keep the scheme and the part after the last '@', which never holds the password.
    const at = location.lastIndexOf('@');
    return at < 0 ? location : `${location.slice(0, location.indexOf('//') + 2)}${location.slice(at + 1)}`;
  }
}

/** The absolute form of a SQLite path (a URL is kept as it is): what `location` holds. */
export function absoluteLocation(location: string): string {
  return isPostgresUrl(location) ? redactLocation(location) : path.resolve(location);
}

/** The password a PostgreSQL URL carries (user part or `password` parameter), or undefined. Never print it. */
export function urlPassword(location: string): string | undefined {
  if (!isPostgresUrl(location)) return undefined;
  try {
    const url = new URL(location);
    if (url.password !== '') return decodeURIComponent(url.password);
    return url.searchParams.get('password') ?? undefined;
  } catch {
    return undefined;
  }
}
