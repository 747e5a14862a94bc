/**
 * The experiment submission body: its JSON schema, and turning it into a definition — problem
 * selectors expanded against the catalog, models resolved, shared parameters normalised the way
 * POST /tasks normalises a task's — and comparing a resubmission with what is stored.
 */
import type { ModelCatalogView } from '../agent/modelCatalog.js';
import { resolveModel, type ResolvedModel } from '../agent/modelResolution.js';
import { taskParametersSchema, normalizeTaskParameters, PROBLEM_ID_PATTERN, type CreateTaskBody } from '../api/taskRequest.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { TASK_TYPES, combinationCount, type ExperimentLimits, type ExperimentRow, type SharedParameters } from './experimentRecord.js';
import { isUuid } from './experimentQueries.js';
import { expandProblemSelectors, normalizeSelectors, type SelectableProblem } from './problemSelection.js';
import type { ExperimentDefinition } from './submitExperiment.js';

export const EXPERIMENT_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
/** Above this, one submission would queue more tasks than a benchmark run sensibly has. */
export const MAX_COMBINATIONS = 10_000;

const stringList = (item: Record<string, unknown>, description: string) =>
  ({ type: 'array', maxItems: 500, items: { type: 'string', minLength: 1, maxLength: 255, ...item }, description }) as const;

export const limitProperties = {
  spend_cap_usd: { type: ['number', 'null'], exclusiveMinimum: 0, description: 'No new task of the experiment starts once its spend (running tasks included) reaches this. null: no cap.' },
  max_running_per_model: { type: ['integer', 'null'], minimum: 1, maximum: 1000, description: 'Running tasks per model of this experiment. null: no cap.' },
  model_max_running: {
    type: 'object', additionalProperties: { type: 'integer', minimum: 1, maximum: 1000 },
    description: 'Per-model caps ({model: n}) overriding max_running_per_model; keys are names from `models`.',
  },
} as const;

export const createExperimentBodySchema = {
  type: 'object',
  additionalProperties: false,
  anyOf: [{ required: ['name'] }, { required: ['id'] }],
  properties: {
    name: { type: 'string', pattern: EXPERIMENT_NAME_PATTERN, description: 'Unique; resubmitting the same name resumes the experiment.' },
    id: { type: 'string', format: 'uuid', description: 'Resume this experiment (instead of giving its name).' },
    description: { type: 'string', maxLength: 2000 },
    problem_ids: stringList({ pattern: PROBLEM_ID_PATTERN }, 'Exact AIOpsLab problem ids.'),
    patterns: stringList({ pattern: '^[A-Za-z0-9_*?-]+$' }, 'Globs over problem ids: `k8s_target_port-misconfig-*`, `*-detection-*`.'),
    applications: stringList({}, 'Only problems of these applications (e.g. HotelReservation).'),
    task_types: { type: 'array', maxItems: 4, items: { type: 'string', enum: [...TASK_TYPES] }, description: 'Only problems of these task types.' },
    models: { type: 'array', minItems: 1, maxItems: 20, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 200 }, description: 'Models to compare, as `agent_config.model` accepts them.' },
    repeats: { type: 'integer', minimum: 1, maximum: 100, description: 'Runs per problem × model. Default 1.' },
    parameters: { ...taskParametersSchema, description: 'Task parameters shared by every task (as POST /tasks `parameters`, without agent_config.model).' },
    ...limitProperties,
    retry_failed: { type: 'boolean', description: 'When resuming, also rerun combinations whose task failed or timed out.' },
  },
} as const;

export interface CreateExperimentBody {
  name?: string;
  id?: string;
  description?: string;
  problem_ids?: string[];
  patterns?: string[];
  applications?: string[];
  task_types?: string[];
  models?: string[];
  repeats?: number;
  parameters?: CreateTaskBody['parameters'];
  spend_cap_usd?: number | null;
  max_running_per_model?: number | null;
  model_max_running?: Record<string, number>;
  retry_failed?: boolean;
}

const DEFINITION_FIELDS = ['description', 'problem_ids', 'patterns', 'applications', 'task_types', 'models', 'repeats', 'parameters'] as const;
const SELECTOR_FIELDS = ['problem_ids', 'patterns', 'applications', 'task_types'] as const;

export function hasDefinition(b: CreateExperimentBody): boolean {
  return DEFINITION_FIELDS.some((k) => b[k] !== undefined);
}

/** The limits the body sets (absent keys are left as they are when resuming). */
export function limitsFromBody(b: Pick<CreateExperimentBody, 'spend_cap_usd' | 'max_running_per_model' | 'model_max_running'>): Partial<ExperimentLimits> {
  const out: Partial<ExperimentLimits> = {};
  if (b.spend_cap_usd !== undefined) out.spend_cap_usd = b.spend_cap_usd;
  if (b.max_running_per_model !== undefined) out.max_running_per_model = b.max_running_per_model;
  if (b.model_max_running !== undefined) out.model_max_running = b.model_max_running;
  return out;
}

export function checkModelCaps(caps: Record<string, number> | undefined, models: readonly string[]): void {
  const stray = Object.keys(caps ?? {}).filter((m) => !models.includes(m));
  if (stray.length) {
    throw new AppError('validation_failed', `model_max_running names models the experiment does not run: ${stray.join(', ')}`,
      stray.map((m) => ({ field: `model_max_running.${m}`, reason: 'not one of models' })));
  }
}

