// `inbox work`: claims threads for one agent and runs a command for each as a supervised
// subprocess: brief on stdin, lease kept alive, output logged, outcome posted back. This module is
// the loop: claiming while there is room, the idle and once deadlines, and the stop signals. One
// claimed thread is a Job (work-job.ts).
import { visible } from '@orch/store';
import { DEFAULT_LEASE_SECONDS } from './leases.ts';
import type { Inbox } from './inbox.ts';
import { localBackend, type WorkBackend } from './work-backend.ts';
import { prepareWorkDir } from './work-dir.ts';
import { checkWorkRepo } from './work-git.ts';
import { Job } from './work-job.ts';
import { GRACE_SECONDS, type HandledThread, type WorkOptions, type WorkResult } from './work-options.ts';

/**
 * Runs on an open inbox, or on another backend (`orch serve`'s API: work-remote.ts), until `once`
 * is satisfied, the idle timeout passes, or `signal` aborts. Never throws for a command's failure.
 *
 * @throws ValidationError (2) when the work directory cannot be made, is not a directory, belongs
 *   to someone else or is writable by group or others, or `repo` is not in a git working tree;
 *   nothing is claimed then.
 */
export async function work(on: Inbox | WorkBackend, input: WorkOptions): Promise<WorkResult> {
  const inbox = 'claimLost' in on ? on : localBackend(on);
  const options: WorkOptions = {
    ...input,
    workDir: prepareWorkDir(input.workDir),
    ...(input.repo !== undefined ? { repo: await checkWorkRepo(input.repo) } : {}),
  };
  const concurrency = options.concurrency ?? 1;
  const log = options.log ?? (() => undefined);
  const monotonic = options.monotonic ?? (() => inbox.clock.monotonicMs());
  const active = new Map<string, Promise<void>>();
  const jobs = new Set<Job>();
  const handled: HandledThread[] = [];
  let claimedAny = false;
  let idleSince = monotonic();
  let stopped: WorkResult['stopped'] | undefined;
  let lastVersion = -1;
  let lastLook = -Infinity;

  const aborted = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  options.signal?.addEventListener(
    'abort',
    () => {
      log(`stopping: no new claims; signalling ${jobs.size} command(s) (a second signal kills them at once)`);
      for (const job of jobs) job.stop(options.graceSeconds ?? GRACE_SECONDS);
    },
    { once: true },
  );
  options.hurry?.addEventListener(
    'abort',
    () => {
      log(`stopping now: killing ${jobs.size} command(s)`);
      for (const job of jobs) job.kill();
    },
    { once: true },
  );

  while (stopped === undefined) {
    if (options.signal?.aborted) {
      stopped = 'stopped';
      break;
    }
    // Claim while there is room. Skip the query when nothing was committed since the last look,
    // except once a second (a lease running out makes a thread claimable without a commit).
    const version = inbox.commitMark();
    const now = monotonic();
    if (version !== lastVersion || now - lastLook >= 1000) {
      lastVersion = version;
      lastLook = now;
      while (active.size < concurrency && !(options.once && claimedAny) && !options.signal?.aborted) {
        const c = await inbox.claim({ agent: options.agent, leaseSeconds: options.leaseSeconds ?? DEFAULT_LEASE_SECONDS });
        if (!c.claimed) break;
        if (options.signal?.aborted) {
          await inbox.release({ threadId: c.thread.id, lease: c.lease.token }).catch(() => undefined);
          break;
        }
        claimedAny = true;
        const job = new Job(inbox, options, c);
        jobs.add(job);
        log(`claimed ${c.thread.id} (claim ${c.thread.claim_count}): ${visible(c.thread.subject)}`);
        active.set(
          c.thread.id,
          job.run().then((h) => {
            handled.push(h);
            jobs.delete(job);
            active.delete(c.thread.id);
            log(`${h.thread_id}: ${h.outcome}${h.exit_code !== null ? ` (exit ${h.exit_code})` : h.signal ? ` (${h.signal})` : ''}`);
            if (h.left_pids.length > 0) log(`${h.thread_id}: the command left processes running: ${h.left_pids.join(', ')}`);
          }),
        );
      }
    }
    if (active.size > 0) idleSince = monotonic();
    if (options.once && active.size === 0) {
      stopped = 'once';
      break;
    }
    if (active.size === 0 && options.idleExitSeconds !== undefined && monotonic() - idleSince >= options.idleExitSeconds * 1000) {
      stopped = 'idle';
      break;
    }
    await Promise.race([...active.values(), aborted, sleep(100)]);
  }
  await Promise.all(active.values());
  return { agent: options.agent, handled, stopped };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
