// What the bench itself uses of the inbox library (bundled by scripts/bench/throughput.mjs): the
// commits that wake the waiters on PostgreSQL are made the way a real worker or leader makes them.
export { openInbox, progress, reply, send } from '@orch/inbox';
