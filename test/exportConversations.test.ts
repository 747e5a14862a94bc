import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config.js';
import { buildServer } from '../src/api/server.js';
import type { AppDeps } from '../src/api/appDeps.js';
import { conversationRoutes } from '../src/api/routes/conversations.js';
import { EventHub } from '../src/store/eventHub.js';
import type { Queryable } from '../src/store/pool.js';
import { appendMessage, createConversation, finishConversation } from '../src/store/conversations.js';
import { exportConversationsJsonl, type ExportFilter } from '../src/export/conversationExport.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

let db: TestDatabase;
let app: FastifyInstance;
const N = 45;
const types = ['detection', 'localization', 'analysis', 'mitigation'];

interface Written { id: string; taskId: string; problemId: string; taskType: string; model: string; success: boolean; messages: Array<{ role: string; content: string }> }
const written: Written[] = [];

async function collect(filter: ExportFilter, opts: { batchSize?: number; db?: Queryable } = {}): Promise<Array<Record<string, any>>> {
  const lines: string[] = [];
  for await (const line of exportConversationsJsonl(opts.db ?? db.pool, filter, opts)) lines.push(line);
  for (const l of lines) expect(l.endsWith('\n')).toBe(true);
  return lines.map((l) => JSON.parse(l));
}

beforeAll(async () => {
  db = await createTestDatabase();
  for (let i = 0; i < N; i++) {
    const taskType = types[i % 4]!;
    const problemId = `k8s_target_port-misconfig-${taskType}-${1 + (i % 3)}`;
    const model = i % 5 === 0 ? 'anthropic/claude-3-haiku' : 'openai/gpt-4o-mini';
    const taskId = (await db.pool.query<{ id: string }>('INSERT INTO tasks (problem_id) VALUES ($1) RETURNING id', [problemId])).rows[0]!.id;
    const c = await createConversation(db.pool, {
      taskId, attempt: 1, modelName: model, provider: 'openrouter',
      llmConfig: { requested_model: model === 'openai/gpt-4o-mini' ? 'gpt-4o-mini' : model, temperature: 0.5, max_tokens: 1024, top_p: 0.95, template_source: 'checkout:DOCS_SHELL_ONLY' },
      metadata: { problem_id: problemId, task_type: taskType, status: 'running' },
    });
    const messages = [
      { role: 'system', content: `system ${i}` },
      { role: 'user', content: `instructions ${i}` },
      { role: 'user', content: 'Please take the next action' },
      { role: 'assistant', content: `\`\`\`\nexec_shell("kubectl get pods -n ns${i}")\n\`\`\`` },
      { role: 'user', content: `pods of ns${i} "quoted" \\ and\nnewlines\nPlease take the next action` },
      { role: 'assistant', content: '```\nsubmit("Yes")\n```' },
    ];
    for (const [k, m] of messages.entries()) {
      await appendMessage(db.pool, c.id, {
        role: m.role as 'system' | 'user' | 'assistant', content: m.content, step: k < 2 ? null : Math.ceil((k - 1) / 2),
        ...(m.role === 'assistant' ? { call: { prompt_tokens: 100 + i, completion_tokens: 10, cached_tokens: 3, reasoning_tokens: 0, total_tokens: 110 + i, cost_usd: 0.0001 } } : {}),
      });
    }
    const success = i % 3 !== 0;
    if (i !== N - 1) {
      await finishConversation(db.pool, c.id, { status: success ? 'completed' : 'failed', success, reward: success ? 1 : 0, results: { steps: 2, success }, outcome: 'submitted', error_type: null });
    }
    written.push({ id: c.id, taskId, problemId, taskType, model, success, messages });
  }
  // Ten conversations sharing one started_at to the microsecond: the keyset must still visit each once.
  await db.pool.query(`UPDATE llm_conversations SET started_at = '2030-01-01T00:00:00.123456Z' WHERE id = ANY($1::uuid[])`, [written.slice(10, 20).map((w) => w.id)]);

  const deps: AppDeps = { pool: db.pool, config: loadConfig({ LOG_LEVEL: 'silent' }), logger: pino({ level: 'silent' }), events: new EventHub(db.url), workers: null, version: 'test' };
  app = await buildServer(deps);
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/llm-conversations/export' })) await conversationRoutes(app, deps);
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await db.drop();
});