/** POST /tasks' normalisation, minus the model (which each task takes from `models`). */
export function sharedParameters(input: CreateTaskBody['parameters'] | undefined): SharedParameters {
  if (input?.agent_config && 'model' in input.agent_config) {
    throw new AppError('validation_failed', 'The models of an experiment are given in `models`, not in parameters.agent_config.model', [
      { field: 'parameters.agent_config.model', reason: 'use models' },
    ]);
  }
  const normalized = normalizeTaskParameters({ problem_id: 'experiment', parameters: input ?? {} }, { model: '' });
  const { model: _model, ...agent } = normalized.agent_config;
  return { ...normalized, agent_config: agent };
}

export interface ModelContext { config: Config; catalog: ModelCatalogView | null }

/** Resolves each model as a task's preflight would; an unknown one is a 422 naming it. */
export function resolveModels(models: readonly string[], parameters: SharedParameters, ctx: ModelContext): ResolvedModel[] {
  return models.map((name, i) => {
    try {
      return resolveModel(name, { config: ctx.config, catalog: ctx.catalog, useOpenRouter: parameters.agent_config.use_openrouter });
    } catch (e) {
      if (e instanceof AppError && e.code === 'invalid_model') {
        const d = e.details as { closest?: string[] } | null;
        throw new AppError('invalid_model', e.message, [{ field: `models.${i}`, reason: 'unknown model', closest: d?.closest ?? [] }]);
      }
      throw e;
    }
  });
}

/** The id global concurrency limits match: OpenRouter-style `vendor/model` where it can be known. */
export function limitModelId(m: ResolvedModel): string {
  if (m.catalogId) return m.catalogId;
  if (m.provider === 'openai' && !m.id.includes('/')) return `openai/${m.id}`;
  return m.id;
}

/** A complete definition for a new experiment; missing required parts are a 422 naming them. */
export function buildDefinition(b: CreateExperimentBody, catalog: readonly SelectableProblem[]): ExperimentDefinition {
  const issues: Array<{ field: string; reason: string }> = [];
  if (!b.name) issues.push({ field: 'name', reason: 'is required to create an experiment' });
  // Experiments are addressed by id or name in one path segment, so a name may not look like an id.
  else if (isUuid(b.name)) issues.push({ field: 'name', reason: 'must not have the form of a uuid' });
  if (!b.models?.length) issues.push({ field: 'models', reason: 'is required to create an experiment' });
  if (!SELECTOR_FIELDS.some((k) => b[k]?.length)) issues.push({ field: 'problem_ids', reason: 'give problem_ids, patterns, applications or task_types' });
  if (issues.length) throw new AppError('validation_failed', issues.map((m) => `${m.field}: ${m.reason}`).join('; '), issues);
  const selectors = normalizeSelectors(b as Parameters<typeof normalizeSelectors>[0]);
  const problemIds = expandProblemSelectors(selectors, catalog);
  const parameters = sharedParameters(b.parameters);
  const def: ExperimentDefinition = {
    name: b.name!, description: b.description ?? null, selectors, problemIds, models: b.models!, repeats: b.repeats ?? 1, parameters,
  };
  const n = combinationCount({ problem_ids: problemIds, models: def.models, repeats: def.repeats });
  if (n > MAX_COMBINATIONS) {
    throw new AppError('validation_failed', `${problemIds.length} problems × ${def.models.length} models × ${def.repeats} repeats = ${n} tasks, more than ${MAX_COMBINATIONS}`, [
      { field: 'repeats', reason: `at most ${MAX_COMBINATIONS} combinations` },
    ]);
  }
  checkModelCaps(b.model_max_running, def.models);
  return def;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const sameSet = (a: readonly string[], b: readonly string[]) => canonical([...a].sort()) === canonical([...b].sort());

/**
 * A resubmission may repeat the definition (then it must match what is stored) or leave it out.
 * Only the parts given are compared; the limits may change freely.
 */
export function definitionConflicts(e: ExperimentRow, b: CreateExperimentBody): Array<{ field: string; reason: string }> {
  const out: Array<{ field: string; reason: string }> = [];
  if (SELECTOR_FIELDS.some((k) => b[k] !== undefined)) {
    const given = normalizeSelectors(b as Parameters<typeof normalizeSelectors>[0]);
    const stored = normalizeSelectors(e.problem_selectors);
    for (const k of SELECTOR_FIELDS) {
      if (!sameSet(given[k], stored[k])) out.push({ field: k, reason: `stored: ${JSON.stringify(stored[k])}, given: ${JSON.stringify(given[k])}` });
    }
  }
  if (b.models !== undefined && !sameSet(b.models, e.models)) out.push({ field: 'models', reason: `stored: ${JSON.stringify(e.models)}, given: ${JSON.stringify(b.models)}` });
  if (b.repeats !== undefined && b.repeats !== e.repeats) out.push({ field: 'repeats', reason: `stored: ${e.repeats}, given: ${b.repeats}` });
  if (b.parameters !== undefined && canonical(sharedParameters(b.parameters)) !== canonical(e.parameters)) {
    out.push({ field: 'parameters', reason: `stored: ${canonical(e.parameters)}, given: ${canonical(sharedParameters(b.parameters))}` });
  }
  return out;
}
