import { copyCommand, inboxCopyPackage } from '@orch/inbox';
import { orchMigrations } from '../migrations.ts';

/** `orch copy`: `inbox copy` that also knows orch's tables (the inbox CLI cannot create them). */
export const command = copyCommand('orch', [
  inboxCopyPackage,
  { migrations: orchMigrations, upgradeHint: (file: string) => `orch --db ${file} doctor --repair` },
]);
