// MCP tools made from command definitions: no logic of their own beyond mapping. A registry
// entry's `mcp` names the tool a command is served as; commands naming the same tool become one
// tool whose `action` argument picks the command. A tool's input schema is the commands' zod input
// schemas as JSON Schema (kept lean: types, enums, the flags' own descriptions); a call validates
// its arguments with the command's schema, runs the command, and answers with exactly the
// document the CLI prints with --json, or the CLI's `{error: {code, message, details}}`.
//
// Nothing here loads the MCP SDK (mcp/server.ts does): a transport (stdio now, Streamable HTTP on
// a server later) wraps a tool set built here.
import { z } from 'zod';
import type { CliSpec, CommandContext, CommandDefinition, McpToolSpec } from '../command.ts';
import { type ErrorJson, toAppError, ValidationError } from '../errors.ts';

/** A tool as `tools/list` gives it. */
export interface McpTool {
  name: string;
  description: string;
  inputSchema: { type: 'object'; properties: Record<string, McpProperty>; required?: string[]; additionalProperties: false };
}

export interface McpProperty {
  type: string;
  description?: string;
  enum?: string[];
}

/** What a tool call answers: the command's JSON document, or the CLI's error document. */
export type McpCallOutcome = { isError: false; json: unknown } | { isError: true; json: ErrorJson; cause?: unknown };

/** The tools of one CLI for one caller, and how to call them. */
export interface McpToolSet {
  name: string;
  version: string;
  instructions: string;
  tools: McpTool[];
  /**
   * Runs a tool. Never throws: a refusal or a bug is an error outcome. Once `signal` aborts (the
   * client cancelled the call, the server is stopping), a waiting command ends as at its timeout.
   */
  call(name: string, args: unknown, signal?: AbortSignal): Promise<McpCallOutcome>;
  /** Resource templates (`resources/templates/list`). */
  resourceTemplates: { uriTemplate: string; name: string; description: string; mimeType: 'application/json' }[];
  /** Reads a resource: the command's document, or undefined for a URI no template matches. Never throws. */
  read(uri: string): Promise<McpCallOutcome | undefined>;
}

/** What `tools/list` costs a client's context, in tokens counted as JSON characters / 4. */
export function toolListTokens(tools: McpTool[]): number {
  return Math.ceil(JSON.stringify({ tools }).length / 4);
}

interface Action {
  def: CommandDefinition;
  /** Argument name (snake_case) → input key (camelCase), for the keys a client may give. */
  offered: Map<string, string>;
  integers: Set<string>;
}

/**
 * The MCP tools of `spec` (its registry entries with an `mcp` tool name), run with `ctx`. With
 * `ctx.actingAgent`, the tools act only as that agent: the keys a tool lists in `agentKeys` are set
 * to it, and the inbox refuses any other agent's thread (FORBIDDEN).
 */
