/**
 * All SQL for llm_conversations and llm_messages.
 *
 * A message is one INSERT into llm_messages plus one UPDATE of its conversation's counters, in a
 * single statement: the cost of an append does not depend on how long the conversation is, and
 * a crash loses at most the message being written. The `messages` jsonb column of
 * llm_conversations is filled once, when the conversation ends, for people who query the table.
 */
import type { Queryable } from './pool.js';
import { AppError } from '../errors.js';

export type MessageRole = 'system' | 'user' | 'assistant' | 'function' | 'tool';

export interface CallCounters {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  cost_usd: number;
}

export interface ConversationRow extends CallCounters {
  id: string;
  task_id: string;
  attempt: number;
  session_id: string | null;
  started_at: Date;
  ended_at: Date | null;
  model_name: string;
  provider: string | null;
  llm_config: Record<string, unknown>;
  metadata: Record<string, unknown>;
  total_messages: number;
  llm_calls: number;
}

/** The usage totals of a conversation, as the API and the export show them. */
export function conversationUsage(c: Pick<ConversationRow, keyof CallCounters | 'llm_calls'>): CallCounters & { llm_calls: number } {
  return {
    prompt_tokens: c.prompt_tokens,
    completion_tokens: c.completion_tokens,
    cached_tokens: c.cached_tokens,
    reasoning_tokens: c.reasoning_tokens,
    total_tokens: c.total_tokens,
    cost_usd: c.cost_usd,
    llm_calls: c.llm_calls,
  };
}

export interface MessageRow {
  conversation_id: string;
  seq: number;
  created_at: Date;
  role: MessageRole;
  content: string;
  step: number | null;
  metadata: Record<string, unknown>;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** PostgreSQL text and jsonb reject NUL and unpaired surrogates, which command output can contain. */
export function pgSafeText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u0000/g, '').replace(LONE_SURROGATE, '\ufffd');
}

export function pgSafeJson(v: unknown): string {
  return JSON.stringify(v ?? {}, (_k, val: unknown) => (typeof val === 'string' ? pgSafeText(val) : val));
}

const CONVERSATION_COLUMNS = `c.id, c.task_id, c.attempt, c.session_id, c.started_at, c.ended_at, c.model_name, c.provider,
  c.llm_config, c.metadata, c.total_messages, c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.reasoning_tokens,
  c.total_tokens, c.cost_usd, c.llm_calls`;

export async function createConversation(
  db: Queryable,
  input: { taskId: string; attempt: number; modelName: string; provider: string | null; llmConfig: Record<string, unknown>; metadata: Record<string, unknown>; sessionId?: string | null },
): Promise<{ id: string; started_at: Date }> {
  const r = await db.query<{ id: string; started_at: Date }>(
    `INSERT INTO llm_conversations (task_id, attempt, session_id, model_name, provider, llm_config, metadata)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, started_at`,
    [input.taskId, input.attempt, input.sessionId ?? null, input.modelName, input.provider, pgSafeJson(input.llmConfig), pgSafeJson(input.metadata)],
  );
  return r.rows[0]!;
}

/** Merges into llm_config / metadata (top-level keys) and sets the session id, when given. */
export async function updateConversationInfo(
  db: Queryable,
  id: string,
  patch: { sessionId?: string | null; llmConfig?: Record<string, unknown>; metadata?: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `UPDATE llm_conversations
        SET session_id = CASE WHEN $2::boolean THEN $3 ELSE session_id END,
            llm_config = llm_config || $4::jsonb,
            metadata = metadata || $5::jsonb
      WHERE id = $1`,
    [id, patch.sessionId !== undefined, patch.sessionId ?? null, pgSafeJson(patch.llmConfig ?? {}), pgSafeJson(patch.metadata ?? {})],
  );
}

export interface NewMessage {
  role: MessageRole;
  content: string;
  step: number | null;
  metadata?: Record<string, unknown>;
  /** The usage of the LLM call that produced this message (assistant messages). */
  call?: CallCounters;
}

