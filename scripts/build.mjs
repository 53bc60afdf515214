// Builds every CLI into one self-contained CommonJS bundle with esbuild and places it where it is
// used: packages/<pkg>/dist/ (behind the npm bin links) and skills/<skill>/assets/ (the bundled
// skill executables). The native SQLite addon is copied beside each bundle, which loads it from
// there, so a copied skill folder keeps working without node_modules.
//
// Start-up: parsing the 1.5 MB bundle was most of a CLI call's own time. So each executable is a
// small launcher (FILE) that runs the bundle (FILE.bundle) from V8's code cache (FILE.v8cache),
// made here by running the CLI once on a scratch database. The cache is used only when it comes
// from the same build as the bundle and this V8 accepts it (same Node version and flags);
// otherwise the bundle is compiled as usual, just slower.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import os from 'node:os';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boardFiles } from './board-files.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'packages/store/package.json'));
const addon = path.join(path.dirname(require.resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node');

const clis = [
  { name: 'inbox', mcp: true, entry: 'packages/inbox/src/bin.ts', outputs: ['packages/inbox/dist/inbox.cjs', 'skills/inbox/assets/inbox'] },
  { name: 'orch', mcp: true, server: true, entry: 'packages/orch/src/bin.ts', outputs: ['packages/orch/dist/orch.cjs', 'skills/orch/assets/orch'] },
  {
    name: 'orch-worker-brief',
    entry: 'packages/worker-brief/src/bin.ts',
    outputs: ['packages/worker-brief/dist/orch-worker-brief.cjs', 'skills/orch/assets/orch-worker-brief'],
  },
];

if (!fs.existsSync(addon)) {
  console.error(`build: ${addon} is missing; the better-sqlite3 install step did not compile it (run \`npm rebuild better-sqlite3\`)`);
  process.exit(1);
}

/**
 * Puts `from`'s bytes at `to` by writing a temporary file beside it and renaming it into place:
 * a CLI that is running (a long `inbox work`, say) keeps its old, still valid file instead of
 * crashing on one overwritten under it.
 *
 * @param {string} from
 * @param {string} to
 * @param {number} [mode]
 */
function install(from, to, mode) {
  const tmp = `${to}.tmp-${process.pid}`;
  fs.copyFileSync(from, tmp);
  if (mode !== undefined) fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, to);
}

// The executable: reads the bundle and its code cache beside it and runs the bundle with this
// file's own require, module, __filename and __dirname, as if the bundle were this file. The cache
// ends with the id the bundle's first line carries, so a cache from another build is never used.
const LAUNCHER = `#!/usr/bin/env node
'use strict';
// Runs FILE.bundle from V8's code cache FILE.v8cache (see scripts/build.mjs in the orch repository).
const fs = require('node:fs');
const bundle = __filename + '.bundle';
let source;
try {
  source = fs.readFileSync(bundle, 'utf8');
} catch (err) {
  process.stderr.write(require('node:path').basename(__filename) + ': cannot read ' + bundle + ' (' + err.code + '); copy the whole folder this file came from\\n');
  process.exit(1);
}
let cachedData;
try {
  const cache = fs.readFileSync(__filename + '.v8cache');
  const id = source.slice(2, source.indexOf('\\n'));
  if (cache.length > id.length && cache.toString('latin1', cache.length - id.length) === id) cachedData = cache.subarray(0, cache.length - id.length);
} catch {}
new (require('node:vm').Script)(source, { filename: bundle, cachedData }).runInThisContext()(exports, require, module, __filename, __dirname);
`;

/**
 * The PostgreSQL driver (`pg` and what it needs, about a tenth of a bundle) is only for
 * `--db postgres://...`: the CLI bundles leave it out and require `./pg-driver.cjs` beside the
 * executable when a PostgreSQL URL is opened (packages/store/src/pg/driver.ts), so SQLite calls
 * never read it.
 */
/** @type {import('esbuild').Plugin} */
const pgDriverApart = {
  name: 'pg-driver-apart',
  setup(b) {
    // `import('pg')` gets a module of the bundle that requires the file (a plain require at call
    // time: the launcher's vm script has no callback for a dynamic import).
    b.onResolve({ filter: /^pg$/ }, () => ({ path: 'pg', namespace: 'pg-driver-apart' }));
    b.onLoad({ filter: /.*/, namespace: 'pg-driver-apart' }, () => ({
      contents: `module.exports = require(${JSON.stringify(`./${PG_DRIVER}`)});`,
      loader: 'js',
    }));
    b.onResolve({ filter: /^\.\/pg-driver\.cjs$/ }, (args) => ({ path: args.path, external: true }));
  },
};
const PG_DRIVER = 'pg-driver.cjs';

/**
 * What every bundle of the build shares: one CommonJS file for Node 20, without comments or
 * indentation (less to read at start-up); names are kept, so stack traces stay readable.
 * @type {import('esbuild').BuildOptions}
 */
const BUNDLE = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  legalComments: 'none',
  logLevel: 'warning',
  minifySyntax: true,
  minifyWhitespace: true,
};

