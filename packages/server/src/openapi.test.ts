import { describe, expect, it } from 'vitest';
import { openApiDocument } from './openapi.ts';

describe('openApiDocument', () => {
  it("names the board's routes: the change stream and whoami, behind the token", async () => {
    const doc = (await openApiDocument(new Map())) as { paths: Record<string, { get?: { security?: unknown; responses: Record<string, unknown> } }> };
    const changes = doc.paths['/v1/changes']?.get;
    expect(changes?.responses['200']).toMatchObject({ content: { 'text/event-stream': {} } });
    expect(changes?.responses['401']).toBeDefined();
    // No `security: []`: the document's bearer requirement applies (unlike /healthz).
    expect(changes?.security).toBeUndefined();
    expect(doc.paths['/v1/whoami']?.get?.responses['200']).toMatchObject({ content: { 'application/json': {} } });
    expect(doc.paths['/healthz']?.get?.security).toEqual([]);
  });
});
