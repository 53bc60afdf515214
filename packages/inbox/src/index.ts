export * from './schema.ts';
export * from './migrations.ts';
export * from './inbox.ts';
export * from './views.ts';
export * from './threads.ts';
export * from './leases.ts';
export * from './waiting.ts';
export { inboxCli, EXIT_CODES_HELP } from './cli.ts';
