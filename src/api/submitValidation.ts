/**
 * Catalog checks at submission: an unknown problem id or (when the model catalog is known) an
 * unknown model is refused with 422 and the closest matches, before anything is queued.
 */
import { loadModelCatalog } from '../agent/modelCatalog.js';
import { resolveModel } from '../agent/modelResolution.js';
import { closestMatches } from '../catalog/closestMatches.js';
import { listProblemIds } from '../catalog/problemCatalog.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Pool } from '../store/pool.js';

export function createSubmitValidator(pool: Pool, config: Config, cacheMs = 10_000) {
  let ids: { at: number; set: Set<string> } | null = null;
  const problemIds = async () => {
    if (!ids || Date.now() - ids.at > cacheMs) ids = { at: Date.now(), set: new Set(await listProblemIds(pool)) };
    return ids.set;
  };
  // The model catalog (hundreds of rows) is cached like the problem ids: loading it on every
  // submission halved the submit rate (bench/RESULTS.md).
  let models: { at: number; view: Awaited<ReturnType<typeof loadModelCatalog>>['view'] } | null = null;
  const modelCatalog = async () => {
    if (models && Date.now() - models.at <= cacheMs) return models.view;
    const { view } = await loadModelCatalog(pool);
    // Not fetched yet (the service fetches it at start): look again next time rather than accept any name for a while.
    models = view ? { at: Date.now(), view } : null;
    return view;
  };
  return {
    async validate(problemId: string, model: string, parameters: Record<string, unknown>): Promise<void> {
      const known = await problemIds();
      if (known.size > 0 && !known.has(problemId)) {
        const closest = closestMatches(problemId, known);
        throw new AppError('unknown_problem', `Unknown problem_id "${problemId}"${closest.length ? `; did you mean ${closest.map((c) => `"${c}"`).join(', ')}?` : ''}`,
          [{ field: 'problem_id', reason: 'not in the AIOpsLab catalog', closest }]);
      }
      const view = await modelCatalog();
      const agent = (parameters.agent_config ?? {}) as { use_openrouter?: boolean };
      try {
        resolveModel(model, { config, catalog: view, useOpenRouter: agent.use_openrouter });
      } catch (e) {
        if (e instanceof AppError && e.code === 'invalid_model') {
          const d = e.details as { closest?: string[] } | null;
          throw new AppError('invalid_model', e.message, [{ field: 'parameters.agent_config.model', reason: 'unknown model', closest: d?.closest ?? [] }]);
        }
        throw e;
      }
    },
  };
}
