/**
 * /problems: the AIOpsLab problem catalog (register under the /api/v1 prefix), with which worker
 * backends can run each problem.
 */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.js';
import { closestMatches } from '../../catalog/closestMatches.js';
import {
  APPLICATIONS,
  BACKENDS,
  TASK_TYPES,
  getProblem,
  listProblemIds,
  listProblems,
  supportedBackends,
  unsupportedReason,
  type Backend,
  type ProblemEntry,
  type ProblemFilter,
} from '../../catalog/problemCatalog.js';
import type { AppDeps } from '../appDeps.js';

const problemJson = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    application: { type: 'string' },
    task_type: { type: 'string', enum: [...TASK_TYPES] },
    deployment: { type: 'string', enum: ['k8s', 'docker'] },
    source: { type: 'string', enum: ['aiopslab', 'builtin'], description: 'aiopslab: listed from the configured checkout; builtin: the ids shipped with the executor.' },
    supported_backends: { type: 'array', items: { type: 'string', enum: [...BACKENDS] } },
    unsupported_reasons: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

function problemToJson(p: ProblemEntry) {
  const reasons: Record<string, string> = {};
  for (const b of BACKENDS) {
    const r = unsupportedReason(p, b);
    if (r) reasons[b] = r;
  }
  return { id: p.id, application: p.application, task_type: p.task_type, deployment: p.deployment, source: p.source, supported_backends: supportedBackends(p), unsupported_reasons: reasons };
}

export async function problemRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/problems', {
    schema: {
      tags: ['problems'],
      summary: 'The AIOpsLab problem catalog, filterable by application, task type, deployment and the worker backend that can run it.',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          application: { type: 'string', maxLength: 100, description: `e.g. ${APPLICATIONS.join(', ')}` },
          task_type: { type: 'string', enum: [...TASK_TYPES] },
          deployment: { type: 'string', enum: ['k8s', 'docker'] },
          supported_backend: { type: 'string', enum: [...BACKENDS] },
        },
      },
      response: { 200: { type: 'object', properties: { problems: { type: 'array', items: problemJson }, total: { type: 'integer' } } } },
    },
  }, async (req) => {
    const q = req.query as ProblemFilter;
    const rows = await listProblems(deps.pool, q);
    return { problems: rows.map(problemToJson), total: rows.length };
  });

  app.get('/problems/:problem_id', {
    schema: {
      tags: ['problems'],
      summary: 'One problem of the catalog; 404 with the closest ids when unknown.',
      params: { type: 'object', required: ['problem_id'], properties: { problem_id: { type: 'string', maxLength: 255 } } },
      response: { 200: problemJson },
    },
  }, async (req) => {
    const { problem_id: id } = req.params as { problem_id: string };
    const p = await getProblem(deps.pool, id);
    if (!p) {
      const closest = closestMatches(id, await listProblemIds(deps.pool));
      throw new AppError('not_found', `Problem ${id} is not in the catalog${closest.length ? `; did you mean ${closest.join(', ')}?` : ''}`, { problem_id: id, closest });
    }
    return problemToJson(p);
  });
}