export async function appendMessage(db: Queryable, conversationId: string, msg: NewMessage): Promise<{ seq: number; created_at: Date }> {
  const c = msg.call;
  const r = await db.query<{ seq: number; created_at: Date }>(
    `WITH conv AS (
       UPDATE llm_conversations
          SET total_messages = total_messages + 1,
              prompt_tokens = prompt_tokens + $6, completion_tokens = completion_tokens + $7,
              cached_tokens = cached_tokens + $8, reasoning_tokens = reasoning_tokens + $9,
              total_tokens = total_tokens + $10, cost_usd = cost_usd + $11::numeric,
              llm_calls = llm_calls + $12
        WHERE id = $1
        RETURNING total_messages
     )
     INSERT INTO llm_messages (conversation_id, seq, role, content, step, metadata)
     SELECT $1, conv.total_messages, $2, $3, $4, $5 FROM conv
     RETURNING seq, created_at`,
    [
      conversationId, msg.role, pgSafeText(msg.content), msg.step, pgSafeJson(msg.metadata ?? {}),
      c?.prompt_tokens ?? 0, c?.completion_tokens ?? 0, c?.cached_tokens ?? 0, c?.reasoning_tokens ?? 0, c?.total_tokens ?? 0,
      (c?.cost_usd ?? 0).toFixed(8), c ? 1 : 0,
    ],
  );
  if (r.rows.length === 0) throw new AppError('conversation_not_found', `No conversation ${conversationId}.`);
  return r.rows[0]!;
}

/** Adds keys to one message's metadata (e.g. the parsed action and environment response of its step). */
export async function annotateMessage(db: Queryable, conversationId: string, seq: number, patch: Record<string, unknown>): Promise<void> {
  await db.query('UPDATE llm_messages SET metadata = metadata || $3::jsonb WHERE conversation_id = $1 AND seq = $2', [conversationId, seq, pgSafeJson(patch)]);
}

/**
 * Ends the conversation: `ended_at` (kept if already set), the outcome merged into metadata, and
 * the ordered messages copied into `messages`.
 */
export async function finishConversation(db: Queryable, id: string, metadata: Record<string, unknown>): Promise<void> {
  await db.query(
    `UPDATE llm_conversations c
        SET ended_at = COALESCE(c.ended_at, now()),
            metadata = c.metadata || $2::jsonb,
            messages = (SELECT COALESCE(jsonb_agg(jsonb_build_object(
                           'seq', m.seq, 'timestamp', m.created_at, 'role', m.role, 'content', m.content, 'step', m.step,
                           'function_name', NULL, 'function_args', NULL, 'function_result', NULL, 'metadata', m.metadata) ORDER BY m.seq), '[]'::jsonb)
                          FROM llm_messages m WHERE m.conversation_id = c.id)
      WHERE c.id = $1`,
    [id, pgSafeJson(metadata)],
  );
}

export interface ConversationFilter {
  taskId?: string;
  /** Matches the provider id stored as model_name or the name the user requested. */
  modelName?: string;
}

function filterSql(f: ConversationFilter, args: unknown[]): string {
  const where: string[] = [];
  if (f.taskId) { args.push(f.taskId); where.push(`c.task_id = $${args.length}::uuid`); }
  if (f.modelName) { args.push(f.modelName); where.push(`(c.model_name = $${args.length} OR c.llm_config->>'requested_model' = $${args.length})`); }
  return where.length ? `WHERE ${where.join(' AND ')}` : '';
}