/**
 * Bundles the `pg` driver alone (see pgDriverApart), once, into `file`.
 * @param {string} file
 */
async function buildPgDriver(file) {
  await build({
    stdin: { contents: "module.exports = require('pg');", resolveDir: root, loader: 'js' },
    outfile: file,
    ...BUNDLE,
    // pg-native is an optional native binding this tool does not use.
    external: ['pg-native'],
    plugins: [pgOnNodeOnly],
  });
}

/**
 * pg asks at load time whether it runs on Cloudflare Workers, by making a `new Response(...)`: on
 * Node that loads the whole fetch implementation (undici, http, http2, zlib, workers: about 30 ms of
 * a call's start-up) for nothing. These bundles only run on Node, so the question is answered at
 * build time. The build fails if pg stops asking it that way (then look again).
 */
/** @type {import('esbuild').Plugin} */
const pgOnNodeOnly = {
  name: 'pg-on-node-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (args) => {
      const source = fs.readFileSync(args.path, 'utf8');
      const probe = 'if (isCloudflareRuntime()) {';
      if (!source.includes(probe)) throw new Error(`${args.path}: pg no longer asks isCloudflareRuntime() the way scripts/build.mjs expects`);
      return { contents: source.replace(probe, 'if (false) {'), loader: 'js' };
    });
  },
};

/**
 * The MCP SDK is only for `orch mcp` and `inbox mcp`: the CLI bundles leave it out and require
 * `./mcp-sdk.cjs` beside the executable when an `mcp` command starts (packages/store/src/mcp/sdk.ts
 * is the one module that imports the SDK), so no other call reads it.
 * @type {import('esbuild').Plugin}
 */
const mcpSdkApart = {
  name: 'mcp-sdk-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/sdk\.ts$/ }, (args) => (args.importer === MCP_SDK_ENTRY ? { path: 'mcp-sdk', namespace: 'mcp-sdk-apart' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'mcp-sdk-apart' }, () => ({
      contents: `module.exports = require(${JSON.stringify(`./${MCP_SDK}`)});`,
      loader: 'js',
    }));
    b.onResolve({ filter: /^\.\/mcp-sdk\.cjs$/ }, (args) => ({ path: args.path, external: true }));
  },
};
const MCP_SDK = 'mcp-sdk.cjs';
const MCP_SDK_ENTRY = path.join(root, 'packages/store/src/mcp/server.ts');

/**
 * Bundles the MCP SDK's parts the servers use (packages/store/src/mcp/sdk.ts), once, into `file`.
 * @param {string} file
 */
async function buildMcpSdk(file) {
  await build({
    entryPoints: [path.join(root, 'packages/store/src/mcp/sdk.ts')],
    outfile: file,
    ...BUNDLE,
    charset: 'ascii',
    plugins: [englishZodOnly],
  });
}

/**
 * The server (`orch serve`: packages/server/src/app.ts, with the HTTP library, Hono and its Node
 * adapter) is only for `orch serve`: the orch bundle keeps the `serve` command's definition and
 * requires `./orch-server.cjs` beside the executable when `serve` starts (its one dynamic import of
 * app.ts), so no other call reads it, and the CLI bundles do not grow by it.
 * @type {import('esbuild').Plugin}
 */
const serverApart = {
  name: 'server-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/app\.ts$/ }, (args) => (args.importer === SERVER_COMMAND ? { path: 'orch-server', namespace: 'server-apart' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'server-apart' }, () => ({
      contents: `module.exports = require(${JSON.stringify(`./${SERVER}`)});`,
      loader: 'js',
    }));
    b.onResolve({ filter: /^\.\/orch-server\.cjs$/ }, (args) => ({ path: args.path, external: true }));
  },
};
const SERVER = 'orch-server.cjs';
const SERVER_COMMAND = path.join(root, 'packages/server/src/serve-command.ts');

/** Bundles the server (packages/server/src/app.ts and what it uses), once, into `file`. @param {string} file */
async function buildServer(file) {
  const plugins = [englishZodOnly, lightAssertForYargs, pgDriverApart, mcpSdkApart];
  await build({ entryPoints: [path.join(root, 'packages/server/src/app.ts')], outfile: file, ...BUNDLE, charset: 'ascii', plugins });
}

