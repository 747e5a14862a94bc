/**
 * LLM conversations under /api/v1/llm-conversations: the earlier executor's paths and field names
 * (REFERENCE-EXECUTOR §1.2), plus real token and cost totals by model and the JSONL export for RL.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../appDeps.js';
import { AppError } from '../../errors.js';
import { translateDbError } from '../../store/pool.js';
import {
  conversationUsage,
  conversationStats,
  getConversation,
  listConversations,
  listConversationsForTask,
  listMessages,
  messageJson,
  type ConversationRow,
  type MessageRole,
} from '../../store/conversations.js';
import { EXPORT_STATUSES, EXPORT_TASK_TYPES, exportConversationsJsonl, type ExportFilter } from '../../export/conversationExport.js';

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const UUID_RE = new RegExp(UUID);
const ROLES = ['system', 'user', 'assistant', 'function', 'tool'] as const;

function summaryJson(c: ConversationRow): Record<string, unknown> {
  return {
    id: c.id,
    task_id: c.task_id,
    session_id: c.session_id,
    started_at: c.started_at.toISOString(),
    ended_at: c.ended_at ? c.ended_at.toISOString() : null,
    model_name: c.model_name,
    total_messages: c.total_messages,
    total_tokens: c.total_tokens,
    success: typeof c.metadata.success === 'boolean' ? c.metadata.success : null,
    // Beyond the earlier executor's summary:
    attempt: c.attempt,
    provider: c.provider,
    requested_model: c.llm_config.requested_model ?? null,
    problem_id: c.metadata.problem_id ?? null,
    status: c.metadata.status ?? null,
    llm_calls: c.llm_calls,
    cost_usd: c.cost_usd,
  };
}

const usageJson = conversationUsage;

function parseInstant(field: string, v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw new AppError('validation_failed', `query.${field}: must be an ISO 8601 date or date-time`, [{ field: `query.${field}`, reason: 'must be an ISO 8601 date or date-time' }]);
  return new Date(t);
}

export async function conversationRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { pool } = deps;
  const base = '/api/v1/llm-conversations';
  const tags = ['llm-conversations'];

  app.get<{ Querystring: { task_id?: string; model_name?: string; page: number; page_size: number } }>(base, {
    schema: {
      tags,
      summary: 'List conversations, newest first',
      querystring: {
        type: 'object',
        properties: {
          task_id: { type: 'string', pattern: UUID },
          model_name: { type: 'string', minLength: 1, maxLength: 300 },
          page: { type: 'integer', minimum: 1, default: 1 },
          page_size: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
        },
      },
    },
  }, async (req) => {
    const q = req.query;
    const { rows, total } = await listConversations(pool, {
      ...(q.task_id ? { taskId: q.task_id } : {}),
      ...(q.model_name ? { modelName: q.model_name } : {}),
      page: q.page,
      pageSize: q.page_size,
    }).catch(translateDbError);
    return { conversations: rows.map(summaryJson), total, page: q.page, page_size: q.page_size };
  });

  app.get(`${base}/stats/summary`, { schema: { tags, summary: 'Conversation counts, success rate, and token and cost totals by model' } }, async () => {
    const s = await conversationStats(pool).catch(translateDbError);
    const byModel: Record<string, number> = {};
    let tokens = { prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 0 };
    let cost = 0;
    let calls = 0;
    for (const [model, m] of Object.entries(s.by_model)) {
      byModel[model] = m.conversations;
      tokens = {
        prompt_tokens: tokens.prompt_tokens + m.prompt_tokens,
        completion_tokens: tokens.completion_tokens + m.completion_tokens,
        cached_tokens: tokens.cached_tokens + m.cached_tokens,
        reasoning_tokens: tokens.reasoning_tokens + m.reasoning_tokens,
        total_tokens: tokens.total_tokens + m.total_tokens,
      };
      cost += m.cost_usd;
      calls += m.llm_calls;
    }
    return {
      total_conversations: s.total_conversations,
      conversations_by_model: byModel,
      avg_messages_per_conversation: s.total_conversations ? s.total_messages / s.total_conversations : 0,
      total_tokens_consumed: tokens.total_tokens,
      success_rate: s.total_conversations ? s.successful_conversations / s.total_conversations : 0,
      successful_conversations: s.successful_conversations,
      total_prompt_tokens: tokens.prompt_tokens,
      total_completion_tokens: tokens.completion_tokens,
      total_cached_tokens: tokens.cached_tokens,
      total_reasoning_tokens: tokens.reasoning_tokens,
      total_cost_usd: Math.round(cost * 1e8) / 1e8,
      total_llm_calls: calls,
      usage_by_model: s.by_model,
    };
  });

  app.get<{ Querystring: { problem_id?: string; task_type?: string; model?: string; status?: string; since?: string; until?: string; experiment_id?: string; include_unfinished: boolean } }>(`${base}/export`, {
    schema: {
      tags,
      summary: 'Stream conversations as JSONL in OpenAI chat format, with reward, success, results, usage and metadata',
      querystring: {
        type: 'object',
        properties: {
          problem_id: { type: 'string', minLength: 1, maxLength: 255 },
          task_type: { type: 'string', enum: [...EXPORT_TASK_TYPES] },
          model: { type: 'string', minLength: 1, maxLength: 300 },
          status: { type: 'string', enum: [...EXPORT_STATUSES] },
          since: { type: 'string', minLength: 1, maxLength: 64 },
          until: { type: 'string', minLength: 1, maxLength: 64 },
          experiment_id: { type: 'string', format: 'uuid' },
          include_unfinished: { type: 'boolean', default: false },
        },
      },
    },
  }, async (req, reply) => {
    const q = req.query;
    const filter: ExportFilter = { includeUnfinished: q.include_unfinished === true };
    if (q.problem_id) filter.problemId = q.problem_id;
    if (q.task_type) filter.taskType = q.task_type;
    if (q.model) filter.model = q.model;
    if (q.status) filter.status = q.status;
    if (q.experiment_id) filter.experimentId = q.experiment_id;
    const since = parseInstant('since', q.since);
    const until = parseInstant('until', q.until);
    if (since) filter.since = since;
    if (until) filter.until = until;
    // The first page is read before answering, so an unreachable database still gets a proper error response.
    const lines = exportConversationsJsonl(pool, filter);
    const first = await lines.next().catch(translateDbError);
    // Lines are sent in chunks of about 64 KB: one socket write per line cost a third of the
    // export rate (bench/RESULTS.md).
    async function* rest(): AsyncGenerator<string> {
      if (first.done) return;
      let chunk = first.value;
      for await (const line of lines) {
        chunk += line;
        if (chunk.length >= 65_536) { yield chunk; chunk = ''; }
      }
      if (chunk) yield chunk;
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    reply.header('content-type', 'application/x-ndjson; charset=utf-8');
    reply.header('content-disposition', `attachment; filename="llm-conversations-${stamp}.jsonl"`);
    return reply.send(Readable.from(rest()));
  });

  app.get<{ Params: { task_id: string } }>(`${base}/task/:task_id/conversations`, {
    schema: { tags, summary: "A task's conversations (one per attempt), as a bare array", params: { type: 'object', properties: { task_id: { type: 'string' } }, required: ['task_id'] } },
  }, async (req) => {
    const id = req.params.task_id;
    const rows = UUID_RE.test(id) ? await listConversationsForTask(pool, id).catch(translateDbError) : null;
    if (rows === null) throw new AppError('task_not_found', `Task ${id} not found`, { task_id: id });
    return rows.map(summaryJson);
  });

  app.get<{ Params: { conversation_id: string } }>(`${base}/:conversation_id`, {
    schema: { tags, summary: 'One conversation with its messages', params: { type: 'object', properties: { conversation_id: { type: 'string' } }, required: ['conversation_id'] } },
  }, async (req) => {
    const id = req.params.conversation_id;
    const c = UUID_RE.test(id) ? await getConversation(pool, id).catch(translateDbError) : null;
    if (!c) throw new AppError('conversation_not_found', `Conversation ${id} not found`, { conversation_id: id });
    const messages = await listMessages(pool, id).catch(translateDbError);
    return {
      ...summaryJson(c),
      llm_config: c.llm_config,
      metadata: c.metadata,
      total_cost: { input_tokens: c.prompt_tokens, output_tokens: c.completion_tokens, total_cost: c.cost_usd },
      usage: usageJson(c),
      messages: messages.map(messageJson),
    };
  });

  app.get<{ Params: { conversation_id: string }; Querystring: { role?: MessageRole; limit: number } }>(`${base}/:conversation_id/messages`, {
    schema: {
      tags,
      summary: "A conversation's messages in order (role filter; the first `limit`)",
      params: { type: 'object', properties: { conversation_id: { type: 'string' } }, required: ['conversation_id'] },
      querystring: {
        type: 'object',
        properties: {
          role: { type: 'string', enum: [...ROLES] },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
        },
      },
    },
  }, async (req) => {
    const id = req.params.conversation_id;
    const c = UUID_RE.test(id) ? await getConversation(pool, id).catch(translateDbError) : null;
    if (!c) throw new AppError('conversation_not_found', `Conversation ${id} not found`, { conversation_id: id });
    const rows = await listMessages(pool, id, { ...(req.query.role ? { role: req.query.role } : {}), limit: req.query.limit }).catch(translateDbError);
    return { conversation_id: id, total_messages: rows.length, messages: rows.map(messageJson) };
  });
}
