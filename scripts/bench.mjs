// `npm run bench`: the performance figures of issue 7, as ratios measured side by side in one run
// (these machines are shared and noisy; absolute times mean little). Prints a table with each
// target and writes every figure to test-results/bench.json. Not a test: nothing here fails CI.
//
// Setup shortcuts (bulk rows inserted with plain SQL, the bench's own raw commits) are only there
// to build large fixtures quickly and to time a commit precisely; what is measured is the real CLI
// or library.
//
// The parts live in scripts/bench/: common.mjs (paths, timing, figures), cli.mjs, throughput.mjs,
// wake.mjs and scale.mjs (parts 1 to 4, SQLite), postgres.mjs (part 5: claims, wake-ups and scale
// on the PostgreSQL server BENCH_PG names, default postgres://127.0.0.1:5432/test, in schemas made
// and dropped by the run; skipped, saying so, without a server), server.mjs (part 7: `orch serve` over
// loopback), board.mjs (part 8: the live board in Debian's chromium; skipped, saying so, without it),
// baseline.mjs (builds --baseline=REF).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildBaseline } from './bench/baseline.mjs';
import { boardBench } from './bench/board.mjs';
import { cliLatency } from './bench/cli.mjs';
import { mcpLatency } from './bench/mcp.mjs';
import { figures, INBOX, makeTmp, ORCH, OUT, quick, ROOT } from './bench/common.mjs';
import { postgres } from './bench/postgres.mjs';
import { scale } from './bench/scale.mjs';
import { serverBench } from './bench/server.mjs';
import { throughput } from './bench/throughput.mjs';
import { wakeups } from './bench/wake.mjs';

// `--only=cli,mcp,throughput,wake,scale,postgres,server,board` runs some parts (figures are still written to bench.json).
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const part = (/** @type {string} */ name) => only === undefined || only.includes(name);
// `--baseline=REF` also times the CLIs built from REF (e.g. a commit before a change), interleaved
// with the current ones (latency part only).
const baselineRef = process.argv.find((a) => a.startsWith('--baseline='))?.slice('--baseline='.length);

for (const bin of [INBOX, ORCH]) {
  if (!fs.existsSync(bin)) {
    console.error(`bench: ${path.relative(ROOT, bin)} is missing; run \`npm run build\` first`);
    process.exit(1);
  }
}
if (baselineRef) console.log(`bench: building ${baselineRef} ...`);
const baseline = baselineRef ? buildBaseline(ROOT, baselineRef) : undefined;
const tmp = makeTmp();

// This machine is shared: the load average around the run says how much the absolute times mean.
const loadBefore = os.loadavg()[0];
const started = performance.now();
try {
  console.log(`bench: measuring in ${tmp}${quick ? ' (quick)' : ''} ...`);
  if (part('cli')) cliLatency(baseline);
  if (part('mcp')) await mcpLatency();
  if (part('throughput')) await throughput();
  if (part('wake')) await wakeups();
  if (part('scale')) scale();
  if (part('postgres')) await postgres();
  if (part('server')) await serverBench();
  if (part('board')) await boardBench();
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
  if (baseline) fs.rmSync(baseline.dir, { recursive: true, force: true });
}
const seconds = (performance.now() - started) / 1000;
const load = [loadBefore, os.loadavg()[0]].map((l) => Number(l.toFixed(1)));
const fmt = (/** @type {number} */ v) => (Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const rows = [
  ['FIGURE', 'VALUE', 'TARGET', 'MET', 'NOTE'],
  ...figures.map((f) => [f.name, `${fmt(f.value)} ${f.unit}`, f.target, f.met === null ? '' : f.met ? 'yes' : 'NO', f.note]),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const line = (/** @type {string[]} */ r) =>
  r
    .map((c, j) => (j === r.length - 1 ? c : c.padEnd(widths[j] ?? 0)))
    .join('  ')
    .trimEnd();
console.log(`\n${line(rows[0])}`);
for (const g of [...new Set(figures.map((f) => f.group))]) {
  console.log(`[${g}]`);
  figures.forEach((f, i) => f.group === g && console.log(line(rows[i + 1])));
}
const missed = figures.filter((f) => f.met === false);
fs.mkdirSync(OUT, { recursive: true });
fs.writeFileSync(
  path.join(OUT, 'bench.json'),
  `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, quick, only: only ?? null, seconds, load, figures }, null, 2)}\n`,
);
console.log(
  `\n${figures.filter((f) => f.met === true).length} targets met, ${missed.length} missed; ${seconds.toFixed(0)} s; load average ${load[0]} before, ${load[1]} after (${os.cpus().length} cores); figures in test-results/bench.json`,
);
