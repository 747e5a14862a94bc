import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config.js';
import { buildServer } from '../src/api/server.js';
import type { AppDeps } from '../src/api/appDeps.js';
import { conversationRoutes } from '../src/api/routes/conversations.js';
import { EventHub } from '../src/store/eventHub.js';
import { appendMessage, createConversation, finishConversation } from '../src/store/conversations.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

let db: TestDatabase;
let app: FastifyInstance;

async function newTask(problemId: string): Promise<string> {
  return (await db.pool.query<{ id: string }>('INSERT INTO tasks (problem_id) VALUES ($1) RETURNING id', [problemId])).rows[0]!.id;
}

/** A conversation with system, instructions and `calls` observation/reply pairs. */
async function seed(o: { problemId: string; model: string; requested?: string; calls: number; success?: boolean | null; attempt?: number; taskId?: string; tokens?: number; cost?: number }) {
  const taskId = o.taskId ?? (await newTask(o.problemId));
  const c = await createConversation(db.pool, {
    taskId, attempt: o.attempt ?? 1, modelName: o.model, provider: 'openrouter',
    llmConfig: { requested_model: o.requested ?? o.model, temperature: 0.5, max_tokens: 1024, top_p: 0.95 },
    metadata: { problem_id: o.problemId, task_type: o.problemId.split('-').at(-2), status: 'running' },
  });
  await appendMessage(db.pool, c.id, { role: 'system', content: 'system prompt', step: null });
  await appendMessage(db.pool, c.id, { role: 'user', content: 'instructions', step: null });
  for (let s = 1; s <= o.calls; s++) {
    await appendMessage(db.pool, c.id, { role: 'user', content: `observation ${s}`, step: s });
    await appendMessage(db.pool, c.id, {
      role: 'assistant', content: `reply ${s}`, step: s, metadata: { usage: { total_tokens: o.tokens ?? 100 } },
      call: { prompt_tokens: (o.tokens ?? 100) - 10, completion_tokens: 10, cached_tokens: 5, reasoning_tokens: 1, total_tokens: o.tokens ?? 100, cost_usd: o.cost ?? 0.001 },
    });
  }
  if (o.success !== undefined) await finishConversation(db.pool, c.id, { status: 'completed', success: o.success, reward: o.success ? 1 : 0 });
  return { id: c.id, taskId };
}

beforeAll(async () => {
  db = await createTestDatabase();
  const deps: AppDeps = { pool: db.pool, config: loadConfig({ LOG_LEVEL: 'silent' }), logger: pino({ level: 'silent' }), events: new EventHub(db.url), workers: null, version: 'test' };
  app = await buildServer(deps);
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/llm-conversations' })) await conversationRoutes(app, deps);
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await db.drop();
});

