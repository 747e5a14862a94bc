/**
 * POST /experiments as one operation: create the experiment when its name is new, otherwise treat
 * the body as a resubmission — compare the definition given (if any) with the stored one, apply
 * the limits given, and create the combinations still missing.
 */
import { loadModelCatalog } from '../agent/modelCatalog.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Pool } from '../store/pool.js';
import type { ExperimentRow } from './experimentRecord.js';
import { findExperiment, getExperiment } from './experimentQueries.js';
import {
  buildDefinition, checkModelCaps, definitionConflicts, hasDefinition, limitModelId, limitsFromBody, resolveModels, type CreateExperimentBody,
} from './experimentRequest.js';
import { loadSelectableProblems } from './problemSelection.js';
import { createExperiment, resumeExperiment, type SubmitOutcome } from './submitExperiment.js';

export interface SubmissionContext { pool: Pool; config: Config }

/** Creates the missing combinations of a stored experiment, with limits and retry_failed from the body. */
export async function resumeStoredExperiment(ctx: SubmissionContext, e: ExperimentRow, body: Pick<CreateExperimentBody, 'retry_failed' | 'spend_cap_usd' | 'max_running_per_model' | 'model_max_running'>): Promise<SubmitOutcome> {
  const limits = limitsFromBody(body);
  checkModelCaps(limits.model_max_running, e.models);
  // Resolved again: the catalog may have changed since the experiment was created.
  const resolved = resolveModels(e.models, e.parameters, { config: ctx.config, catalog: (await loadModelCatalog(ctx.pool)).view });
  return resumeExperiment(ctx.pool, e.id, limits, {
    resolvedModels: resolved.map(limitModelId), maxAttempts: ctx.config.maxAttempts, retryFailed: body.retry_failed ?? false,
  });
}

export async function submitExperiment(ctx: SubmissionContext, body: CreateExperimentBody): Promise<SubmitOutcome> {
  const { pool, config } = ctx;
  let existing = await findExperiment(pool, body.id ?? body.name!);
  if (body.id && !existing) throw new AppError('experiment_not_found', `Experiment ${body.id} not found`);
  if (existing && body.id && body.name && existing.name !== body.name) {
    throw new AppError('experiment_conflict', `Experiment ${body.id} is named "${existing.name}", not "${body.name}"`, [{ field: 'name', reason: `stored: ${existing.name}` }]);
  }
  if (!existing) {
    const def = buildDefinition(body, await loadSelectableProblems(pool));
    const resolved = resolveModels(def.models, def.parameters, { config, catalog: (await loadModelCatalog(pool)).view });
    const l = limitsFromBody(body);
    const out = await createExperiment(pool, def, {
      spend_cap_usd: l.spend_cap_usd ?? null, max_running_per_model: l.max_running_per_model ?? null, model_max_running: l.model_max_running ?? {},
    }, { resolvedModels: resolved.map(limitModelId), maxAttempts: config.maxAttempts, retryFailed: false });
    if (out) return out;
    // Another request created the same name meanwhile: this one is its resubmission.
    existing = await getExperiment(pool, def.name);
  }
  if (hasDefinition(body)) {
    const conflicts = definitionConflicts(existing, body);
    if (conflicts.length) {
      throw new AppError('experiment_conflict',
        `Experiment "${existing.name}" exists with a different ${conflicts.map((c) => c.field).join(', ')}; resubmit it unchanged (or with only its name) to resume, or choose a new name`, conflicts);
    }
  }
  return resumeStoredExperiment(ctx, existing, body);
}
