import { Empty } from './components.tsx';

/** Every pending question across runs, with an answer box (ui-task builds it). */
export function BlockedPage() {
  return (
    <main class="page" data-testid="blocked-page">
      <h1>Blocked</h1>
      <Empty>The Blocked panel is on its way.</Empty>
    </main>
  );
}
