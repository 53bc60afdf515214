// Holes found by attacking the built `orch serve` from outside (real server processes, real HTTP
// over loopback), each kept as a test that failed before its fix:
// - a body without a Content-Type (what a web page sends with no preflight) drove a tokenless
//   loopback server as the local leader;
// - a request a reverse proxy on the same machine passed on (X-Forwarded-For) was the local leader too,
//   and so was one a browser marks as sent by a page of another site (Sec-Fetch-Site, Origin): such a
//   page could hold all the local user's stream slots (GET needs no preflight), or post;
// - requests repeating one Idempotency-Key at once each ran the command (PostgreSQL);
// - an event stream opened with a token went on after the token was revoked;
// - every `inbox show` over HTTP kept its answer (up to 8 MiB) in the database for 24 hours, so any
//   reader grew the database by a page per call;
// - one token's large bodies were all read into memory before any limit was counted (200 bodies
//   of 8 MiB at once from one worker token: 1.25 GB), so any token could exhaust the server;
// - a message stream read a thread's whole backlog into memory whether or not the client read it
//   (32 unread streams of a 40 MB thread: 1.6 GB), and a backlog past one page came one page per
//   5 s (40 messages of 1 MB: 20 s). Measured by hand (a test would need a timing limit); the test
//   below checks that a backlog of many pages still arrives whole and in order, and resumes.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { initDb, ok, orchOk, rows } from './helpers.ts';
import { post, readEvents, serve } from './server-harness.ts';

