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
    expect(onDisk, 'docs/cli.md is stale: run `npm run docs` and commit the result').toBe(rendered);
  });
});
