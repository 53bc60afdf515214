/**
 * The server token the page signs in with, kept in sessionStorage under `orch.token`: gone when
 * the tab closes, never put in a URL, never logged.
 */
const KEY = 'orch.token';

export function getToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function setToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function clearToken(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: there was nothing kept to remove.
  }
}
