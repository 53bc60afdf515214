// The one module that imports the HTTP library: the build bundles it apart (http-lib.cjs beside the
// orch executable, see scripts/build.mjs), so no CLI call but `orch serve` reads it.
export { Hono } from 'hono';
export { serve } from '@hono/node-server';