/**
 * zod exports every locale (about 40, a quarter of a bundle) through `z.locales`; the CLIs print
 * English messages only (zod's default, which it imports directly), so the bundle gets the English
 * locale alone. Less to load at start-up.
 */
/** @type {import('esbuild').Plugin} */
const englishZodOnly = {
  name: 'english-zod-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}zod${path.sep}`)
        ? { path: path.resolve(path.dirname(args.importer), '../locales/en.js'), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: path.dirname(args.path),
    }));
  },
};

/**
 * yargs takes two functions from Node's `assert` (`strictEqual`, `notStrictEqual`, to check its
 * own arguments); loading `node:assert` costs a few milliseconds of every call's start-up (it
 * sets up colours, which opens stderr). The bundle gives yargs those two functions alone, with
 * the same behaviour: they throw when the check fails.
 * @type {import('esbuild').Plugin}
 */
const lightAssertForYargs = {
  name: 'light-assert-for-yargs',
  setup(b) {
    b.onResolve({ filter: /^assert$/ }, (args) =>
      args.importer.includes(`${path.sep}yargs${path.sep}`) ? { path: 'assert', namespace: 'light-assert' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'light-assert' }, () => ({
      contents: [
        "const fail = (a, b, message, op) => { const e = new Error(message ?? `${String(a)} ${op} ${String(b)}`); e.code = 'ERR_ASSERTION'; throw e; };",
        "exports.strictEqual = (a, b, message) => { if (!Object.is(a, b)) fail(a, b, message, '!=='); };",
        "exports.notStrictEqual = (a, b, message) => { if (Object.is(a, b)) fail(a, b, message, '==='); };",
      ].join('\n'),
      loader: 'js',
    }));
  },
};

/**
 * Runs `bin` (a launcher) with `args` in `cwd`; throws when it fails.
 *
 * @param {string} bin
 * @param {string[]} args
 * @param {string} cwd
 */
function runStep(bin, args, cwd) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build: warming ${path.basename(bin)} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * Makes `launcher`.v8cache: the steps prepare a scratch database through the launcher (no cache
 * yet), then the last one runs the bundle in a process that writes V8's cache of everything it
 * compiled, followed by the bundle's id.
 *
 * @param {string} launcher
 * @param {string} id
 * @param {(db: string) => WarmUpStep[]} steps
 */
