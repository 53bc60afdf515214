import { briefCli } from '@orch/worker-brief';
import { createOrchCli } from '@orch/orch';
import { inboxCli } from '@orch/inbox';
import type { CliSpec, CommandDefinition, CommandEntry } from '@orch/store';

/** The programs a server serves, by the name in its URLs. */
export type Program = 'orch' | 'inbox' | 'orch-worker-brief';

/** Commands a server does not serve: they set up or hold the process itself, or name their own databases. */
const NOT_SERVED: Record<Program, readonly string[]> = {
  inbox: ['init', 'work', 'copy', 'mcp'],
  orch: ['serve', 'token create', 'token list', 'token revoke', 'copy', 'mcp'],
  'orch-worker-brief': [],
};

/**
 * Commands whose answer is not kept for a retry with the same Idempotency-Key: they change nothing
 * a second call would change again (a read), so running it again answers the same.
 */
const READS: Record<Program, readonly string[]> = {
  inbox: ['list', 'doctor'],
  orch: ['run show', 'run list', 'task show', 'ready', 'status', 'blocked', 'diff', 'wait', 'doctor'],
  'orch-worker-brief': ['$0'],
};

/** One served command: its URL path, where it comes from, and how to load it. */
export interface Route {
  /** `inbox/claim`, `orch/run/init`, `orch-worker-brief`. */
  path: string;
  program: Program;
  /** The registry name: `claim`, `run init`, `$0`. */
  command: string;
  entry: CommandEntry;
  /** The definition, loaded on first use and kept (a command made per load, like dispatch, is made once). */
  load(): Promise<CommandDefinition>;
  /** Whether a retried request gets the first answer back (see READS). */
  keep: boolean;
}

/**
 * The CLIs as a server runs them: briefs rendered at dispatch tell workers to run `inbox` from
 * their PATH (a worker on another machine has no path of the server's).
 */
export function servedSpecs(): Record<Program, CliSpec> {
  return {
    orch: createOrchCli({ workerInbox: 'inbox' }),
    inbox: inboxCli,
    'orch-worker-brief': briefCli({ defaultInbox: 'inbox' }),
  };
}

/** Every served command, by URL path (`inbox/claim`). Loads no command module. */
export function routeTable(specs: Record<Program, CliSpec> = servedSpecs()): Map<string, Route> {
  const table = new Map<string, Route>();
  for (const [program, spec] of Object.entries(specs) as [Program, CliSpec][]) {
    for (const entry of spec.commands) {
      if (NOT_SERVED[program].includes(entry.name)) continue;
      const path = entry.name === '$0' ? program : `${program}/${entry.name.split(' ').join('/')}`;
      let loaded: Promise<CommandDefinition> | undefined;
      const load = () => {
        loaded ??= entry.load();
        return loaded;
      };
      table.set(path, { path, program, command: entry.name, entry, load, keep: !READS[program].includes(entry.name) });
    }
  }
  return table;
}

/** The definitions of every route, in table order. */
export async function loadRoutes(table: Map<string, Route>): Promise<{ route: Route; def: CommandDefinition }[]> {
  return Promise.all([...table.values()].map(async (route) => ({ route, def: await route.load() })));
}
