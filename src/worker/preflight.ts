/**
 * Everything a task needs that can be checked in milliseconds, checked before any cluster work:
 * the problem is in the catalog and runs on this backend, the model resolves and its provider
 * has a key, and the executor's prerequisites are present. A failure ends the task at once with
 * a typed error_type (the earlier executor created a cluster for 23 s, then failed on a model name).
 */
import { constants, existsSync } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { loadModelCatalog, type ModelCatalogView } from '../agent/modelCatalog.js';
import { requireProviderKey, resolveModel, type ResolvedModel } from '../agent/modelResolution.js';
import { resolveAiopslabPython } from '../bridge/aiopslabPython.js';
import { getProblem, unsupportedReason, type ProblemEntry } from '../catalog/problemCatalog.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { TaskRow } from '../queue/taskRecord.js';
import type { Pool } from '../store/pool.js';

export interface PreflightResult {
  problem: ProblemEntry;
  model: ResolvedModel;
  catalog: ModelCatalogView | null;
  python: string;
  aiopslabDir: string;
}

async function onPath(binary: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  if (binary.includes('/')) return access(binary, constants.X_OK).then(() => true, () => false);
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && (await access(path.join(dir, binary), constants.X_OK).then(() => true, () => false))) return true;
  }
  return false;
}

export async function preflight(task: TaskRow, ctx: { pool: Pool; config: Config; backend: 'kind' | 'existing'; env: NodeJS.ProcessEnv }): Promise<PreflightResult> {
  const problem = await getProblem(ctx.pool, task.problem_id);
  if (!problem) throw new AppError('unknown_problem', `Problem "${task.problem_id}" is not in the AIOpsLab catalog (GET /api/v1/problems lists the known ids).`);
  const unsupported = unsupportedReason(problem, ctx.backend);
  if (unsupported) throw new AppError('unsupported_problem', unsupported);

  const { view: catalog } = await loadModelCatalog(ctx.pool);
  const agentConfig = task.parameters.agent_config ?? { model: ctx.config.defaultModel };
  const model = resolveModel(agentConfig.model ?? ctx.config.defaultModel, { config: ctx.config, catalog, useOpenRouter: agentConfig.use_openrouter });
  requireProviderKey(model, ctx.config);

  const missing: string[] = [];
  const aiopslabDir = ctx.config.aiopslabDir;
  if (!aiopslabDir) missing.push('AIOPSLAB_DIR is not set (point it at your AIOpsLab checkout)');
  else if (!existsSync(path.join(aiopslabDir, 'aiopslab'))) missing.push(`AIOPSLAB_DIR=${aiopslabDir} does not contain the aiopslab package`);
  const python = resolveAiopslabPython(ctx.config);
  if (!(await onPath(python, ctx.env))) missing.push(`Python "${python}" not found (set AIOPSLAB_PYTHON to the interpreter of your AIOpsLab environment)`);
  const tools = ctx.backend === 'kind' ? ['kind', 'kubectl', 'helm', 'docker'] : ['kubectl', 'helm'];
  for (const t of tools) if (!(await onPath(t, ctx.env))) missing.push(`"${t}" is not on PATH`);
  if (missing.length) throw new AppError('missing_prerequisite', `Cannot run AIOpsLab on this worker: ${missing.join('; ')}. Run \`aiopslab-executor doctor\` for the fixes.`, { missing });
  return { problem, model, catalog, python, aiopslabDir: aiopslabDir! };
}
