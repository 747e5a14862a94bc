/**
 * Builds the HTTP app (no listening here, so tests use `app.inject()`): validation, the one
 * error envelope, request ids, metrics, OpenAPI + docs, and every route module.
 */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { AppError, ERROR_CATALOGUE, isAppError, type ErrorCode } from '../errors.js';
import { isConnectionError } from '../store/pool.js';
import type { AppDeps } from './appDeps.js';
import { authHook } from './auth.js';
import { createHttpMetrics } from './httpMetrics.js';
import { healthRoutes } from './routes/health.js';
import { taskRoutes } from './routes/tasks.js';
import { workerRoutes } from './routes/workers.js';
import { eventRoutes } from './routes/events.js';
import { registerDashboardAssets } from './dashboard.js';
import { conversationRoutes } from './routes/conversations.js';
import { modelRoutes } from './routes/models.js';
import { problemRoutes } from './routes/problems.js';
import { spendRoutes } from './routes/spend.js';
import { experimentRoutes } from './routes/experiments.js';
import { submitRateLimitHook } from './rateLimit.js';
import { PROBLEM_ID_PATTERN } from './taskRequest.js';
import { callbackUrlGuard, webhookRoutes } from '../webhooks/webhookRoutes.js';

// ajv and ajv-formats ship CommonJS default exports.
const Ajv = AjvModule as unknown as typeof AjvModule.default;
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: unknown; request_id: string };
  /** The earlier executor (FastAPI) answered `{detail: "..."}`; kept for its clients. */
  detail: string;
}

export function errorBody(code: ErrorCode, message: string, details: unknown, requestId: string): ErrorBody {
  return { error: { code, message, details: details ?? null, request_id: requestId }, detail: message };
}

interface AjvIssue { instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }

