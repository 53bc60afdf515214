/**
 * The styles of the task page, the Blocked panel and My work, built on board.css's variables
 * (colours, radius) so light and dark follow the shell. They are added as a constructed
 * stylesheet (`document.adoptedStyleSheets`), which the server's CSP (`style-src 'self'`) allows:
 * no inline <style> or style attribute is involved. Imported once by each page module.
 */
const CSS = `
.crumbs { font-size: 0.85rem; color: var(--muted); margin-bottom: 0.35rem; overflow-wrap: anywhere; }
.title-wrap { overflow-wrap: anywhere; min-width: 0; }
.text-body { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.small { font-size: 0.82rem; }
textarea[name='payload'] { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace; font-size: 0.92em; }
.stack { display: flex; flex-direction: column; gap: 0.75rem; min-width: 0; }
.row { display: flex; flex-direction: row; flex-wrap: wrap; gap: 0.5rem; align-items: flex-end; }
.row > .field { flex: 1 1 9rem; }
.agent-form > .field { max-width: 24rem; }
.row > .btn, form .row > .btn { align-self: flex-end; }
.actions { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
.card > h2 { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: baseline; }
.two-col { display: grid; grid-template-columns: minmax(0, 24rem) minmax(0, 1fr); gap: 1rem; align-items: start; }
.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.15rem 0.75rem; margin: 0.5rem 0; }
.facts dt { color: var(--muted); font-size: 0.85rem; }
.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
details > summary { cursor: pointer; color: var(--muted); font-size: 0.85rem; }
.link-button { font: inherit; background: none; border: none; padding: 0; color: var(--accent); cursor: pointer; text-decoration: underline; text-align: left; overflow-wrap: anywhere; min-width: 0; }
.items { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 0.4rem; }
.item { padding: 0.45rem 0.6rem; border: 1px solid var(--line); border-radius: var(--radius); min-width: 0; background: var(--panel); }
.item.selected { border-color: var(--accent); box-shadow: inset 3px 0 0 var(--accent); }
.item-head { display: flex; flex-wrap: wrap; gap: 0.25rem 0.5rem; align-items: center; min-width: 0; }
.item-head .btn { margin-left: auto; }
.messages { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; }
.message { padding: 0.55rem 0; border-top: 1px solid var(--line); min-width: 0; }
.message:first-child { border-top: none; }
.message-head { display: flex; flex-wrap: wrap; gap: 0.15rem 0.5rem; align-items: baseline; font-size: 0.85rem; }
.message-kind { font-weight: 700; text-transform: uppercase; font-size: 0.72rem; letter-spacing: 0.04em; color: var(--muted); }
.kind-question { color: var(--s-blocked); }
.kind-answer { color: var(--s-ready); }
.kind-result { color: var(--s-done); }
.kind-failure { color: var(--s-failed); }
.message-body { margin: 0.25rem 0 0; }
.message-payload { margin-top: 0.35rem; }
.diff-files { list-style: none; margin: 0.5rem 0; padding: 0; font-size: 0.85rem; }
.diff-files li { display: flex; gap: 0.5rem; min-width: 0; }
.diff-path { flex: 1 1 auto; min-width: 0; overflow-wrap: anywhere; }
.diff-stat-add { color: var(--ok); font-variant-numeric: tabular-nums; }
.diff-stat-del { color: var(--danger); font-variant-numeric: tabular-nums; }
.diff-patch { margin: 0.5rem 0 0; padding: 0.5rem 0; max-height: 40rem; overflow: auto; background: var(--bg); border: 1px solid var(--line); border-radius: var(--radius); font-size: 0.82rem; line-height: 1.4; }
.diff-line { display: block; white-space: pre; padding: 0 0.5rem; min-width: max-content; }
.diff-add { color: var(--ok); background: color-mix(in srgb, var(--ok) 12%, transparent); }
.diff-del { color: var(--danger); background: color-mix(in srgb, var(--danger) 12%, transparent); }
.diff-hunk { color: var(--s-dispatched); }
.diff-file { font-weight: 700; }
.diff-more { color: var(--muted); font-style: italic; }
.notice { margin: 0.4rem 0 0; padding: 0.45rem 0.6rem; border-left: 3px solid var(--accent); background: color-mix(in srgb, var(--accent) 8%, transparent); overflow-wrap: anywhere; }
.notice.waiting { border-left-color: var(--s-blocked); background: color-mix(in srgb, var(--s-blocked) 12%, transparent); font-weight: 600; }
.notice.answered { border-left-color: var(--s-done); background: color-mix(in srgb, var(--s-done) 10%, transparent); }
.lease-lost { margin: 0 0 0.75rem; padding: 0.6rem 0.75rem; border: 2px solid var(--danger); border-radius: var(--radius); background: color-mix(in srgb, var(--danger) 10%, transparent); }
.lease-ok { color: var(--ok); }
.question-grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; align-items: start; }
@media (max-width: 960px) {
  .two-col, .question-grid { grid-template-columns: minmax(0, 1fr); }
}
`;

let added = false;

/** Adds the stylesheet to the document once (later calls do nothing). */
export function addPageStyles(): void {
  if (added || typeof document === 'undefined' || typeof CSSStyleSheet === 'undefined') return;
  added = true;
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  } catch {
    // A browser without constructable stylesheets shows the pages with the shell's styles only.
  }
}
