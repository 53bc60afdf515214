import { useState } from 'preact/hooks';
import type { ApiError } from './api.ts';
import { Button, ErrorText } from './components.tsx';

/**
 * The login form: the server wants a token (`orch token create`). The token goes to
 * sessionStorage (see token.ts) once the server accepts it, never into the URL.
 */
export function Login({ onToken, error, busy }: { onToken(token: string): void; error: ApiError | undefined; busy: boolean }) {
  const [value, setValue] = useState('');
  return (
    <main class="login-page">
      <form
        class="card login"
        data-testid="login"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim() !== '') onToken(value.trim());
        }}
      >
        <h1>orch board</h1>
        <p class="muted">
          This server needs a token. Ask whoever runs it, or create one with <code>orch token create</code>.
        </p>
        <label class="field">
          <span class="field-label">Token</span>
          <input name="token" type="password" autocomplete="off" required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        </label>
        <Button type="submit" variant="primary" busy={busy}>
          Sign in
        </Button>
        <ErrorText error={error} />
      </form>
    </main>
  );
}
