import { Empty } from './components.tsx';

/** A person working as an agent: threads assigned to a name (ui-task builds it). */
export function WorkPage() {
  return (
    <main class="page" data-testid="work-page">
      <h1>My work</h1>
      <Empty>My work is on its way.</Empty>
    </main>
  );
}
