export { startServer, MAX_BODY_BYTES, type ServerOptions, type RunningServer } from './app.ts';
export { handleCommand, parseBody, type CommandRequest, type ServerCommandEnv } from './handle.ts';
export { routeTable, servedSpecs, type Route, type Program } from './routes.ts';
export { statusOf, EXIT_CODE_HEADER, ServerError, type HttpAnswer } from './responses.ts';
export { openApiDocument } from './openapi.ts';
export type { Principal } from './auth.ts';
