// The orch tables' schema: current, missing, or outdated (and then upgraded by --repair).
import { AppError, assertSchemaCurrent, migrate, problem } from '@orch/store';
import { orchMigrations } from '../migrations.ts';
import type { Orch } from '../orch.ts';
import type { Finding } from './finding.ts';

/** Whether the orch tables are current (or were upgraded by `repair`), missing, or outdated. */
export async function orchSchema(orch: Orch, repair: boolean, findings: Finding[]): Promise<'current' | 'missing' | 'outdated'> {
  try {
    // Outdated orch tables are upgraded by this very command, so that is the hint to give.
    await assertSchemaCurrent(orch.store, orchMigrations, `orch --db ${orch.store.path} doctor --repair`);
    return 'current';
  } catch (err) {
    if (err instanceof AppError && err.code === 'DB_NOT_INITIALISED') return 'missing';
    if (!(err instanceof AppError && err.code === 'DB_OUTDATED')) throw err;
    const p = problem({ kind: 'schema_outdated', severity: 'error', message: err.message, repair: 'apply the missing orch migrations' });
    findings.push({ problem: p });
    if (!repair) return 'outdated';
    await migrate(orch.store, orchMigrations, orch.clock);
    p.repaired = true;
    return 'current';
  }
}
