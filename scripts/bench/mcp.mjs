// 6. The MCP servers: how long `inbox mcp` takes from start to its tool list, against `node -e 0`,
//    and what a tool call costs through a running server, against the same command as a CLI call
//    (the server pays for start-up once; a CLI call pays for it every time).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { figure, INBOX, median, ok, quick, timed, tmp } from './common.mjs';

const ROUNDS = quick ? 5 : 15;
const CALLS = quick ? 20 : 100;

/**
 * A server over stdio speaking newline-delimited JSON-RPC; `request` resolves with the answer.
 * @param {string[]} args
 */
function startServer(args) {
  const child = spawn(process.execPath, [INBOX, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  /** @type {Map<number, (message: any) => void>} */
  const waiting = new Map();
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const message = JSON.parse(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      waiting.get(message.id)?.(message);
      waiting.delete(message.id);
      nl = buffered.indexOf('\n');
    }
  });
  let next = 0;
  /**
   * @param {string} method
   * @param {unknown} params
   * @returns {Promise<any>}
   */
  const request = (method, params) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      waiting.set(id, (m) => (m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result)));
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const stop = async () => {
    child.stdin.end();
    await exited;
  };
  const hello = async () => {
    await request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } });
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  };
  return { request, stop, hello };
}

export async function mcpLatency() {
  const db = path.join(tmp, 'mcp.db');
  ok([INBOX, '--db', db, '--json', 'init']);
  const args = ['--db', db, 'mcp', '--agent', 'bench-mcp'];
  /** @type {number[]} */
  const floor = [];
  /** @type {number[]} */
  const starts = [];
  /** @type {number[]} */
  const cliCalls = [];
  for (let round = 0; round < ROUNDS; round++) {
    floor.push(timed(['-e', '0']).ms);
    cliCalls.push(timed([INBOX, '--db', db, '--json', 'claim', '--agent', 'bench-mcp']).ms);
    const t0 = performance.now();
    const server = startServer(args);
    await server.hello();
    const { tools } = await server.request('tools/list', {});
    starts.push(performance.now() - t0);
    if (tools.length === 0) throw new Error('bench: inbox mcp listed no tools');
    await server.stop();
  }
  const server = startServer(args);
  await server.hello();
  /** @type {number[]} */
  const calls = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    const r = await server.request('tools/call', { name: 'claim', arguments: {} });
    calls.push(performance.now() - t0);
    if (r.isError || r.structuredContent.claimed !== false) throw new Error(`bench: unexpected claim answer ${JSON.stringify(r)}`);
  }
  await server.stop();
  const base = median(floor);
  const start = median(starts);
  const call = median(calls);
  const cli = median(cliCalls);
  figure(
    'mcp',
    'inbox mcp start to tools/list: time / node -e 0',
    start / base,
    'x',
    '<= 3',
    start / base <= 3,
    `${start.toFixed(0)} ms; node -e 0 ${base.toFixed(0)} ms`,
  );
  figure(
    'mcp',
    'tool call (claim, nothing to claim): time / the CLI call',
    call / cli,
    'x',
    '<= 0.5',
    call / cli <= 0.5,
    `${call.toFixed(1)} ms; CLI ${cli.toFixed(0)} ms`,
  );
}