export async function buildToolSet(spec: CliSpec, ctx: CommandContext): Promise<McpToolSet> {
  const setSpec = spec.mcp;
  if (!setSpec) throw new Error(`${spec.program} has no MCP tool set`);
  const grouped = new Map<string, { action: string; def: CommandDefinition }[]>();
  for (const entry of spec.commands) {
    if (entry.mcp === undefined) continue;
    const def = await entry.load();
    grouped.set(entry.mcp, [...(grouped.get(entry.mcp) ?? []), { action: entry.name.replace(/ /g, '_'), def }]);
  }
  const tools: McpTool[] = [];
  const actions = new Map<string, Map<string, Action>>();
  const specs = new Map<string, McpToolSpec>();
  for (const [name, members] of grouped) {
    const toolSpec: McpToolSpec = setSpec.tools[name] ?? { description: members.map((m) => m.def.summary).join('; ') };
    specs.set(name, toolSpec);
    const properties: Record<string, McpProperty> = {};
    const requiredBy = new Map<string, number>();
    const byAction = new Map<string, Action>();
    if (members.length > 1) {
      properties.action = {
        type: 'string',
        enum: members.map((m) => m.action),
        description: members.map((m) => `${m.action}: ${m.def.summary}`).join('. '),
      };
    }
    for (const { action, def } of members) {
      const schema = z.toJSONSchema(def.input, { io: 'input', unrepresentable: 'any' }) as {
        properties?: Record<string, { type?: string; enum?: string[]; pattern?: string }>;
        required?: string[];
      };
      const hidden = new Set([...(toolSpec.omit ?? []), ...(toolSpec.agentKeys ?? []), ...Object.keys(toolSpec.fixed ?? {})]);
      const offered = new Map<string, string>();
      const integers = new Set<string>();
      for (const [key, prop] of Object.entries(schema.properties ?? {})) {
        if (hidden.has(key)) continue;
        const arg = snakeCase(key);
        offered.set(arg, key);
        const integer = prop.type === 'string' && prop.pattern === '^-?\\d+$';
        if (integer) integers.add(key);
        if (properties[arg] === undefined) {
          const describe = toolSpec.bounds?.[key]?.describe ?? def.flags[kebabCase(key)]?.describe;
          properties[arg] = {
            type: integer ? 'integer' : (prop.type ?? 'string'),
            ...(prop.enum ? { enum: prop.enum } : {}),
            ...(describe ? { description: describe } : {}),
          };
        }
        if (schema.required?.includes(key) && toolSpec.bounds?.[key] === undefined) requiredBy.set(arg, (requiredBy.get(arg) ?? 0) + 1);
      }
      byAction.set(action, { def, offered, integers });
    }
    const required = [...(members.length > 1 ? ['action'] : []), ...[...requiredBy].filter(([, count]) => count === members.length).map(([arg]) => arg)];
    tools.push({
      name,
      description: toolSpec.description,
      inputSchema: { type: 'object', properties, ...(required.length > 0 ? { required } : {}), additionalProperties: false },
    });
    actions.set(name, byAction);
  }

  const settle = async (work: () => Promise<unknown>): Promise<McpCallOutcome> => {
    try {
      return { isError: false, json: await work() };
    } catch (err) {
      const appError = toAppError(err);
      const body: ErrorJson = { error: { code: appError.code, message: appError.message } };
      if (appError.details !== undefined) body.error.details = appError.details;
      // A bug (INTERNAL) keeps what was thrown, for the server's log; any other refusal is an answer.
      return appError.code === 'INTERNAL' ? { isError: true, json: body, cause: err } : { isError: true, json: body };
    }
  };

  const resources = await Promise.all(
    (setSpec.resources ?? []).map(async (r) => {
      const entry = spec.commands.find((c) => c.name === r.command);
      if (!entry) throw new Error(`${spec.program}: resource ${r.uriTemplate} names no command ${r.command}`);
      const keys: string[] = [];
      const pattern = r.uriTemplate.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_, key: string) => {
        keys.push(key);
        return '([^/?#]+)';
      });
      return { spec: r, def: await entry.load(), keys, pattern: new RegExp(`^${pattern}$`) };
    }),
  );
  const read = async (uri: string): Promise<McpCallOutcome | undefined> => {
    for (const r of resources) {
      const m = r.pattern.exec(uri);
      if (!m) continue;
      return settle(async () => {
        const raw: Record<string, unknown> = {};
        r.keys.forEach((key, i) => {
          raw[key] = decodeURIComponent(m[i + 1] ?? '');
        });
        const parsed = r.def.input.safeParse(raw);
        if (!parsed.success) {
          const problems = parsed.error.issues.map((issue) => ({ path: issue.path.map(String).map(snakeCase).join('.') || '(uri)', message: issue.message }));
          throw new ValidationError(problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems);
        }
        return r.def.run(ctx, parsed.data);
      });
    }
    return undefined;
  };

  const call = (name: string, args: unknown, signal?: AbortSignal): Promise<McpCallOutcome> =>
    settle(async () => {
      const byAction = actions.get(name);
      const toolSpec = specs.get(name);
      if (!byAction || !toolSpec) throw new ValidationError(`unknown tool ${name}`, [{ path: '(tool)', message: `unknown tool ${name}` }]);
      const given = args ?? {};
      if (typeof given !== 'object' || Array.isArray(given))
        throw new ValidationError('the arguments must be an object', [{ path: '(input)', message: 'must be an object' }]);
      const { action: actionName, ...rest } = given as Record<string, unknown>;
      let action: Action | undefined;
      if (byAction.size === 1) {
        action = [...byAction.values()][0];
        if (actionName !== undefined) rest.action = actionName;
      } else {
        action = typeof actionName === 'string' ? byAction.get(actionName) : undefined;
        if (!action) {
          const message = `must be one of ${[...byAction.keys()].join(', ')}`;
          throw new ValidationError(`action: ${message}`, [{ path: 'action', message }]);
        }
      }
      const chosen = action as Action;
      const input = mapArguments(chosen, toolSpec, rest, byAction.size > 1 ? (actionName as string) : undefined, ctx);
      return chosen.def.run(signal ? { ...ctx, signal } : ctx, input);
    });

  return {
    name: setSpec.name,
    version: spec.version,
    instructions: setSpec.instructions,
    tools,
    call,
    resourceTemplates: resources.map((r) => ({
      uriTemplate: r.spec.uriTemplate,
      name: r.spec.name,
      description: r.spec.description,
      mimeType: 'application/json' as const,
    })),
    read,
  };
}

