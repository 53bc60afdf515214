import fs from 'node:fs';
import path from 'node:path';
import { runMain } from '@orch/store';
import { briefCli } from './cli.ts';

// The inbox CLI the worker should run: the sibling skill's bundled copy (skills/orch/assets ->
// skills/inbox/assets/inbox), or the package build (packages/worker-brief/dist -> packages/inbox/dist),
// else whatever `inbox` is on PATH.
const candidates = [path.resolve(__dirname, '../../inbox/assets/inbox'), path.resolve(__dirname, '../../inbox/dist/inbox.cjs')];
const defaultInbox = candidates.find((c) => fs.existsSync(c)) ?? 'inbox';

runMain(briefCli({ defaultInbox }), __dirname);
