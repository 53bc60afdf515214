import fs from 'node:fs';
import path from 'node:path';

// Kept apart from brief.ts: the executable calls this at start-up, and brief.ts brings the inbox
// package with it, which only the commands that render briefs need.

/**
 * The inbox CLI a bundled orch executable in `bundleDir` should point workers at: the sibling
 * skill's copy (skills/orch/assets -> skills/inbox/assets/inbox), or the package build
 * (packages/<pkg>/dist -> packages/inbox/dist/inbox.cjs), else `inbox` on PATH.
 */
export function defaultWorkerInbox(bundleDir: string): string {
  const candidates = [path.resolve(bundleDir, '../../inbox/assets/inbox'), path.resolve(bundleDir, '../../inbox/dist/inbox.cjs')];
  return candidates.find((c) => fs.existsSync(c)) ?? 'inbox';
}