/**
 * A call's arguments as the command's input: snake_case names to its camelCase keys, whole
 * numbers given as JSON numbers to the strings its flags take (and JSON given for a JSON-text flag
 * to its text), the tool's fixed values and the acting agent filled in, its bounds applied; then
 * the command's own schema checks it.
 *
 * @throws ValidationError (2) listing every problem, by argument name.
 */
function mapArguments(action: Action, toolSpec: McpToolSpec, args: Record<string, unknown>, actionName: string | undefined, ctx: CommandContext): unknown {
  const problems: { path: string; message: string }[] = [];
  const raw: Record<string, unknown> = {};
  for (const [arg, value] of Object.entries(args)) {
    const key = action.offered.get(arg);
    if (key === undefined) {
      problems.push({ path: arg, message: actionName ? `is not an argument of action ${actionName}` : 'is not an argument of this tool' });
      continue;
    }
    if (value === undefined || value === null) continue;
    // A JSON-text flag (`--payload-json`) may be given as the JSON itself.
    if (key.endsWith('Json') && typeof value !== 'string') raw[key] = JSON.stringify(value);
    else raw[key] = action.integers.has(key) && typeof value === 'number' ? String(value) : value;
  }
  for (const [key, bound] of Object.entries(toolSpec.bounds ?? {})) {
    if (!action.integers.has(key)) continue;
    const value = raw[key];
    if (value === undefined) raw[key] = String(bound.default);
    else if (typeof value === 'string' && /^\d+$/.test(value.trim()) && Number(value) > bound.max) {
      problems.push({ path: snakeCase(key), message: `must be at most ${bound.max} here (a tool call must end before the client gives up on it; call again)` });
    }
  }
  for (const [key, value] of Object.entries(toolSpec.fixed ?? {})) raw[key] = value;
  for (const key of toolSpec.agentKeys ?? []) if (ctx.actingAgent !== undefined) raw[key] = ctx.actingAgent;
  if (problems.length === 0) {
    const parsed = action.def.input.safeParse(raw);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) {
      const key = issue.path[0];
      const missing = issue.code === 'invalid_type' && typeof key === 'string' && raw[key] === undefined;
      problems.push({
        path: typeof key === 'string' ? snakeCase(key) : issue.path.join('.') || '(input)',
        message: missing ? 'is required' : argumentNames(action, issue.message),
      });
    }
  }
  throw new ValidationError(problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems);
}

/** A schema's message with the flags it names (`--body-file`) spelled as this tool's arguments. */
function argumentNames(action: Action, message: string): string {
  return message.replace(/--([a-z][a-z0-9-]*)/g, (flag, name: string) => {
    const arg = snakeCase(name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()));
    return action.offered.has(arg) ? arg : flag;
  });
}

function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function kebabCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