/** Turns ajv issues into `[{field, reason}]`, with fields as dotted paths (`parameters.max_steps`). */
export function describeValidation(issues: AjvIssue[], part: string): { code: ErrorCode; message: string; details: Array<{ field: string; reason: string }> } {
  const details = issues.map((i) => {
    let field = i.instancePath.replace(/^\//, '').replace(/\//g, '.');
    let reason = i.message ?? i.keyword;
    if (i.keyword === 'additionalProperties') {
      const extra = String(i.params.additionalProperty);
      field = field ? `${field}.${extra}` : extra;
      reason = 'unknown field';
    } else if (i.keyword === 'required') {
      const missing = String(i.params.missingProperty);
      field = field ? `${field}.${missing}` : missing;
      reason = 'is required';
    } else if (i.keyword === 'enum') {
      reason = `must be one of: ${(i.params.allowedValues as unknown[]).join(', ')}`;
    } else if (i.keyword === 'pattern' && i.params.pattern === PROBLEM_ID_PATTERN) {
      reason = 'must start with a letter or digit and contain only letters, digits, "-" and "_" (at most 255 characters)';
      if (/^problem_ids\.\d+$/.test(field)) reason += '; globs such as k8s_*-detection-* go in `patterns`';
    } else if (i.keyword === 'pattern') {
      // Comma-separated lists of values (`status=running,pending`) are patterns; name the values.
      const list = /^\^\(([\w|]+)\)\(,\(\1\)\)\*\$$/.exec(String(i.params.pattern));
      if (list) reason = `must be one or more of ${list[1]!.split('|').join(', ')}, comma-separated`;
    } else if (i.keyword === 'format' && i.params.format === 'uuid') {
      reason = 'must be a UUID';
    }
    const prefix = ({ body: '', querystring: 'query.', params: 'path.', headers: 'header.' } as Record<string, string>)[part] ?? `${part}.`;
    return { field: field ? `${prefix}${field}` : part, reason };
  });
  const unknownOnly = details.length > 0 && issues.every((i) => i.keyword === 'additionalProperties');
  const message = details.map((d) => `${d.field}: ${d.reason}`).join('; ');
  return { code: unknownOnly ? 'unknown_field' : 'validation_failed', message, details };
}

function requestIdFrom(req: { headers: Record<string, string | string[] | undefined> }): string {
  const h = req.headers['x-request-id'];
  const v = Array.isArray(h) ? h[0] : h;
  return v && /^[A-Za-z0-9._:-]{1,128}$/.test(v) ? v : randomUUID();
}

export async function buildServer(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.config.bodyLimitBytes,
    genReqId: requestIdFrom,
    requestIdHeader: false,
    trustProxy: false,
    ajv: { customOptions: {} },
    routerOptions: { ignoreTrailingSlash: true },
    // Errors raised while routing (before any hook) get the one envelope too.
    frameworkErrors: (err, req, reply) => {
      const code: ErrorCode = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'uri_too_long' : 'invalid_url';
      const message = code === 'uri_too_long' ? 'A path segment is too long' : 'The request path is malformed';
      (reply as FastifyReply).header('X-Request-ID', req.id).status(ERROR_CATALOGUE[code].status).send(errorBody(code, message, null, String(req.id)));
    },
  });

  // Bodies are validated strictly (no coercion: "5" is not a number); query strings are text
  // by nature, so they are coerced.
  const bodyAjv = new Ajv({ allErrors: true, removeAdditional: false, useDefaults: false, coerceTypes: false, strict: false });
  const queryAjv = new Ajv({ allErrors: true, removeAdditional: false, useDefaults: true, coerceTypes: 'array', strict: false });
  addFormats(bodyAjv);
  addFormats(queryAjv);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema));

  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Request-ID', req.id);
  });

  app.setErrorHandler((err: FastifyError | AppError | Error, req: FastifyRequest, reply: FastifyReply) => {
    const send = (code: ErrorCode, message: string, details: unknown = null, headers: Record<string, string> = {}) => {
      for (const [k, v] of Object.entries(headers)) reply.header(k, v);
      return reply.status(ERROR_CATALOGUE[code].status).send(errorBody(code, message, details, String(req.id)));
    };
    if (isAppError(err)) return send(err.code, err.message, err.details, err.headers);
    const fe = err as FastifyError & { validation?: AjvIssue[]; validationContext?: string };
    if (fe.validation) {
      const d = describeValidation(fe.validation, fe.validationContext ?? 'body');
      return send(d.code, d.message, d.details);
    }
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send('payload_too_large', `Request body exceeds the limit of ${deps.config.bodyLimitBytes} bytes`, { limit_bytes: deps.config.bodyLimitBytes });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send('unsupported_media_type', 'Request body must be application/json');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return send('invalid_json', 'Body is empty but Content-Type is application/json');
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return send('invalid_json', `Request body is not valid JSON: ${fe.message}`);
      default:
        break;
    }
    if (fe.statusCode === 400 && (err instanceof SyntaxError || /JSON/i.test(fe.message))) {
      return send('invalid_json', `Request body is not valid JSON: ${fe.message}`);
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return send(fe.statusCode === 404 ? 'not_found' : fe.statusCode === 413 ? 'payload_too_large' : fe.statusCode === 415 ? 'unsupported_media_type' : 'validation_failed', fe.message);
    }
    // SQLSTATE class 22 (data exception: a NUL byte in text, a date PostgreSQL cannot hold, …)
    // is raised by a value the client sent that passed the schema: refuse it, it is no fault of ours.
    const sqlState = (err as { code?: unknown }).code;
    if (typeof sqlState === 'string' && /^22[0-9A-Z]{3}$/.test(sqlState)) {
      const reason = err.message.split('\n')[0]!.slice(0, 300);
      return send('validation_failed', `A value in the request cannot be stored or compared: ${reason}`, [{ field: 'request', reason }]);
    }
    if (isConnectionError(err)) {
      reply.header('Retry-After', '5');
      return send('database_unavailable', 'The database is unavailable; retry shortly.');
    }
    deps.logger.error({ err: { message: err.message, stack: err.stack }, request_id: req.id, url: req.url }, 'unhandled error');
    return send('internal', 'Internal server error; the request id identifies it in the server logs.');
  });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send(errorBody('not_found', `No route ${req.method} ${req.url.split('?')[0]}`, null, String(req.id)));
  });

  if (deps.config.enableDocs) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'AIOpsLab Task Executor API',
          version: deps.version,
          description: 'Queue AIOpsLab problems, follow their runs, read transcripts, usage, cost and rewards. Every error has the envelope `{error:{code,message,details,request_id}, detail}`; codes: '
            + Object.entries(ERROR_CATALOGUE).map(([c, s]) => `\`${c}\` (${s.status})`).join(', ') + '.',
        },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    app.get('/redoc', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/docs'));
  }

  app.addHook('onRequest', authHook(deps.config));
  app.addHook('onRequest', submitRateLimitHook(deps.config.submitRateLimit));
  app.addHook('preHandler', callbackUrlGuard(deps.config));
  if (deps.config.enableMetrics) createHttpMetrics(app, deps);

  await app.register(healthRoutes(deps));
  for (const prefix of ['/api/v1', '']) {
    // The unprefixed copies are the earlier spec's paths, kept as hidden aliases.
    await app.register(taskRoutes(deps, { hidden: prefix === '' }), { prefix });
    await app.register(workerRoutes(deps, { hidden: prefix === '' }), { prefix });
  }
  await app.register(eventRoutes(deps), { prefix: '/api/v1' });
  await app.register(async (a) => problemRoutes(a, deps), { prefix: '/api/v1' });
  await app.register(spendRoutes(deps), { prefix: '/api/v1' });
  await app.register(experimentRoutes(deps), { prefix: '/api/v1' });
  await app.register(webhookRoutes(deps), { prefix: '/api/v1' });
  // These two declare their full /api/v1/... paths themselves.
  await app.register(async (a) => { await conversationRoutes(a, deps); await modelRoutes(a, deps); });
  await registerDashboardAssets(app, deps.dashboard);
  return app;
}

export function notFound(code: 'task_not_found' | 'worker_not_found' | 'conversation_not_found', id: string): AppError {
  const what = code.split('_')[0];
  return new AppError(code, `${what![0]!.toUpperCase()}${what!.slice(1)} ${id} not found`);
}
