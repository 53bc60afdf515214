import path from 'node:path';

/**
 * Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`). A mistyped URL
 * such as `postgres:USER:PASSWORD@HOST/DB` (no `//`) counts too: it is refused as a URL, never taken
 * for a file path (which would print its password and create a file of that name).
 */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:/i.test(location);
}

/**
 * `location` with any password removed, safe to print: a PostgreSQL URL loses the password of its
 * user part (and a `password` or `sslpassword` parameter: the key file's); a file path is returned as it is.
 */
export function redactLocation(location: string): string {
  if (!isPostgresUrl(location)) return location;
  if (/^postgres(ql)?:\/\//i.test(location)) {
    try {
      const url = new URL(location);
      url.password = '';
      url.searchParams.delete('password');
      url.searchParams.delete('sslpassword');
      return url.toString();
    } catch {
      // Not parseable: below.
    }
  }
  // Keep the scheme and the part after the last '@', which never holds the user part's password,
  // without any `password` or `sslpassword` parameter.
  const scheme = /^postgres(ql)?:(\/\/)?/i.exec(location)?.[0] ?? '';
  const at = location.lastIndexOf('@');
  const rest = at < 0 ? location.slice(scheme.length) : location.slice(at + 1);
  return `${scheme}${rest.replace(/([?&])(ssl)?password=[^&#]*&?/gi, '$1').replace(/[?&]$/, '')}`;
}

/**
 * A URL part (user name, password) with its percent-escapes decoded as the `pg` driver decodes it:
 * a `%` that starts no escape (`100%`) stands for itself. Never throws.
 */
export function decodeUrlPart(part: string): string {
  const normalised = /%(?![0-9a-f]{2})/i.test(part) ? encodeURI(part).replace(/%25(\d\d)/g, '%$1') : part;
  try {
    return decodeURIComponent(normalised);
  } catch {
    return part;
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
    if (url.password !== '') return decodeUrlPart(url.password);
    return url.searchParams.get('password') ?? undefined;
  } catch {
    return undefined;
  }
}
