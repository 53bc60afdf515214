export * from './brief.ts';
export { briefCli } from './cli.ts';