describe('orch serve under attack (slow)', () => {
  it('refuses a body without a Content-Type (a cross-site request needs no preflight for one), writing nothing', async () => {
    const { db } = initDb();
    const s = await serve(db);
    try {
      // What `fetch(url, { method: 'POST', mode: 'no-cors', body: new Blob([json]) })` sends from any web page:
      // no Content-Type header, so no CORS preflight; the Host is 127.0.0.1, so the DNS-rebinding check passes.
      const r = await fetch(`${s.url}/v1/inbox/send`, {
        method: 'POST',
        body: new Blob([JSON.stringify({ to: 'qa', subject: 'csrf', body: 'from a web page' })]),
      });
      const text = await r.text();
      expect(r.headers.get('content-type') ?? '').toMatch(/json/);
      expect(r.status, text).toBe(415);
      expect(r.headers.get('orch-exit-code')).toBe('2');
      expect(JSON.parse(text).error.code).toBe('VALIDATION');
      expect(rows(db, 'SELECT id FROM inbox_threads')).toEqual([]);
      // The CLI's own requests (application/json) still run.
      const good = await post(s.url, '/v1/inbox/send', { to: 'qa', subject: 'fine', body: 'from the CLI' });
      expect(good.status, good.text).toBe(200);
    } finally {
      await s.stop();
    }
  });

  it('does not take a request a reverse proxy forwarded for as the local user', async () => {
    const { db } = initDb();
    const s = await serve(db);
    try {
      const headers: Record<string, string>[] = [
        { 'x-forwarded-for': '203.0.113.9' },
        { forwarded: 'for=203.0.113.9;proto=https' },
        { 'x-real-ip': '203.0.113.9' },
      ];
      for (const header of headers) {
        const r = await post(s.url, '/v1/inbox/send', { to: 'qa', subject: 'proxied', body: 'from the internet' }, header);
        expect([r.status, r.exit, r.json?.error?.code], r.text).toEqual([401, 4, 'UNAUTHENTICATED']);
      }
      expect(rows(db, 'SELECT id FROM inbox_threads')).toEqual([]);
      // A stream too; and this machine's own requests (no forwarding header) are still the local user.
      const stream = await fetch(`${s.url}/v1/threads/th_none/messages`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      expect(stream.status).toBe(401);
      await stream.body?.cancel();
      const local = await post(s.url, '/v1/inbox/send', { to: 'qa', subject: 'local', body: 'from this machine' });
      expect(local.status, local.text).toBe(200);
    } finally {
      await s.stop();
    }
  });

  it('does not take a request a web page of another site sent as the local user', async () => {
    const { db } = initDb();
    const s = await serve(db);
    try {
      const port = new URL(s.url).port;
      const pages: Record<string, string>[] = [
        { origin: 'http://evil.example' },
        { origin: 'null' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
      ];
      for (const header of pages) {
        const r = await post(s.url, '/v1/inbox/send', { to: 'qa', subject: 'cross-site', body: 'from a page' }, header);
        expect([r.status, r.exit, r.json?.error?.code], r.text).toEqual([401, 4, 'UNAUTHENTICATED']);
      }
      const stream = await fetch(`${s.url}/v1/threads/th_none/messages`, { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' } });
      expect(stream.status).toBe(401);
      await stream.body?.cancel();
      expect(rows(db, 'SELECT id FROM inbox_threads')).toEqual([]);
      // A page of this very server (same origin), or a tool that is no browser, is still the local user.
      const own: Record<string, string>[] = [{ origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'none' }, {}];
      for (const header of own) {
        const r = await post(s.url, '/v1/inbox/send', { to: 'qa', subject: 'local', body: 'from this machine' }, header);
        expect(r.status, r.text).toBe(200);
      }
    } finally {
      await s.stop();
    }
  });

  it('runs a command once when requests repeating one Idempotency-Key arrive at once', async () => {
    const { db } = initDb();
    const s = await serve(db);
    try {
      const key = `adversary-race-${'k'.repeat(20)}`;
      const body = { to: 'qa', subject: 'once', body: 'sent with one key, many times at once' };
      const answers = await Promise.all(Array.from({ length: 20 }, () => post(s.url, '/v1/inbox/send', body, { 'idempotency-key': key })));
      for (const a of answers) expect(a.status, a.text).toBe(200);
      expect(new Set(answers.map((a) => a.json.thread.id)).size).toBe(1);
      expect(answers.filter((a) => a.headers.get('idempotency-replayed') !== 'true')).toHaveLength(1);
      expect(rows(db, "SELECT id FROM inbox_threads WHERE subject = 'once'")).toHaveLength(1);
    } finally {
      await s.stop();
    }
  });

  it('ends an open message stream once its token is revoked: nothing written after reaches it', async () => {
    const { db } = initDb();
    const leader = orchOk(db, ['token', 'create', '--role', 'leader', '--name', 'boss']).token as string;
    const worker = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa']).token as string;
    const s = await serve(db);
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    try {
      const sent = await post(s.url, '/v1/inbox/send', { to: 'qa', subject: 's', body: 'the task' }, auth(leader));
      expect(sent.status, sent.text).toBe(200);
      const thread = sent.json.thread.id as string;
      const stop = new AbortController();
      const r = await fetch(`${s.url}/v1/threads/${thread}/messages`, { headers: auth(worker), signal: stop.signal });
      expect(r.status).toBe(200);
      const reader = (r.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let seen = '';
      const readUntil = async (done: (text: string) => boolean) => {
        while (!done(seen)) {
          const chunk = await reader.read();
          if (chunk.done) return true;
          seen += decoder.decode(chunk.value, { stream: true });
        }
        return false;
      };
      await readUntil((t) => t.includes('the task'));

      orchOk(db, ['token', 'revoke', '--name', 'qa']);
      const later = await post(s.url, '/v1/inbox/send', { thread, body: 'a secret sent after the revocation' }, auth(leader));
      expect(later.status, later.text).toBe(200);
      // The stream ends (with an error event) instead of carrying the new message.
      const ended = await readUntil((t) => t.includes('event: error') || t.includes('a secret sent after'));
      stop.abort();
      expect(seen).not.toContain('a secret sent after');
      expect(seen).toContain('UNAUTHENTICATED');
      expect(ended || seen.includes('event: error')).toBe(true);
      // And a new stream with it is refused.
      const again = await fetch(`${s.url}/v1/threads/${thread}/messages`, { headers: auth(worker) });
      expect(again.status).toBe(401);
      await again.body?.cancel();
      expect(ok(db, ['show', '--thread', thread]).messages).toHaveLength(2);
    } finally {
      await s.stop();
    }
  });

  it('streams a backlog of many pages whole and in order, and resumes after Last-Event-ID', async () => {
    const { dir, db } = initDb();
    const file = path.join(dir, 'big.txt');
    fs.writeFileSync(file, 'x'.repeat(600_000));
    const thread = ok(db, ['send', '--to', 'qa', '--subject', 'backlog', '--body-file', file]).thread.id as string;
    for (let i = 1; i < 24; i++) ok(db, ['send', '--thread', thread, '--body-file', file]);
    const s = await serve(db);
    try {
      const all = await readEvents(`${s.url}/v1/threads/${thread}/messages`, (events) => events.length >= 24);
      expect(all.map((e) => Number(e.id))).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      expect(all.every((e) => e.event === 'message' && JSON.parse(e.data).body.length === 600_000)).toBe(true);
      const rest = await readEvents(`${s.url}/v1/threads/${thread}/messages`, (events) => events.length >= 4, { 'last-event-id': '20' });
      expect(rest.map((e) => Number(e.id))).toEqual([21, 22, 23, 24]);
    } finally {
      await s.stop();
    }
  });

  it("holds at most a bounded amount of one token's request bodies at once: the rest get 429 with Retry-After", async () => {
    const { db } = initDb();
    const worker = orchOk(db, ['token', 'create', '--role', 'worker', '--agent', 'qa']).token as string;
    const s = await serve(db);
    try {
      const body = JSON.stringify({ agent: 'qa', payloadJson: 'x'.repeat(7 * 1024 * 1024) });
      const answers = await Promise.all(
        Array.from({ length: 16 }, () =>
          post(s.url, '/v1/inbox/list', body, { authorization: `Bearer ${worker}` }).catch((err: Error) => ({
            status: 0,
            text: String(err),
            headers: new Headers(),
            exit: 0,
            json: undefined,
          })),
        ),
      );
      const limited = answers.filter((a) => a.status === 429);
      expect(limited.length, answers.map((a) => a.status).join(' ')).toBeGreaterThan(0);
      for (const a of limited) {
        expect([a.exit, a.json?.error?.code, a.headers.get('retry-after')]).toEqual([6, 'RATE_LIMITED', '1']);
      }
      // The others were read and refused by the command (no such flag), as they would be alone.
      expect(answers.every((a) => a.status === 429 || a.status === 400 || a.status === 0)).toBe(true);
      const after = await post(s.url, '/v1/inbox/list', { agent: 'qa' }, { authorization: `Bearer ${worker}` });
      expect(after.status, after.text).toBe(200);
    } finally {
      await s.stop();
    }
  });

  it('keeps no answer of an `inbox show` without a lease (a read), and keeps one with a lease (it marks delivery)', async () => {
    const { dir, db } = initDb();
    const file = path.join(dir, 'big.txt');
    fs.writeFileSync(file, 'x'.repeat(500_000));
    const thread = ok(db, ['send', '--to', 'qa', '--subject', 'read me', '--body-file', file]).thread.id as string;
    const s = await serve(db);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await post(s.url, '/v1/inbox/show', { thread }, { 'idempotency-key': `adversary-show-${i}-${'k'.repeat(20)}` });
        expect(r.status, r.text).toBe(200);
      }
      expect(rows(db, "SELECT key FROM orch_server_idempotency WHERE command = 'inbox show'")).toEqual([]);
      const claim = await post(s.url, '/v1/inbox/claim', { agent: 'qa', thread }, { 'idempotency-key': `adversary-claim-${'k'.repeat(20)}` });
      expect(claim.status, claim.text).toBe(200);
      const key = `adversary-show-lease-${'k'.repeat(20)}`;
      const first = await post(s.url, '/v1/inbox/show', { thread, lease: claim.json.lease.token }, { 'idempotency-key': key });
      expect(first.status, first.text).toBe(200);
      expect(rows(db, "SELECT key FROM orch_server_idempotency WHERE command = 'inbox show'")).toEqual([{ key }]);
      const again = await post(s.url, '/v1/inbox/show', { thread, lease: claim.json.lease.token }, { 'idempotency-key': key });
      expect([again.headers.get('idempotency-replayed'), again.text]).toEqual(['true', first.text]);
    } finally {
      await s.stop();
    }
  });
});
