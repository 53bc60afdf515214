import { systemClock, type Clock } from '@orch/store';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshDb } from '../../../test/engine.ts';
import { initInbox, openInbox, type Inbox } from './inbox.ts';
import { work } from './work.ts';

let dir: string;
let inbox: Inbox;
let wallOffset = 0;
/** Wall time that the test can set back (as `date -s` would), while timers run on. */
const jumpyClock: Clock = { now: () => Date.now() + wallOffset, monotonicMs: systemClock.monotonicMs, sleep: systemClock.sleep };

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inbox-work-'));
  wallOffset = 0;
  const dbPath = freshDb(dir);
  await initInbox({ path: dbPath });
  inbox = await openInbox({ path: dbPath, clock: jumpyClock });
});

afterEach(async () => {
  await inbox.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('work(): deadlines', () => {
  it('--idle-exit-seconds is measured on the monotonic clock: setting the wall clock back an hour does not keep the runner waiting', async () => {
    const running = work(inbox, {
      agent: 'nobody',
      command: ['true'],
      idleExitSeconds: 1,
      dbPath: freshDb(dir),
      inboxBin: 'inbox',
      workDir: path.join(dir, 'work'),
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    wallOffset = -3_600_000;
    await expect(running).resolves.toEqual({ agent: 'nobody', handled: [], stopped: 'idle' });
  });
});
