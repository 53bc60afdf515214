import { render } from 'preact';
import { App } from './app.tsx';

// The board's entry: replaces the "Loading the board…" placeholder of index.html with the app.
const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