describe('conversation store', () => {
  it('appends in O(1): one row inserted, the totals row updated, earlier message rows never rewritten', async () => {
    const { id } = await seed({ problemId: 'auth_miss_mongodb-detection-1', model: 'openai/gpt-4o-mini', calls: 20 });
    const versions = async () => (await db.pool.query('SELECT seq, xmin::text AS x, ctid::text AS t FROM llm_messages WHERE conversation_id = $1 ORDER BY seq', [id])).rows;
    const before = await versions();
    expect(before).toHaveLength(42);
    const r = await appendMessage(db.pool, id, { role: 'user', content: 'observation 21', step: 21 });
    expect(r.seq).toBe(43);
    const after = await versions();
    expect(after.slice(0, 42)).toEqual(before); // same row versions: nothing earlier was touched
    const c = (await db.pool.query('SELECT total_messages, messages, llm_calls, total_tokens FROM llm_conversations WHERE id = $1', [id])).rows[0];
    expect(c).toEqual({ total_messages: 43, messages: null, llm_calls: 20, total_tokens: 2000 });
    // PostgreSQL's own per-backend counters show exactly what one append wrote.
    const client = await db.pool.connect();
    const counters = async () => Object.fromEntries((await client.query(`SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables
      WHERE relname IN ('llm_messages', 'llm_conversations')`)).rows.map((r) => [r.relname, [r.n_tup_ins, r.n_tup_upd, r.n_tup_del]]));
    try {
      await client.query('BEGIN');
      const c0 = await counters();
      await appendMessage(client, id, { role: 'assistant', content: 'reply 21', step: 21, call: { prompt_tokens: 1, completion_tokens: 1, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 2, cost_usd: 0 } });
      const c1 = await counters();
      const delta = (t: string) => c1[t].map((v: number, i: number) => v - (c0[t]?.[i] ?? 0));
      expect(delta('llm_messages')).toEqual([1, 0, 0]);
      expect(delta('llm_conversations')).toEqual([0, 1, 0]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('stores text PostgreSQL would otherwise refuse (NUL bytes, unpaired surrogates)', async () => {
    const { id } = await seed({ problemId: 'auth_miss_mongodb-detection-1', model: 'openai/gpt-4o-mini', calls: 0 });
    await appendMessage(db.pool, id, { role: 'user', content: 'a\u0000b \ud800 c', step: 1, metadata: { raw: 'x\u0000y' } });
    const m = (await db.pool.query('SELECT content, metadata FROM llm_messages WHERE conversation_id = $1 AND seq = 3', [id])).rows[0];
    expect(m).toEqual({ content: 'ab \ufffd c', metadata: { raw: 'xy' } });
  });

  it('finishConversation copies the ordered messages into llm_conversations.messages and keeps ended_at', async () => {
    const { id } = await seed({ problemId: 'auth_miss_mongodb-detection-1', model: 'openai/gpt-4o-mini', calls: 2, success: true });
    const c1 = (await db.pool.query('SELECT ended_at, messages, metadata FROM llm_conversations WHERE id = $1', [id])).rows[0];
    expect(c1.messages.map((m: { seq: number; role: string; content: string }) => `${m.seq}:${m.role}:${m.content}`)).toEqual(['1:system:system prompt', '2:user:instructions', '3:user:observation 1', '4:assistant:reply 1', '5:user:observation 2', '6:assistant:reply 2']);
    expect(Object.keys(c1.messages[0]).sort()).toEqual(['content', 'function_args', 'function_name', 'function_result', 'metadata', 'role', 'seq', 'step', 'timestamp']);
    expect(c1.metadata).toMatchObject({ success: true, reward: 1, problem_id: 'auth_miss_mongodb-detection-1' });
    await finishConversation(db.pool, id, { note: 'again' });
    const c2 = (await db.pool.query('SELECT ended_at, metadata FROM llm_conversations WHERE id = $1', [id])).rows[0];
    expect(c2.ended_at).toEqual(c1.ended_at);
    expect(c2.metadata).toMatchObject({ success: true, note: 'again' });
  });
});

describe('GET /api/v1/llm-conversations…', () => {
  let a: { id: string; taskId: string };
  let b: { id: string; taskId: string };
  let retry: { id: string; taskId: string };
  beforeAll(async () => {
    await db.pool.query('DELETE FROM tasks');
    a = await seed({ problemId: 'k8s_target_port-misconfig-detection-1', model: 'openai/gpt-4o-mini', requested: 'gpt-4o-mini', calls: 2, success: true, tokens: 100, cost: 0.001 });
    b = await seed({ problemId: 'k8s_target_port-misconfig-localization-1', model: 'anthropic/claude-3-haiku', calls: 3, success: false, tokens: 200, cost: 0.002 });
    retry = await seed({ problemId: 'k8s_target_port-misconfig-detection-1', model: 'openai/gpt-4o-mini', calls: 1, attempt: 1 });
    await seed({ problemId: 'k8s_target_port-misconfig-detection-1', model: 'openai/gpt-4o-mini', calls: 1, attempt: 2, taskId: retry.taskId, success: true });
  });

  it('lists summaries newest first in the earlier envelope, with filters and pages', async () => {
    const r = await app.inject({ url: '/api/v1/llm-conversations' });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ total: 4, page: 1, page_size: 20 });
    const s = body.conversations.find((c: { id: string }) => c.id === a.id);
    expect(s).toMatchObject({ id: a.id, task_id: a.taskId, session_id: null, ended_at: expect.any(String), model_name: 'openai/gpt-4o-mini', total_messages: 6, total_tokens: 200, success: true, requested_model: 'gpt-4o-mini', llm_calls: 2, cost_usd: 0.002 });
    expect(new Date(s.started_at).toISOString()).toBe(s.started_at);
    const starts = body.conversations.map((c: { started_at: string }) => c.started_at);
    expect([...starts].sort().reverse()).toEqual(starts);

    expect((await app.inject({ url: `/api/v1/llm-conversations?task_id=${b.taskId}` })).json().conversations.map((c: { id: string }) => c.id)).toEqual([b.id]);
    expect((await app.inject({ url: '/api/v1/llm-conversations?model_name=anthropic/claude-3-haiku' })).json().total).toBe(1);
    expect((await app.inject({ url: '/api/v1/llm-conversations?model_name=gpt-4o-mini' })).json().total).toBe(1); // the requested alias
    const p2 = (await app.inject({ url: '/api/v1/llm-conversations?page=2&page_size=3' })).json();
    expect(p2).toMatchObject({ total: 4, page: 2, page_size: 3 });
    expect(p2.conversations).toHaveLength(1);
  });

  it('validates query parameters by name', async () => {
    const big = await app.inject({ url: '/api/v1/llm-conversations?page_size=101' });
    expect(big.statusCode).toBe(422);
    expect(big.json().error.details[0].field).toBe('query.page_size');
    const id = await app.inject({ url: '/api/v1/llm-conversations?task_id=nope' });
    expect(id.statusCode).toBe(422);
    expect(id.json().error.details[0].field).toBe('query.task_id');
    const role = await app.inject({ url: `/api/v1/llm-conversations/${a.id}/messages?role=robot` });
    expect(role.statusCode).toBe(422);
    expect(role.json().error.details[0].field).toBe('query.role');
  });

  it('returns one conversation with llm_config, metadata, total_cost and its messages', async () => {
    const r = await app.inject({ url: `/api/v1/llm-conversations/${b.id}` });
    expect(r.statusCode).toBe(200);
    const c = r.json();
    expect(c).toMatchObject({
      id: b.id, task_id: b.taskId, model_name: 'anthropic/claude-3-haiku', total_messages: 8, total_tokens: 600, success: false,
      llm_config: { temperature: 0.5, max_tokens: 1024, top_p: 0.95 },
      metadata: { problem_id: 'k8s_target_port-misconfig-localization-1', task_type: 'localization', success: false },
      total_cost: { input_tokens: 570, output_tokens: 30, total_cost: 0.006 },
      usage: { prompt_tokens: 570, completion_tokens: 30, cached_tokens: 15, reasoning_tokens: 3, total_tokens: 600, cost_usd: 0.006, llm_calls: 3 },
    });
    expect(c.messages).toHaveLength(8);
    expect(c.messages[3]).toEqual({ seq: 4, timestamp: expect.any(String), role: 'assistant', content: 'reply 1', step: 1, function_name: null, function_args: null, function_result: null, metadata: { usage: { total_tokens: 200 } } });
    for (const bad of ['00000000-0000-0000-0000-000000000000', 'not-a-uuid']) {
      const nf = await app.inject({ url: `/api/v1/llm-conversations/${bad}` });
      expect(nf.statusCode).toBe(404);
      expect(nf.json().error.code).toBe('conversation_not_found');
    }
  });

  it('returns messages filtered by role and cut to the first `limit`', async () => {
    const r = (await app.inject({ url: `/api/v1/llm-conversations/${b.id}/messages?role=assistant&limit=2` })).json();
    expect(r.conversation_id).toBe(b.id);
    expect(r.total_messages).toBe(2);
    expect(r.messages.map((m: { content: string }) => m.content)).toEqual(['reply 1', 'reply 2']);
    expect((await app.inject({ url: `/api/v1/llm-conversations/${b.id}/messages` })).json().total_messages).toBe(8);
    expect((await app.inject({ url: '/api/v1/llm-conversations/00000000-0000-0000-0000-000000000000/messages' })).statusCode).toBe(404);
  });

  it("returns a task's conversations as a bare array, one per attempt, and 404 for an unknown task", async () => {
    const r = await app.inject({ url: `/api/v1/llm-conversations/task/${retry.taskId}/conversations` });
    expect(r.statusCode).toBe(200);
    expect(r.json().map((c: { attempt: number; task_id: string }) => [c.attempt, c.task_id])).toEqual([[1, retry.taskId], [2, retry.taskId]]);
    const nf = await app.inject({ url: '/api/v1/llm-conversations/task/00000000-0000-0000-0000-000000000000/conversations' });
    expect(nf.statusCode).toBe(404);
    expect(nf.json().error.code).toBe('task_not_found');
    expect((await app.inject({ url: '/api/v1/llm-conversations/task/xyz/conversations' })).statusCode).toBe(404);
  });

  it('summarises counts, success rate, and token and cost totals by model', async () => {
    const s = (await app.inject({ url: '/api/v1/llm-conversations/stats/summary' })).json();
    expect(s).toMatchObject({
      total_conversations: 4,
      conversations_by_model: { 'openai/gpt-4o-mini': 3, 'anthropic/claude-3-haiku': 1 },
      avg_messages_per_conversation: (6 + 8 + 4 + 4) / 4,
      total_tokens_consumed: 200 + 600 + 100 + 100,
      successful_conversations: 2,
      success_rate: 0.5,
      total_cost_usd: 0.01,
      total_llm_calls: 7,
    });
    expect(s.usage_by_model['anthropic/claude-3-haiku']).toEqual({ conversations: 1, successful_conversations: 0, llm_calls: 3, prompt_tokens: 570, completion_tokens: 30, cached_tokens: 15, reasoning_tokens: 3, total_tokens: 600, cost_usd: 0.006 });
  });
});
