/**
 * The task submission body: the nested form `{problem_id, parameters:{…}}` and the flat form
 * with the same fields at top level (the earlier spec's shape), both validated strictly — an
 * unknown field is a 422 naming it, never silently dropped.
 */
import { AppError } from '../errors.js';
import type { TaskParameters } from '../queue/taskRecord.js';

export const PROBLEM_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$';

export const agentConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 200, description: 'OpenRouter id (openai/gpt-4o-mini), a short name (gpt-4o-mini), `openai:<model>` or `local:<model>`.' },
    temperature: { type: 'number', minimum: 0, maximum: 2 },
    max_tokens: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    top_p: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    use_openrouter: { type: 'boolean', description: 'Route the model through OpenRouter even when an OpenAI key is set.' },
    prompt_template: { type: 'string', enum: ['DOCS_SHELL_ONLY', 'DOCS'], description: 'Which AIOpsLab client template builds the system prompt (default DOCS_SHELL_ONLY, as the stock OpenRouter/GPT clients).' },
    normalize_reply: { type: 'boolean', description: 'Strip a language tag from the reply\'s code fence before AIOpsLab parses it (off by default; changes benchmark semantics; recorded per message).' },
  },
} as const;

/** Fields allowed both inside `parameters` and (flat form) at top level. */
const parameterProperties = {
  max_steps: { type: 'integer', minimum: 1, maximum: 1000, description: 'Agent steps before AIOpsLab evaluates whatever was submitted. Default 30.' },
  timeout_minutes: { type: 'integer', minimum: 1, maximum: 180, description: 'Wall-clock limit of the run. Default 30.' },
  timeout: { type: 'number', minimum: 1, maximum: 10800, description: 'Legacy: the timeout in seconds (rounded up to whole minutes). Use timeout_minutes.' },
  priority: { type: 'integer', minimum: 0, maximum: 10, description: 'Higher runs first. Default 5.' },
  agent_config: agentConfigSchema,
  backend_type: { type: 'string', enum: ['kind', 'existing'], description: 'Only workers of this backend may run it; absent = any.' },
  metadata: { type: 'object', description: 'Free-form labels kept with the task.' },
  callback_url: { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 2048, description: 'POSTed on every terminal state.' },
  max_total_tokens: { type: 'integer', minimum: 1, description: 'Stop the task with budget_exceeded past this many LLM tokens.' },
  max_cost_usd: { type: 'number', exclusiveMinimum: 0, description: 'Stop the task with budget_exceeded past this spend.' },
} as const;

export const taskParametersSchema = { type: 'object', additionalProperties: false, properties: parameterProperties } as const;

export const createTaskBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['problem_id'],
  properties: {
    problem_id: { type: 'string', pattern: PROBLEM_ID_PATTERN, description: 'An AIOpsLab problem id (GET /api/v1/problems).' },
    parameters: taskParametersSchema,
    experiment_id: { type: 'string', format: 'uuid' },
    ...parameterProperties,
  },
} as const;

type ParamInput = {
  max_steps?: number; timeout_minutes?: number; timeout?: number; priority?: number;
  agent_config?: Record<string, unknown>; backend_type?: string; metadata?: Record<string, unknown>;
  callback_url?: string; max_total_tokens?: number; max_cost_usd?: number;
};

export type CreateTaskBody = ParamInput & { problem_id: string; parameters?: ParamInput; experiment_id?: string };

const PARAM_KEYS = Object.keys(parameterProperties) as Array<keyof ParamInput>;

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Merge flat and nested forms, apply defaults, and turn the legacy `timeout` into minutes. */
export function normalizeTaskParameters(body: CreateTaskBody, defaults: { model: string }): TaskParameters {
  const nested: ParamInput = body.parameters ?? {};
  const merged: ParamInput = { ...nested };
  const conflicts: Array<{ field: string; reason: string }> = [];
  for (const k of PARAM_KEYS) {
    if (body[k] === undefined) continue;
    if (nested[k] !== undefined && !sameValue(nested[k], body[k])) {
      conflicts.push({ field: k, reason: `given both at top level and in parameters with different values` });
    }
    (merged as Record<string, unknown>)[k] = body[k];
  }
  if (conflicts.length) throw new AppError('validation_failed', `Conflicting values for ${conflicts.map((c) => c.field).join(', ')}`, conflicts);

  let timeoutMinutes = merged.timeout_minutes;
  if (merged.timeout !== undefined) {
    const fromSeconds = Math.max(1, Math.ceil(merged.timeout / 60));
    if (timeoutMinutes !== undefined && timeoutMinutes !== fromSeconds) {
      throw new AppError('validation_failed', 'timeout (seconds) and timeout_minutes disagree; give one of them', [
        { field: 'parameters.timeout', reason: `${merged.timeout} s is ${fromSeconds} min but timeout_minutes is ${timeoutMinutes}` },
      ]);
    }
    if (fromSeconds > 180) throw new AppError('validation_failed', 'timeout must be at most 10800 seconds', [{ field: 'parameters.timeout', reason: 'must be <= 10800' }]);
    timeoutMinutes = fromSeconds;
  }
  const agent = (merged.agent_config ?? {}) as Partial<TaskParameters['agent_config']>;
  const out: TaskParameters = {
    max_steps: merged.max_steps ?? 30,
    timeout_minutes: timeoutMinutes ?? 30,
    priority: merged.priority ?? 5,
    agent_config: { ...agent, model: agent.model ?? defaults.model },
  };
  if (merged.backend_type !== undefined) out.backend_type = merged.backend_type;
  if (merged.metadata !== undefined) out.metadata = merged.metadata;
  if (merged.callback_url !== undefined) out.callback_url = merged.callback_url;
  if (merged.max_total_tokens !== undefined) out.max_total_tokens = merged.max_total_tokens;
  if (merged.max_cost_usd !== undefined) out.max_cost_usd = merged.max_cost_usd;
  return out;
}
