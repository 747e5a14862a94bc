/**
 * RL/fine-tuning export: one JSON line per conversation in OpenAI chat format
 * ({messages:[{role, content}], reward, success, results, usage, metadata}).
 *
 * Conversations are read in keyset pages (started_at, id) and their messages one page at a time,
 * so memory stays bounded by the page size whatever the size of the export, and no database
 * connection is held between pages (a slow reader blocks nobody).
 */
import { conversationUsage, type ConversationRow } from '../store/conversations.js';
import type { Queryable } from '../store/pool.js';

export const EXPORT_TASK_TYPES = ['detection', 'localization', 'analysis', 'mitigation'] as const;
export const EXPORT_STATUSES = ['pending', 'running', 'completed', 'failed', 'timeout', 'cancelled'] as const;

export interface ExportFilter {
  problemId?: string;
  taskType?: string;
  /** Provider model id or the name the user requested. */
  model?: string;
  /** The conversation's recorded status, else its task's. */
  status?: string;
  since?: Date;
  until?: Date;
  /** Only the tasks of this experiment. */
  experimentId?: string;
  /** Conversations still running are left out unless asked for. */
  includeUnfinished?: boolean;
}

type ExportRow = Omit<ConversationRow, 'total_messages'> & { task_status: string };

export function trainingRecord(c: ExportRow, messages: Array<{ role: string; content: string }>): Record<string, unknown> {
  const md = c.metadata;
  const cfg = c.llm_config;
  return {
    messages,
    reward: md.reward ?? null,
    success: typeof md.success === 'boolean' ? md.success : null,
    results: md.results ?? null,
    usage: conversationUsage(c),
    metadata: {
      conversation_id: c.id,
      task_id: c.task_id,
      attempt: c.attempt,
      problem_id: md.problem_id ?? null,
      task_type: md.task_type ?? null,
      model: c.model_name,
      requested_model: cfg.requested_model ?? null,
      provider: c.provider,
      status: md.status ?? c.task_status,
      outcome: md.outcome ?? null,
      error_type: md.error_type ?? null,
      session_id: c.session_id,
      started_at: c.started_at.toISOString(),
      ended_at: c.ended_at ? c.ended_at.toISOString() : null,
      sampling: { temperature: cfg.temperature ?? null, max_tokens: cfg.max_tokens ?? null, top_p: cfg.top_p ?? null },
      normalize_reply: cfg.normalize_reply ?? false,
      template_source: cfg.template_source ?? null,
    },
  };
}

function whereClause(f: ExportFilter, args: unknown[]): string[] {
  const where: string[] = [];
  if (!f.includeUnfinished) where.push('c.ended_at IS NOT NULL');
  if (f.problemId) { args.push(f.problemId); where.push(`c.metadata->>'problem_id' = $${args.length}`); }
  if (f.taskType) { args.push(f.taskType); where.push(`c.metadata->>'task_type' = $${args.length}`); }
  if (f.model) { args.push(f.model); where.push(`(c.model_name = $${args.length} OR c.llm_config->>'requested_model' = $${args.length})`); }
  if (f.status) { args.push(f.status); where.push(`COALESCE(c.metadata->>'status', t.status) = $${args.length}`); }
  if (f.since) { args.push(f.since); where.push(`c.started_at >= $${args.length}`); }
  if (f.until) { args.push(f.until); where.push(`c.started_at < $${args.length}`); }
  if (f.experimentId) { args.push(f.experimentId); where.push(`t.experiment_id = $${args.length}::uuid`); }
  return where;
}

/** Yields JSONL lines (each ending in "\n"). */
export async function* exportConversationsJsonl(db: Queryable, filter: ExportFilter, opts: { batchSize?: number } = {}): AsyncGenerator<string> {
  // 100 conversations are about 1.5 MB; larger pages and reading the next page while this one is
  // written tripled the rate, which round trips bounded (bench/RESULTS.md). Memory stays bounded
  // by two pages.
  const batchSize = Math.max(1, opts.batchSize ?? 100);
  // The cursor keeps started_at as PostgreSQL text: a JS Date would drop the microseconds and repeat rows.
  const readPage = async (after: { startedAt: string; id: string } | null) => {
    const args: unknown[] = [];
    const where = whereClause(filter, args);
    if (after) {
      args.push(after.startedAt, after.id);
      where.push(`(c.started_at, c.id) > ($${args.length - 1}::timestamptz, $${args.length}::uuid)`);
    }
    args.push(batchSize);
    const page = await db.query<ExportRow & { started_key: string }>(
      `SELECT c.started_at::text AS started_key, c.id, c.task_id, c.attempt, c.session_id, c.started_at, c.ended_at, c.model_name, c.provider, c.llm_config, c.metadata,
              t.status AS task_status, c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.reasoning_tokens, c.total_tokens,
              c.cost_usd, c.llm_calls
         FROM llm_conversations c JOIN tasks t ON t.id = c.task_id
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY c.started_at, c.id
        LIMIT $${args.length}`,
      args,
    );
    if (page.rows.length === 0) return { rows: page.rows, messages: new Map<string, Array<{ role: string; content: string }>>() };
    const msgs = await db.query<{ conversation_id: string; role: string; content: string }>(
      `SELECT conversation_id, role, content FROM llm_messages WHERE conversation_id = ANY($1::uuid[]) ORDER BY conversation_id, seq`,
      [page.rows.map((r) => r.id)],
    );
    const messages = new Map<string, Array<{ role: string; content: string }>>();
    for (const m of msgs.rows) {
      let list = messages.get(m.conversation_id);
      if (!list) messages.set(m.conversation_id, (list = []));
      list.push({ role: m.role, content: m.content });
    }
    return { rows: page.rows, messages };
  };
  let next = readPage(null);
  for (;;) {
    const page = await next;
    if (page.rows.length === 0) return;
    const full = page.rows.length === batchSize;
    if (full) {
      const last = page.rows[page.rows.length - 1]!;
      next = readPage({ startedAt: last.started_key, id: last.id });
      // A reader that stops early leaves this read unawaited; its failure is not an unhandled rejection.
      next.catch(() => {});
    }
    for (const row of page.rows) yield `${JSON.stringify(trainingRecord(row, page.messages.get(row.id) ?? []))}\n`;
    if (!full) return;
  }
}
