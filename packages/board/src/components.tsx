import type { ButtonHTMLAttributes, ComponentChildren, InputHTMLAttributes, TextareaHTMLAttributes } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ApiError } from './api.ts';
import { stateClass } from './states.ts';

// Shared building blocks of every page. They render agent-written text as text only: no
// dangerouslySetInnerHTML, no innerHTML, and no href that is not one of the page's own #/ routes.

/** A refusal next to its control: the CLI's message and its code (`data-testid="error"`). */
export function ErrorText({ error }: { error: ApiError | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert" data-testid="error">
      <span class="error-message">{error.message}</span> <code class="error-code">{error.code}</code>
    </p>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="loading" aria-busy="true">
      <span class="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/** A task, attempt, run or thread state in its colour (the same colour everywhere on the board). */
export function StateBadge({ state }: { state: string }) {
  return (
    <span class={`badge ${stateClass(state)}`} data-state={state}>
      {state}
    </span>
  );
}

let nowListeners = new Set<() => void>();
let nowTimer: ReturnType<typeof setInterval> | undefined;

/** The current time, re-rendering every 30 s (one timer for every <Time> on the page). */
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const fn = () => setNow(Date.now());
    nowListeners.add(fn);
    if (!nowTimer) nowTimer = setInterval(() => nowListeners.forEach((f) => f()), 30_000);
    return () => {
      nowListeners.delete(fn);
      if (nowListeners.size === 0 && nowTimer) {
        clearInterval(nowTimer);
        nowTimer = undefined;
        nowListeners = new Set();
      }
    };
  }, []);
  return now;
}

/** `iso` as "12 s ago" / "3 min ago" / a date, relative to `now`. */
export function relativeTime(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 5 && s > -5) return 'just now';
  if (s < 0) return 'in the future';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

/** A time, relative ("3 min ago"), with the full ISO time in its title. */
export function Time({ iso }: { iso: string | null | undefined }) {
  const now = useNow();
  if (!iso) return <span class="muted">–</span>;
  return (
    <time dateTime={iso} title={iso}>
      {relativeTime(iso, now)}
    </time>
  );
}

/** Goes to one of the board's routes (`#/runs/R`). */
export function navigate(hash: string): void {
  if (location.hash !== hash) location.hash = hash;
}

/** A link to one of the board's own routes; anything that is not a `#/` route is not a link. */
export function Link({ href, children, class: cls, title }: { href: string; children: ComponentChildren; class?: string; title?: string }) {
  if (!href.startsWith('#/'))
    return (
      <span class={cls} title={title}>
        {children}
      </span>
    );
  return (
    <a href={href} class={cls} title={title}>
      {children}
    </a>
  );
}

type InputProps = InputHTMLAttributes<HTMLInputElement> & { label: string; name: string; hint?: string };

/** A labelled input (uncontrolled: forms read their values with formValues()). */
export function Field({ label, hint, class: cls, ...rest }: InputProps) {
  return (
    <label class={`field ${cls ?? ''}`}>
      <span class="field-label">{label}</span>
      <input {...rest} />
      {hint ? <span class="field-hint">{hint}</span> : null}
    </label>
  );
}

type TextAreaProps = TextareaHTMLAttributes<HTMLTextAreaElement> & { label: string; name: string; hint?: string };

/** A labelled textarea (uncontrolled). */
export function TextArea({ label, hint, class: cls, ...rest }: TextAreaProps) {
  return (
    <label class={`field ${cls ?? ''}`}>
      <span class="field-label">{label}</span>
      <textarea rows={3} {...rest} />
      {hint ? <span class="field-hint">{hint}</span> : null}
    </label>
  );
}

type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & { busy?: boolean; variant?: 'primary' | 'danger' | 'plain' };

/** A button that is disabled (and says so) while its action runs. */
export function Button({ busy, variant = 'plain', disabled, children, class: cls, type = 'button', ...rest }: ButtonProps) {
  return (
    <button type={type} class={`btn btn-${variant} ${cls ?? ''}`} disabled={busy || disabled} aria-busy={busy ? 'true' : undefined} {...rest}>
      {children}
    </button>
  );
}

/** Any value as indented JSON, rendered as text. */
export function JsonBlock({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

/** A form's fields as a flag object: empty strings left out (the CLI's default applies). */
export function formValues(form: HTMLFormElement): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new FormData(form)) if (typeof v === 'string' && v.trim() !== '') out[k] = v;
  return out;
}