/** Newest first. */
export async function listConversations(db: Queryable, f: ConversationFilter & { page: number; pageSize: number }): Promise<{ rows: ConversationRow[]; total: number }> {
  const args: unknown[] = [];
  const where = filterSql(f, args);
  const total = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM llm_conversations c ${where}`, args);
  const rows = await db.query<ConversationRow>(
    `SELECT ${CONVERSATION_COLUMNS} FROM llm_conversations c ${where}
      ORDER BY c.started_at DESC, c.id DESC LIMIT $${args.length + 1} OFFSET $${args.length + 2}`,
    [...args, f.pageSize, (f.page - 1) * f.pageSize],
  );
  return { rows: rows.rows, total: total.rows[0]!.n };
}

export async function getConversation(db: Queryable, id: string): Promise<ConversationRow | null> {
  const r = await db.query<ConversationRow>(`SELECT ${CONVERSATION_COLUMNS} FROM llm_conversations c WHERE c.id = $1::uuid`, [id]);
  return r.rows[0] ?? null;
}

/** Messages in order; `role` filters exactly, `limit` keeps the first ones (as the earlier executor did). */
export async function listMessages(db: Queryable, conversationId: string, q: { role?: MessageRole; limit?: number } = {}): Promise<MessageRow[]> {
  const args: unknown[] = [conversationId];
  let where = 'conversation_id = $1::uuid';
  if (q.role) { args.push(q.role); where += ` AND role = $${args.length}`; }
  let limit = '';
  if (q.limit !== undefined) { args.push(q.limit); limit = `LIMIT $${args.length}`; }
  const r = await db.query<MessageRow>(
    `SELECT conversation_id, seq, created_at, role, content, step, metadata FROM llm_messages WHERE ${where} ORDER BY seq ${limit}`,
    args,
  );
  return r.rows;
}

/** Every conversation of a task, oldest attempt first; null when the task does not exist. */
export async function listConversationsForTask(db: Queryable, taskId: string): Promise<ConversationRow[] | null> {
  const t = await db.query('SELECT 1 FROM tasks WHERE id = $1::uuid', [taskId]);
  if (t.rowCount === 0) return null;
  const r = await db.query<ConversationRow>(
    `SELECT ${CONVERSATION_COLUMNS} FROM llm_conversations c WHERE c.task_id = $1::uuid ORDER BY c.attempt, c.started_at`,
    [taskId],
  );
  return r.rows;
}

export interface ModelUsageStats {
  conversations: number;
  successful_conversations: number;
  llm_calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  cost_usd: number;
}

export interface ConversationStats {
  total_conversations: number;
  total_messages: number;
  successful_conversations: number;
  by_model: Record<string, ModelUsageStats>;
}

export async function conversationStats(db: Queryable): Promise<ConversationStats> {
  const r = await db.query<ModelUsageStats & { model_name: string; total_messages: number }>(
    `SELECT model_name, count(*)::int AS conversations,
            count(*) FILTER (WHERE metadata->'success' = 'true'::jsonb)::int AS successful_conversations,
            COALESCE(sum(total_messages), 0)::bigint AS total_messages,
            COALESCE(sum(llm_calls), 0)::bigint AS llm_calls,
            COALESCE(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
            COALESCE(sum(completion_tokens), 0)::bigint AS completion_tokens,
            COALESCE(sum(cached_tokens), 0)::bigint AS cached_tokens,
            COALESCE(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens,
            COALESCE(sum(total_tokens), 0)::bigint AS total_tokens,
            COALESCE(sum(cost_usd), 0)::numeric AS cost_usd
       FROM llm_conversations GROUP BY model_name ORDER BY model_name`,
  );
  const out: ConversationStats = { total_conversations: 0, total_messages: 0, successful_conversations: 0, by_model: {} };
  for (const { model_name, total_messages, ...s } of r.rows) {
    out.total_conversations += s.conversations;
    out.total_messages += total_messages;
    out.successful_conversations += s.successful_conversations;
    out.by_model[model_name] = s;
  }
  return out;
}

/** The API's message object: the earlier executor's fields plus ours (seq, step). */
export function messageJson(m: MessageRow): Record<string, unknown> {
  return {
    seq: m.seq,
    timestamp: m.created_at.toISOString(),
    role: m.role,
    content: m.content,
    step: m.step,
    function_name: null,
    function_args: null,
    function_result: null,
    metadata: m.metadata,
  };
}
