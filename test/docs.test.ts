import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCliReference } from './docs-render.ts';
import { ROOT } from './helpers.ts';

/**
 * docs/cli.md is generated from the command definitions (test/docs-render.ts): this test fails
 * when the file is stale. `npm run docs` (UPDATE_DOCS=1) writes it instead.
 */

const CLI_MD = path.join(ROOT, 'docs/cli.md');
const update = process.env.UPDATE_DOCS === '1';

describe('docs/cli.md', () => {
  it('is what the command definitions render', async () => {
    const rendered = await renderCliReference();
    if (update) fs.writeFileSync(CLI_MD, rendered);
    const onDisk = fs.existsSync(CLI_MD) ? fs.readFileSync(CLI_MD, 'utf8') : '';
    const [disk, want] = [onDisk.split('\n'), rendered.split('\n')];
    const line = want.findIndex((l, i) => disk[i] !== l);
    const where = line < 0 ? 'it is longer than the rendering' : `line ${line + 1} should read: ${want[line]}`;
    expect(onDisk === rendered, `docs/cli.md is stale (${where}): run \`npm run docs\` and commit the result`).toBe(true);
  });
});
