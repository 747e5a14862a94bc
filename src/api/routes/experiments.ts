/**
 * /api/v1/experiments: problems × models × repeats as tasks — create or resume, progress with
 * spend and estimated remaining cost, cancel, limits, and the results tables (JSON or CSV).
 * /api/v1/concurrency-limits: global caps on running tasks by model glob.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AppError } from '../../errors.js';
import { experimentToJson, type ExperimentRow } from '../../experiments/experimentRecord.js';
import { catalogPriceLookup, experimentsProgress } from '../../experiments/experimentProgress.js';
import { getExperiment, listExperiments } from '../../experiments/experimentQueries.js';
import { checkModelCaps, createExperimentBodySchema, limitProperties, limitsFromBody, type CreateExperimentBody } from '../../experiments/experimentRequest.js';
import { resumeStoredExperiment, submitExperiment } from '../../experiments/experimentSubmission.js';
import { experimentResults } from '../../experiments/experimentResults.js';
import { listModelConcurrencyLimits, replaceModelConcurrencyLimits } from '../../experiments/modelConcurrencyLimits.js';
import { RESULT_TABLES, resultsTableCsv, type ResultTable } from '../../experiments/resultsCsv.js';
import { cancelExperiment, updateExperimentLimits, type SubmitOutcome } from '../../experiments/submitExperiment.js';
import type { AppDeps } from '../appDeps.js';

const refParam = {
  type: 'object', required: ['experiment'],
  properties: { experiment: { type: 'string', minLength: 1, maxLength: 128, description: 'Experiment id or name.' } },
} as const;

export function experimentRoutes(deps: AppDeps) {
  const { pool, config } = deps;

  const withProgress = async (rows: ExperimentRow[]) => {
    const progress = await experimentsProgress(pool, rows, await catalogPriceLookup(pool, config, rows));
    return rows.map((e) => ({ ...experimentToJson(e), progress: progress.get(e.id)! }));
  };

  const submitted = async (out: SubmitOutcome, reply: FastifyReply) => {
    reply.status(out.created ? 201 : 200).header('Location', `/api/v1/experiments/${out.experiment.id}`);
    const [json] = await withProgress([out.experiment]);
    return { ...json, created: out.created, tasks_created: out.tasksCreated };
  };

  return async function (app: FastifyInstance) {
    app.post('/experiments', {
      schema: {
        tags: ['experiments'],
        summary: 'Create an experiment (one task per problem × model × repeat), or resume one: the same name (or id) creates only the combinations without a pending, running or completed task; retry_failed also reruns failed and timed-out ones. 201 created, 200 resumed.',
        body: createExperimentBodySchema,
      },
    }, async (req, reply) => {
      return submitted(await submitExperiment(deps, req.body as CreateExperimentBody), reply);
    });

    app.get('/experiments', {
      schema: {
        tags: ['experiments'], summary: 'Experiments, newest first, each with its progress.',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            status: { type: 'string', enum: ['active', 'cancelled'] },
            page: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1 },
            page_size: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
          },
        },
      },
    }, async (req) => {
      const q = req.query as { status?: 'active' | 'cancelled'; page: number; page_size: number };
      const { rows, total } = await listExperiments(pool, { limit: q.page_size, offset: (q.page - 1) * q.page_size, status: q.status });
      return { experiments: await withProgress(rows), total, page: q.page, page_size: q.page_size };
    });

    app.get('/experiments/:experiment', {
      schema: {
        tags: ['experiments'], params: refParam,
        summary: 'One experiment (by id or name) with progress: counts by status, spend so far, estimated remaining cost per model.',
      },
    }, async (req) => {
      const e = await getExperiment(pool, (req.params as { experiment: string }).experiment);
      return (await withProgress([e]))[0];
    });

    app.post('/experiments/:experiment/resume', {
      schema: {
        tags: ['experiments'], params: refParam,
        summary: 'Create the missing combinations (retry_failed: also the failed and timed-out ones), reactivating a cancelled experiment; limits may be changed at the same time.',
        body: { type: 'object', additionalProperties: false, properties: { retry_failed: { type: 'boolean' }, ...limitProperties } },
      },
    }, async (req, reply) => {
      const e = await getExperiment(pool, (req.params as { experiment: string }).experiment);
      return submitted(await resumeStoredExperiment(deps, e, (req.body ?? {}) as CreateExperimentBody), reply);
    });

    app.patch('/experiments/:experiment', {
      schema: {
        tags: ['experiments'], params: refParam, summary: 'Change the limits (spend cap, per-model caps); null clears one. Applies from the next claim.',
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: limitProperties },
      },
    }, async (req) => {
      const e = await getExperiment(pool, (req.params as { experiment: string }).experiment);
      const limits = limitsFromBody(req.body as CreateExperimentBody);
      checkModelCaps(limits.model_max_running, e.models);
      return (await withProgress([await updateExperimentLimits(pool, e.id, limits)]))[0];
    });

    app.post('/experiments/:experiment/cancel', {
      schema: {
        tags: ['experiments'], params: refParam,
        summary: 'Cancel the experiment: its pending tasks at once, its running ones are stopped by their workers. Resubmitting resumes it.',
      },
    }, async (req) => {
      const e = await getExperiment(pool, (req.params as { experiment: string }).experiment);
      const out = await cancelExperiment(pool, e.id);
      return { ...(await withProgress([out.experiment]))[0], cancelled_tasks: out.cancelledTasks };
    });

    app.get('/experiments/:experiment/results', {
      schema: {
        tags: ['experiments'], params: refParam,
        summary: 'Results per model × task type (success rate with 95 % Wilson interval, mean/median time-to-X, steps, tokens, cost per task and total), per model and per problem × model. format=csv gives one table (`table`).',
        querystring: {
          type: 'object', additionalProperties: false,
          properties: {
            format: { type: 'string', enum: ['json', 'csv'], default: 'json' },
            table: { type: 'string', enum: [...RESULT_TABLES], default: 'summary', description: 'The table a CSV holds.' },
            include_tasks: { type: 'boolean', default: false, description: 'JSON: add the per-task outcomes.' },
            download: { type: 'boolean', default: false, description: 'Send as an attachment (a file name with the experiment name).' },
          },
        },
      },
    }, async (req, reply) => {
      const q = req.query as { format: 'json' | 'csv'; table: ResultTable; include_tasks: boolean; download: boolean };
      const e = await getExperiment(pool, (req.params as { experiment: string }).experiment);
      const results = await experimentResults(pool, e);
      if (q.format === 'csv') {
        reply.header('Content-Type', 'text/csv; charset=utf-8')
          .header('Content-Disposition', `attachment; filename="${e.name}-${q.table}.csv"`);
        return resultsTableCsv(results, q.table);
      }
      if (q.download) reply.header('Content-Disposition', `attachment; filename="${e.name}-results.json"`);
      if (q.include_tasks || q.download) return results;
      const { tasks: _tasks, ...tables } = results;
      return tables;
    });

    app.get('/concurrency-limits', {
      schema: { tags: ['experiments'], summary: 'Global caps on running tasks by model glob (`anthropic/*`, `openai/gpt-4o`), with how many run now.' },
    }, async () => ({ limits: await listModelConcurrencyLimits(pool) }));

    app.put('/concurrency-limits', {
      schema: {
        tags: ['experiments'],
        summary: 'Replace the global caps. Each applies to every task (in an experiment or not) whose model matches the glob; 0 pauses those models.',
        body: {
          type: 'object', additionalProperties: false, required: ['limits'],
          properties: {
            limits: {
              type: 'array', maxItems: 200,
              items: {
                type: 'object', additionalProperties: false, required: ['model_pattern', 'max_running'],
                properties: {
                  model_pattern: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\s]+$' },
                  max_running: { type: 'integer', minimum: 0, maximum: 10000 },
                },
              },
            },
          },
        },
      },
    }, async (req) => {
      const { limits } = req.body as { limits: Array<{ model_pattern: string; max_running: number }> };
      const seen = new Set<string>();
      for (const l of limits) {
        if (seen.has(l.model_pattern)) throw new AppError('validation_failed', `model_pattern "${l.model_pattern}" is given twice`, [{ field: 'limits', reason: `duplicate ${l.model_pattern}` }]);
        seen.add(l.model_pattern);
      }
      await replaceModelConcurrencyLimits(pool, limits);
      return { limits: await listModelConcurrencyLimits(pool) };
    });
  };
}

