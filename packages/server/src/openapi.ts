import { VERSION } from '@orch/store';
import { z } from 'zod';
import { type Route, loadRoutes } from './routes.ts';

const ERROR = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
    },
  },
};

/**
 * The OpenAPI 3.1 document of a server: one POST per served command, its request body the
 * command's zod input schema as JSON Schema (plus `$files`), its answer the CLI's `--json`
 * document (a generic object here) or the CLI's error document; and the stream, health and
 * readiness routes.
 */
export async function openApiDocument(routes: Map<string, Route>): Promise<unknown> {
  const paths: Record<string, unknown> = {};
  const errors = Object.fromEntries(
    [
      ['400', 'Bad input (exit 2)'],
      ['401', 'No valid token'],
      ['403', 'The token may not do this'],
      ['404', 'Not found (exit 3), or no such command (UNKNOWN_COMMAND)'],
      ['409', 'Conflict (exit 4), lease lost (exit 5), or IDEMPOTENCY_MISMATCH'],
      ['413', 'Body too large'],
      ['429', 'Rate limited (Retry-After)'],
      ['503', 'Database unavailable (exit 6)'],
    ].map(([status, description]) => [status, { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
  );
  for (const { route, def } of await loadRoutes(routes)) {
    const schema = z.toJSONSchema(def.input, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
    const properties = { ...((schema.properties as Record<string, unknown> | undefined) ?? {}) };
    properties.$files = {
      type: 'object',
      additionalProperties: { type: 'string' },
      description: 'The files named by file flags (--body-file, --dispatch-json), by the path as given, read by the client',
    };
    delete schema.$schema;
    paths[`/v1/${route.path}`] = {
      post: {
        operationId: route.path.replace(/[/-](\w)/g, (_, c: string) => c.toUpperCase()),
        summary: def.summary,
        ...(def.description ? { description: def.description } : {}),
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{22,128}$' },
            description: 'The same on every retry of one call: a repeat gets the first answer (Idempotency-Replayed: true)',
          },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: { ...schema, properties, additionalProperties: false } } } },
        responses: {
          '200': {
            description: 'The document the CLI prints with --json (header Orch-Exit-Code: the exit code, usually 0)',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
          ...errors,
        },
      },
    };
  }
  const stream = (what: string) => ({
    get: {
      summary: `Live ${what} as Server-Sent Events, resumable with Last-Event-ID`,
      parameters: [
        { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: 0 } },
        { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
      ],
      responses: { '200': { description: `text/event-stream of ${what}`, content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors },
    },
  });
  paths['/v1/runs/{run}/events'] = { parameters: [{ name: 'run', in: 'path', required: true, schema: { type: 'string' } }], ...stream('run events') };
  paths['/v1/threads/{thread}/messages'] = {
    parameters: [{ name: 'thread', in: 'path', required: true, schema: { type: 'string' } }],
    ...stream('thread messages'),
  };
  // The board's two routes (docs/board.md): its change stream and who the token is.
  paths['/v1/changes'] = {
    get: {
      summary: 'A `change` event after every commit to the database (at most one per 50 ms): the board reads again what it shows',
      parameters: [{ name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
      responses: { '200': { description: 'text/event-stream of change ticks', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors },
    },
  };
  paths['/v1/whoami'] = {
    get: {
      summary: 'Who the request is: {"kind": "local"} or {"kind": "token", "id", "name", "role", "agent"?}',
      responses: { '200': { description: 'the principal', content: { 'application/json': { schema: { type: 'object' } } } }, ...errors },
    },
  };
  paths['/healthz'] = { get: { summary: 'Liveness', security: [], responses: { '200': { description: '{"ok": true}' } } } };
  paths['/readyz'] = {
    get: { summary: 'The database is reachable and its schema current', security: [], responses: { '200': { description: 'ready' }, '503': errors['503'] } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'orch serve',
      version: VERSION,
      description: "One endpoint per command of orch, inbox and orch-worker-brief; bodies and answers are the CLI's --json documents.",
    },
    components: { schemas: { Error: ERROR }, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