function makeCodeCache(launcher, id, steps) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'orch-build-'));
  try {
    const db = path.join(scratch, 'warm.db');
    const all = steps(db);
    const last = all.at(-1);
    if (last === undefined) throw new Error(`build: no warm-up step for ${launcher}`);
    let out = '';
    for (const [bin, args] of all.slice(0, -1)) out = runStep(bin ?? launcher, typeof args === 'function' ? args(out) : args, scratch);
    const producer = [
      "const fs = require('node:fs'), path = require('node:path'), { Script } = require('node:vm');",
      `const [launcher, id, args] = ${JSON.stringify([launcher, id, last[1]])};`,
      "const script = new Script(fs.readFileSync(launcher + '.bundle', 'utf8'), { filename: launcher + '.bundle' });",
      "process.on('exit', () => fs.writeFileSync(launcher + '.v8cache', Buffer.concat([script.createCachedData(), Buffer.from(id, 'latin1')])));",
      // `--help` first, in the same process: it loads every command, so the cache holds each
      // command module's initialisation (commands load lazily; the last step runs only one).
      "process.argv = [process.argv[0], launcher, '--help'];",
      'script.runInThisContext()({}, require, { exports: {} }, launcher, path.dirname(launcher));',
      'process.argv = [process.argv[0], launcher, ...args];',
      'script.runInThisContext()(exports, require, module, launcher, path.dirname(launcher));',
    ].join('\n');
    const r = spawnSync(process.execPath, ['-e', producer], { cwd: scratch, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`build: making the code cache of ${launcher} failed: ${r.stderr}`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

const inboxBin = path.join(root, clis[0].outputs[0]);
/**
 * One warm-up call: the executable (undefined: the CLI being built) and its arguments (or how to
 * make them from the standard output of the step before).
 * @typedef {[string | undefined, string[] | ((previous: string) => string[])]} WarmUpStep
 */

/**
 * What each CLI runs once at build time, on a scratch database, to make its code cache (the last step).
 * @type {Record<string, (db: string) => WarmUpStep[]>}
 */
const warmUps = {
  inbox: (db) => [
    [undefined, ['--db', db, 'init']],
    [undefined, ['--db', db, 'send', '--to', 'w', '--subject', 's', '--body', 'b']],
    [undefined, ['--db', db, '--json', 'claim', '--agent', 'w']],
  ],
  orch: (db) => [
    [inboxBin, ['--db', db, 'init']],
    [undefined, ['--db', db, 'run', 'init', '--run', 'r', '--goal', 'g']],
    [undefined, ['--db', db, 'task', 'add', '--run', 'r', '--task', 'a', '--title', 'a', '--default-to', 'w']],
    [undefined, ['--db', db, 'task', 'add', '--run', 'r', '--task', 'b', '--title', 'b', '--default-to', 'w']],
    [undefined, ['--db', db, 'dep', 'add', '--run', 'r', '--task', 'b', '--depends-on', 'a']],
    [undefined, ['--db', db, 'dispatch', '--run', 'r', '--task', 'a', '--execution-mode', 'analysis', '--body', 'go']],
    // A worker's claim and progress, so the last step's reconcile folds them in: the code that
    // writes events (what `orch wait` runs when a worker's commit wakes it) is in the cache too.
    [inboxBin, ['--db', db, '--json', 'claim', '--agent', 'w']],
    [
      inboxBin,
      (claimed) => {
        const { thread, lease } = JSON.parse(claimed);
        return ['--db', db, 'progress', '--thread', thread.id, '--lease', lease.token, '--body', 'warming'];
      },
    ],
    [undefined, ['--db', db, '--json', 'status', '--run', 'r']],
  ],
  'orch-worker-brief': () => [[undefined, ['--help']]],
};

const board = await boardFiles(root, install); // the web board's files, beside every orch-server.cjs
const pgDriver = path.join(root, 'test-results', `${PG_DRIVER}.build-${process.pid}`);
fs.mkdirSync(path.dirname(pgDriver), { recursive: true });
await buildPgDriver(pgDriver);
const mcpSdk = path.join(root, 'test-results', `${MCP_SDK}.build-${process.pid}`);
await buildMcpSdk(mcpSdk);
const server = path.join(root, 'test-results', `${SERVER}.build-${process.pid}`);
await buildServer(server);

for (const cli of clis) {
  const [first, ...copies] = cli.outputs.map((o) => path.join(root, o));
  fs.mkdirSync(path.dirname(first), { recursive: true });
  install(addon, path.join(path.dirname(first), 'better_sqlite3.node'));
  const built = `${first}.build-${process.pid}.cjs`;
  await build({
    entryPoints: [path.join(root, cli.entry)],
    outfile: `${built}.esbuild`,
    ...BUNDLE,
    // The text stays ASCII (read faster).
    charset: 'ascii',
    plugins: [englishZodOnly, lightAssertForYargs, pgDriverApart, mcpSdkApart, serverApart],
  });
  const code = fs.readFileSync(`${built}.esbuild`, 'utf8');
  if (/[^\x00-\x7f]/.test(code)) throw new Error(`build: the ${cli.name} bundle is not ASCII`);
  fs.rmSync(`${built}.esbuild`);
  const id = crypto.createHash('sha256').update(code).digest('hex').slice(0, 24);
  fs.writeFileSync(`${built}.bundle`, `//${id}\n(function (exports, require, module, __filename, __dirname) {${code}\n})`);
  fs.writeFileSync(built, LAUNCHER, { mode: 0o755 });
  const warmUp = warmUps[cli.name];
  if (warmUp === undefined) throw new Error(`build: no warm-up for ${cli.name}`);
  makeCodeCache(built, id, warmUp);
  for (const out of [first, ...copies]) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    // The bundle and cache first: a launcher starting meanwhile finds a matching pair or no cache.
    install(`${built}.bundle`, `${out}.bundle`);
    install(`${built}.v8cache`, `${out}.v8cache`);
    install(built, out, 0o755);
    install(addon, path.join(path.dirname(out), 'better_sqlite3.node'));
    install(pgDriver, path.join(path.dirname(out), PG_DRIVER));
    if (cli.mcp) install(mcpSdk, path.join(path.dirname(out), MCP_SDK));
    if (cli.server) {
      install(server, path.join(path.dirname(out), SERVER));
      board.installInto(path.dirname(out));
    }
    // An extensionless file is read as CommonJS only if no package.json around it says otherwise.
    if (out !== first) fs.writeFileSync(path.join(path.dirname(out), 'package.json'), '{ "type": "commonjs" }\n');
  }
  for (const f of [built, `${built}.bundle`, `${built}.v8cache`]) fs.rmSync(f);
}
fs.rmSync(pgDriver);
fs.rmSync(mcpSdk);
fs.rmSync(server);
board.close();
console.log(`build: ${clis.map((c) => c.outputs.join(', ')).join('; ')}`);
