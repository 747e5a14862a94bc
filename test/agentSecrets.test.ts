import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig, type Config } from '../src/config.js';
import { buildServer } from '../src/api/server.js';
import type { AppDeps } from '../src/api/appDeps.js';
import { conversationRoutes } from '../src/api/routes/conversations.js';
import { modelRoutes } from '../src/api/routes/models.js';
import { EventHub } from '../src/store/eventHub.js';
import { createLlmAgent } from '../src/agent/llmAgent.js';
import { loadModelCatalog, refreshModelCatalog } from '../src/agent/modelCatalog.js';
import { requireProviderKey, resolveModel } from '../src/agent/modelResolution.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { startLlmServer, type LlmServer } from './fixtures/llmServer.js';

const SECRET_PART = randomBytes(16).toString('hex');
const KEY = `sk-or-v1-${SECRET_PART}`;
const OPENAI_KEY = `sk-proj-${randomBytes(12).toString('hex')}`;

let db: TestDatabase;
let server: LlmServer;
let config: Config;
const logLines: string[] = [];
const errorTexts: string[] = [];
const apiBodies: string[] = [];

/** Fails if any of the secrets occurs in the text; `where` names the place in the failure message. */
function expectNoSecret(where: string, text: string) {
  for (const s of [KEY, SECRET_PART, OPENAI_KEY]) {
    if (text.includes(s)) throw new Error(`secret found in ${where}: …${text.slice(Math.max(0, text.indexOf(s) - 80), text.indexOf(s) + 80)}…`);
  }
}

async function databaseDump(): Promise<string> {
  const tables = await db.pool.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`);
  const parts: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await db.pool.query(`SELECT row_to_json(t)::text AS j FROM "${table_name}" t`);
    parts.push(`${table_name}: ${rows.rows.map((r) => r.j).join('\n')}`);
  }
  return parts.join('\n');
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startLlmServer();
  config = loadConfig({ OPENROUTER_API_KEY: KEY, OPENAI_API_KEY: OPENAI_KEY, OPENROUTER_BASE_URL: server.baseUrl, LLM_RETRY_BASE_DELAY: '0.01', LLM_MAX_RETRIES: '2' });
  // A raw logger without redaction: this proves no code path hands the key to the logger at all.
  const logger = pino({ level: 'trace' }, new Writable({ write(c, _e, cb) { logLines.push(c.toString()); cb(); } }));

  await refreshModelCatalog(db.pool, config, logger);
  const { view: catalog } = await loadModelCatalog(db.pool);
  const model = resolveModel('gpt-4o-mini', { config, catalog });
  requireProviderKey(model, config);
  const taskId = (await db.pool.query<{ id: string }>(`INSERT INTO tasks (problem_id, parameters) VALUES ('auth_miss_mongodb-detection-1', '{}') RETURNING id`)).rows[0]!.id;
  const agent = await createLlmAgent({
    pool: db.pool, config, logger, task: { id: taskId, attempt: 1, problemId: 'auth_miss_mongodb-detection-1', parameters: { agent_config: { model: 'gpt-4o-mini' } } },
    workerId: 'worker-leak-1', clusterName: 'aiopslab-worker-leak-1', model, catalog,
  });
  await agent.init({ problemId: 'auth_miss_mongodb-detection-1', taskDescription: 'Detect anomalies.', instructions: 'One call per turn.', actions: { exec_shell: 'Run a command.', submit: 'Submit Yes or No.' }, templates: {}, sessionId: null });
  server.enqueue({ kind: 'rateLimit', retryAfter: '0' }, { kind: 'status', status: 500 });
  const a1 = await agent.nextAction({ step: 1, input: 'Please take the next action' });
  await agent.onStep!({ step: 1, action: a1, api: 'exec_shell', args: ['kubectl get pods'], kwargs: {}, response: 'pods', submitted: false, durationMs: 1 });
  // A provider that echoes the credentials it got back in its error message.
  server.setPolicy(({ headers }) => ({ kind: 'status', status: 401, message: `bad credentials: ${String(headers.authorization)}` }));
  try {
    await agent.nextAction({ step: 2, input: 'pods\nPlease take the next action' });
  } catch (e) {
    errorTexts.push(String((e as Error).message), JSON.stringify((e as { details?: unknown }).details ?? null), String((e as Error).stack));
  }
  await agent.finish({ status: 'failed', success: null, results: null, reward: null, outcome: 'aborted_in_loop', error_type: 'llm_auth' });
  // Other error paths: a missing key and an unknown model.
  for (const f of [
    () => requireProviderKey(resolveModel('anthropic/claude-3-haiku', { config: { ...config, openrouterApiKey: null }, catalog }), { ...config, openrouterApiKey: null }),
    () => resolveModel('not-a-model-at-all', { config, catalog }),
  ]) {
    try { f(); } catch (e) { errorTexts.push((e as Error).message, JSON.stringify((e as { details?: unknown }).details ?? null)); }
  }

  const deps: AppDeps = { pool: db.pool, config, logger, events: new EventHub(db.url), workers: null, version: 'test' };
  const app = await buildServer(deps);
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/llm-conversations' })) await conversationRoutes(app, deps);
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/models' })) await modelRoutes(app, deps);
  await app.ready();
  const conversationId = agent.conversationId;
  for (const url of [
    '/api/v1/llm-conversations', `/api/v1/llm-conversations/${conversationId}`, `/api/v1/llm-conversations/${conversationId}/messages`,
    `/api/v1/llm-conversations/task/${taskId}/conversations`, '/api/v1/llm-conversations/stats/summary', '/api/v1/llm-conversations/export?include_unfinished=true',
    '/api/v1/models', '/api/v1/models/resolve?model=gpt-4o-mini', '/api/v1/models/resolve?model=nope-model',
  ]) {
    const r = await app.inject({ url });
    expect(r.statusCode, url).toBeLessThan(500);
    apiBodies.push(`${url} ${JSON.stringify(r.headers)} ${r.body}`);
  }
  await app.close();
});

afterAll(async () => {
  await server.close();
  await db.drop();
});

describe('the API key never leaves the process except in the Authorization header', () => {
  it('was really used (the scan would see it where it is)', () => {
    const sent = server.chatRequests();
    expect(sent.length).toBeGreaterThanOrEqual(4);
    expect(sent.every((r) => r.headers.authorization === `Bearer ${KEY}`)).toBe(true);
    expect(() => expectNoSecret('fixture requests', JSON.stringify(server.requests.map((r) => r.headers)))).toThrow(/secret found/);
    expect(errorTexts.join(' ')).toContain('[redacted]'); // the provider echoed it; we removed it
  });

  it('is absent from every table of the database', async () => {
    const dump = await databaseDump();
    expect(dump).toContain('llm_messages');
    expect(dump).toContain('bad credentials'); // the recorded error is there, without the key
    expectNoSecret('the database', dump);
  });

  it('is absent from the logs', () => {
    const logs = logLines.join('');
    expect(logs).toContain('retrying');
    expect(logs).toContain('LLM call failed');
    expectNoSecret('the logs', logs);
  });

  it('is absent from error messages and details', () => {
    expect(errorTexts.length).toBeGreaterThanOrEqual(6);
    expectNoSecret('error messages', errorTexts.join('\n'));
  });

  it('is absent from API responses', () => {
    expect(apiBodies).toHaveLength(9);
    expectNoSecret('API responses', apiBodies.join('\n'));
  });
});
