import { copyCommand, inboxCopyPackage } from '@orch/inbox';
import { serverCopyPackage } from '@orch/server/token-commands';
import { orchMigrations } from '../migrations.ts';

/** `orch copy`: `inbox copy` that also knows orch's tables and the server's tokens (the inbox CLI cannot create them). */
export const command = copyCommand('orch', [
  inboxCopyPackage,
  { migrations: orchMigrations, upgradeHint: (file: string) => `orch --db ${file} doctor --repair` },
  serverCopyPackage,
]);
