#!/usr/bin/env node
// The bundled CLI lives in ../dist (built by `npm run build`, which `npm ci` runs).
require('../dist/orch-worker-brief.cjs');