describe('conversation export (JSONL for RL)', () => {
  it('round-trips every finished conversation once, in OpenAI chat format with reward, success, results, usage and metadata', async () => {
    const rows = await collect({}, { batchSize: 7 });
    expect(rows).toHaveLength(N - 1); // the unfinished one is left out
    expect(new Set(rows.map((r) => r.metadata.conversation_id)).size).toBe(N - 1);
    for (const r of rows) {
      const w = written.find((x) => x.id === r.metadata.conversation_id)!;
      const i = written.indexOf(w);
      expect(r.messages).toEqual(w.messages);
      expect(r).toMatchObject({
        reward: w.success ? 1 : 0,
        success: w.success,
        results: { steps: 2, success: w.success },
        usage: { prompt_tokens: 2 * (100 + i), completion_tokens: 20, cached_tokens: 6, reasoning_tokens: 0, total_tokens: 2 * (110 + i), cost_usd: 0.0002, llm_calls: 2 },
        metadata: {
          task_id: w.taskId, attempt: 1, problem_id: w.problemId, task_type: w.taskType, model: w.model, provider: 'openrouter',
          status: w.success ? 'completed' : 'failed', outcome: 'submitted', error_type: null,
          sampling: { temperature: 0.5, max_tokens: 1024, top_p: 0.95 }, template_source: 'checkout:DOCS_SHELL_ONLY',
        },
      });
    }
    expect(await collect({ includeUnfinished: true }, { batchSize: 4 })).toHaveLength(N);
  });

  it('reads in bounded pages: no query asks for more than the page size', async () => {
    const seen: Array<{ sql: string; ids?: number }> = [];
    const spy: Queryable = {
      query: ((sql: string, args?: unknown[]) => {
        const ids = Array.isArray(args?.[0]) ? (args![0] as unknown[]).length : undefined;
        seen.push({ sql, ...(ids !== undefined ? { ids } : {}) });
        return db.pool.query(sql, args);
      }) as Queryable['query'],
    };
    const rows = await collect({ includeUnfinished: true }, { batchSize: 10, db: spy });
    expect(rows).toHaveLength(N);
    const pages = seen.filter((q) => q.sql.includes('FROM llm_conversations'));
    const messageQueries = seen.filter((q) => q.sql.includes('FROM llm_messages'));
    expect(pages).toHaveLength(5); // 10 + 10 + 10 + 10 + 5
    expect(messageQueries.map((q) => q.ids)).toEqual([10, 10, 10, 10, 5]);
    for (const p of pages) expect(p.sql).toMatch(/LIMIT \$\d+/);
  });

  it('filters by problem, task type, model (id or requested name), status and date range', async () => {
    const ended = written.slice(0, N - 1);
    expect((await collect({ problemId: 'k8s_target_port-misconfig-analysis-1' })).map((r) => r.metadata.conversation_id).sort())
      .toEqual(ended.filter((w) => w.problemId === 'k8s_target_port-misconfig-analysis-1').map((w) => w.id).sort());
    expect(await collect({ taskType: 'mitigation' })).toHaveLength(ended.filter((w) => w.taskType === 'mitigation').length);
    expect(await collect({ model: 'anthropic/claude-3-haiku' })).toHaveLength(ended.filter((w) => w.model === 'anthropic/claude-3-haiku').length);
    expect(await collect({ model: 'gpt-4o-mini' })).toHaveLength(ended.filter((w) => w.model === 'openai/gpt-4o-mini').length);
    expect(await collect({ status: 'failed' })).toHaveLength(ended.filter((w) => !w.success).length);
    expect(await collect({ since: new Date('2029-12-31T00:00:00Z') })).toHaveLength(10);
    expect(await collect({ until: new Date('2029-12-31T00:00:00Z') })).toHaveLength(N - 1 - 10);
  });

  it('GET /api/v1/llm-conversations/export streams the same lines as NDJSON', async () => {
    const r = await app.inject({ url: '/api/v1/llm-conversations/export?task_type=detection&status=completed' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('application/x-ndjson');
    expect(r.headers['content-disposition']).toMatch(/attachment; filename="llm-conversations-.*\.jsonl"/);
    const lines = r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const expected = written.slice(0, N - 1).filter((w) => w.taskType === 'detection' && w.success);
    expect(lines.map((l) => l.metadata.conversation_id).sort()).toEqual(expected.map((w) => w.id).sort());
    expect(lines.every((l) => l.metadata.task_type === 'detection' && l.success === true)).toBe(true);

    const bad = await app.inject({ url: '/api/v1/llm-conversations/export?since=yesterday-ish' });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.details).toEqual([{ field: 'query.since', reason: 'must be an ISO 8601 date or date-time' }]);
    const badType = await app.inject({ url: '/api/v1/llm-conversations/export?task_type=chaos' });
    expect(badType.statusCode).toBe(422);
    expect(badType.json().error.details[0].field).toBe('query.task_type');
  });
});
