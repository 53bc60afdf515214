// The one module that imports the HTTP library (the server's bundle, orch-server.cjs, holds it:
// scripts/build.mjs).
export { Hono } from 'hono';
export { serve } from '@hono/node-server';
