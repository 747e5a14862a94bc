import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { loadConfig, type Config } from '../src/config.js';
import { AppError } from '../src/errors.js';
import type { EpisodeContext } from '../src/bridge/episodeAgent.js';
import { createLlmAgent, type AgentTaskParameters, type LlmAgent } from '../src/agent/llmAgent.js';
import { loadModelCatalog, refreshModelCatalog, type ModelCatalogView } from '../src/agent/modelCatalog.js';
import { resolveModel, type ResolvedModel } from '../src/agent/modelResolution.js';
import { BUILTIN_SHELL_ONLY_TEMPLATE } from '../src/agent/promptBuilder.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { DEFAULT_MODELS, startLlmServer, type ChatRequestBody, type LlmServer } from './fixtures/llmServer.js';

const KEY = 'sk-or-v1-agent-test-fedcba9876543210';
let db: TestDatabase;
let server: LlmServer;
let config: Config;
let catalog: ModelCatalogView | null;
const log = pino({ level: 'silent' });

// Our own test texts in the shapes INTERFACE.md §2 describes (not AIOpsLab's wording).
const actions: Record<string, string> = {
  exec_shell: 'Run a shell command inside the cluster.\n\n        Args:\n            command (str): what to run',
  get_logs: 'Fetch the logs of a service.',
  get_metrics: 'Export metrics to CSV files.',
  get_traces: 'Export traces to CSV files.',
  read_metrics: 'Render a metrics CSV file.',
  read_traces: 'Render a traces CSV file.',
  submit: 'Report whether there is an anomaly.\n\n        Args:\n            has_anomaly (str): "Yes" or "No"',
};
const taskDescription = 'You look after a deployed service and must detect anomalies in it.\nService Details:\nService Name: Hotel Reservation\nNamespace: test-hotel-reservation';
const instructions = '            Answer with one API call per turn in a fenced block:\n            ```\n            exec_shell("ls -l")\n            ```\n            Submit with submit("Yes") or submit("No").';
const TEMPLATE = 'Problem:\n{prob_desc}\n\nTerminal:\n{shell_api}\n\nAnswer with:\n{submit_api}\n\nJSON looks like {{"a": 1}}\nAction: <your action>';
const expectedSystem = `Problem:\n${taskDescription}\n\nTerminal:\nexec_shell\n${actions.exec_shell}\n\nAnswer with:\nsubmit\n${actions.submit}\n\nJSON looks like {"a": 1}\nAction: <your action>`;

function context(templates: Record<string, string> = { DOCS_SHELL_ONLY: TEMPLATE }): EpisodeContext {
  return { problemId: 'k8s_target_port-misconfig-detection-1', taskDescription, instructions, actions, templates, sessionId: '3f6c1a52-8f0e-4d4e-9d7e-0a1b2c3d4e5f' };
}

async function newTask(parameters: AgentTaskParameters): Promise<string> {
  const r = await db.pool.query<{ id: string }>('INSERT INTO tasks (problem_id, parameters) VALUES ($1, $2) RETURNING id', ['k8s_target_port-misconfig-detection-1', JSON.stringify(parameters)]);
  return r.rows[0]!.id;
}

async function makeAgent(parameters: Partial<AgentTaskParameters> = {}, opts: { model?: ResolvedModel; catalog?: ModelCatalogView | null } = {}): Promise<LlmAgent> {
  const p: AgentTaskParameters = { agent_config: { model: 'openai/gpt-4o-mini' }, ...parameters };
  const id = await newTask(p);
  const model = opts.model ?? resolveModel(p.agent_config.model, { config, catalog });
  return createLlmAgent({
    pool: db.pool, config, logger: log,
    task: { id, attempt: 1, problemId: 'k8s_target_port-misconfig-detection-1', parameters: p },
    workerId: 'worker-test-1', clusterName: 'aiopslab-worker-test-1',
    model, catalog: opts.catalog === undefined ? catalog : opts.catalog,
  });
}

async function messagesOf(conversationId: string) {
  return (await db.pool.query('SELECT seq, role, content, step, metadata FROM llm_messages WHERE conversation_id = $1 ORDER BY seq', [conversationId])).rows;
}

async function conversationRow(id: string) {
  return (await db.pool.query('SELECT * FROM llm_conversations WHERE id = $1', [id])).rows[0];
}

function chatBody(i: number): ChatRequestBody {
  return server.chatRequests()[i]!.body as ChatRequestBody;
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startLlmServer();
  config = loadConfig({ OPENROUTER_API_KEY: KEY, OPENROUTER_BASE_URL: server.baseUrl, LLM_RETRY_BASE_DELAY: '0.01', LLM_REQUEST_TIMEOUT: '5' });
  const refreshed = await refreshModelCatalog(db.pool, config, log);
  expect(refreshed).toEqual({ count: DEFAULT_MODELS.length });
  catalog = (await loadModelCatalog(db.pool)).view;
});
afterAll(async () => {
  await server.close();
  await db.drop();
});
beforeEach(() => server.reset());

describe('the first request', () => {
  it("is [system from the checkout's DOCS_SHELL_ONLY, instructions verbatim, the first observation] with the default sampling parameters", async () => {
    const agent = await makeAgent();
    await agent.init(context());
    const reply = await agent.nextAction({ step: 1, input: 'Please take the next action' });
    expect(reply).toBe('Action: ```\nexec_shell("kubectl get pods -A")\n```');
    expect(server.chatRequests()).toHaveLength(1);
    expect(chatBody(0)).toEqual({
      model: 'openai/gpt-4o-mini',
      messages: [
        { role: 'system', content: expectedSystem },
        { role: 'user', content: instructions },
        { role: 'user', content: 'Please take the next action' },
      ],
      temperature: 0.5,
      max_tokens: 1024,
      top_p: 0.95,
    });
    const c = await conversationRow(agent.conversationId);
    expect(c.model_name).toBe('openai/gpt-4o-mini');
    expect(c.provider).toBe('openrouter');
    expect(c.session_id).toBe('3f6c1a52-8f0e-4d4e-9d7e-0a1b2c3d4e5f');
    expect(c.llm_config).toMatchObject({
      requested_model: 'openai/gpt-4o-mini', temperature: 0.5, max_tokens: 1024, top_p: 0.95,
      defaults_applied: ['temperature', 'max_tokens', 'top_p'], normalize_reply: false,
      template_source: 'checkout:DOCS_SHELL_ONLY', template_fallback_reason: null,
    });
    expect(c.metadata).toMatchObject({ problem_id: 'k8s_target_port-misconfig-detection-1', task_type: 'detection', worker_id: 'worker-test-1', cluster_name: 'aiopslab-worker-test-1', status: 'running' });
  });

  it('sends temperature, max_tokens and top_p exactly as configured', async () => {
    const agent = await makeAgent({ agent_config: { model: 'gpt-4o-mini', temperature: 0, max_tokens: 300, top_p: 1 } });
    await agent.init(context());
    await agent.nextAction({ step: 1, input: 'Please take the next action' });
    expect(chatBody(0)).toMatchObject({ model: 'openai/gpt-4o-mini', temperature: 0, max_tokens: 300, top_p: 1 });
    const msgs = await messagesOf(agent.conversationId);
    expect(msgs[3].metadata.request).toEqual({ model: 'openai/gpt-4o-mini', provider: 'openrouter', temperature: 0, max_tokens: 300, top_p: 1, messages: 3 });
    expect((await conversationRow(agent.conversationId)).llm_config).toMatchObject({ requested_model: 'gpt-4o-mini', defaults_applied: [] });
  });

  it('falls back to the built-in template with the same layout when the checkout has none, and records it', async () => {
    const agent = await makeAgent();
    await agent.init(context({}));
    await agent.nextAction({ step: 1, input: 'Please take the next action' });
    const expected = BUILTIN_SHELL_ONLY_TEMPLATE
      .replace('{prob_desc}', taskDescription)
      .replace('{shell_api}', `exec_shell\n${actions.exec_shell}`)
      .replace('{submit_api}', `submit\n${actions.submit}`);
    expect(chatBody(0).messages[0]).toEqual({ role: 'system', content: expected });
    expect(expected).not.toMatch(/get_logs|get_metrics|read_traces/);
    const c = await conversationRow(agent.conversationId);
    expect(c.llm_config.template_source).toBe('builtin:DOCS_SHELL_ONLY');
    expect(c.llm_config.template_fallback_reason).toMatch(/no DOCS_SHELL_ONLY/);
    expect(c.metadata.template_source).toBe('builtin:DOCS_SHELL_ONLY');
  });

  it("falls back when the checkout's template cannot be filled (unknown field)", async () => {
    const agent = await makeAgent();
    await agent.init(context({ DOCS_SHELL_ONLY: '{prob_desc}\n{unknown_field}' }));
    const c = await conversationRow(agent.conversationId);
    expect(c.llm_config.template_source).toBe('builtin:DOCS_SHELL_ONLY');
    expect(c.llm_config.template_fallback_reason).toMatch(/unknown_field/);
  });
});

describe('an episode, recorded as it happens', () => {
  it('keeps the full history, records every message with real usage, cost and call facts, and the steps', async () => {
    const agent = await makeAgent();
    await agent.init(context());
    const a1 = await agent.nextAction({ step: 1, input: 'Please take the next action' });
    await agent.onStep!({ step: 1, action: a1, api: 'exec_shell', args: ['kubectl get pods -A'], kwargs: {}, response: 'NAME   READY   STATUS\nfrontend-1   1/1   Running', submitted: false, durationMs: 812 });
    const obs = 'NAME   READY   STATUS\nfrontend-1   1/1   Running\nPlease take the next action';
    const a2 = await agent.nextAction({ step: 2, input: obs });
    expect(a2).toBe('```\nsubmit("Yes")\n```');
    await agent.onStep!({ step: 2, action: a2, api: 'submit', args: ['Yes'], kwargs: {}, response: '1', submitted: true, durationMs: 3 });

    // The second request carries the whole conversation.
    expect(chatBody(1).messages).toEqual([
      { role: 'system', content: expectedSystem },
      { role: 'user', content: instructions },
      { role: 'user', content: 'Please take the next action' },
      { role: 'assistant', content: a1 },
      { role: 'user', content: obs },
    ]);

    const msgs = await messagesOf(agent.conversationId);
    expect(msgs.map((m) => [m.seq, m.role, m.step])).toEqual([[1, 'system', null], [2, 'user', null], [3, 'user', 1], [4, 'assistant', 1], [5, 'user', 2], [6, 'assistant', 2]]);
    expect(msgs[0].content).toBe(expectedSystem);
    expect(msgs[1].content).toBe(instructions);
    const [r1, r2] = server.responses as Array<{ id: string; model: string; usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; cost: number } }>;
    for (const [m, r] of [[msgs[3], r1!], [msgs[5], r2!]] as const) {
      expect(m.metadata).toMatchObject({
        type: 'action',
        usage: { prompt_tokens: r.usage.prompt_tokens, completion_tokens: r.usage.completion_tokens, cached_tokens: 0, reasoning_tokens: 0, total_tokens: r.usage.total_tokens },
        cost_usd: r.usage.cost,
        cost_source: 'provider',
        generation_id: r.id,
        served_model: 'openai/gpt-4o-mini',
        finish_reason: 'stop',
        attempts: 1,
      });
      expect(typeof m.metadata.latency_ms).toBe('number');
    }
    expect(msgs[3].metadata.env_step).toMatchObject({ step: 1, api: 'exec_shell', args: ['kubectl get pods -A'], submitted: false, duration_ms: 812, response: 'NAME   READY   STATUS\nfrontend-1   1/1   Running' });
    expect(msgs[5].metadata.env_step).toMatchObject({ step: 2, api: 'submit', args: ['Yes'], submitted: true, response: '1' });
    expect(msgs[5].metadata.env_step.action).toBeUndefined(); // AIOpsLab received exactly what was recorded

    // Totals are the sums of the provider's numbers.
    const c = await conversationRow(agent.conversationId);
    const sumTokens = r1!.usage.total_tokens + r2!.usage.total_tokens;
    expect(c).toMatchObject({ total_messages: 6, llm_calls: 2, prompt_tokens: r1!.usage.prompt_tokens + r2!.usage.prompt_tokens, completion_tokens: r1!.usage.completion_tokens + r2!.usage.completion_tokens, total_tokens: sumTokens });
    expect(c.cost_usd).toBeCloseTo(r1!.usage.cost + r2!.usage.cost, 8);
    expect(agent.totals()).toMatchObject({ total_tokens: sumTokens, llm_calls: 2 });
    expect(agent.totals().cost_usd).toBe(c.cost_usd);
    expect(c.messages).toBeNull(); // the jsonb copy is written once, at the end

    await agent.finish({ status: 'completed', success: true, results: { 'Detection Accuracy': 'Correct', steps: 2 }, reward: 1, outcome: 'submitted', error_type: null });
    const done = await conversationRow(agent.conversationId);
    expect(done.ended_at).toBeInstanceOf(Date);
    expect(done.metadata).toMatchObject({ status: 'completed', success: true, reward: 1, outcome: 'submitted', error_type: null, results: { 'Detection Accuracy': 'Correct' }, problem_id: 'k8s_target_port-misconfig-detection-1' });
    expect(done.messages.map((m: { seq: number; role: string; content: string }) => [m.seq, m.role, m.content])).toEqual(msgs.map((m) => [m.seq, m.role, m.content]));
    expect(done.messages[3].metadata.env_step.api).toBe('exec_shell');
  });

  it('stores the exact token counts and provider cost it was sent', async () => {
    server.setPolicy(() => ({ content: '```\nsubmit("No")\n```', usage: { prompt_tokens: 1234, completion_tokens: 56, cached_tokens: 1000, reasoning_tokens: 12, total_tokens: 1290 }, cost: 0.00123456, model: 'openai/gpt-4o-mini-2024-07-18', finish_reason: 'length', id: 'gen-exact-1' }));
    const agent = await makeAgent();
    await agent.init(context());
    await agent.nextAction({ step: 1, input: 'Please take the next action' });
    const m = (await messagesOf(agent.conversationId))[3];
    expect(m.metadata.usage).toEqual({ prompt_tokens: 1234, completion_tokens: 56, cached_tokens: 1000, reasoning_tokens: 12, total_tokens: 1290 });
    expect(m.metadata).toMatchObject({ cost_usd: 0.00123456, cost_source: 'provider', served_model: 'openai/gpt-4o-mini-2024-07-18', finish_reason: 'length', generation_id: 'gen-exact-1' });
    const c = await conversationRow(agent.conversationId);
    expect([c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.reasoning_tokens, c.total_tokens, c.cost_usd, c.llm_calls]).toEqual([1234, 56, 1000, 12, 1290, 0.00123456, 1]);
  });

  it('computes the cost from catalog prices when the provider reports none, and marks it', async () => {
    server.setPolicy(() => ({ content: '```\nsubmit("No")\n```', usage: { prompt_tokens: 1234, completion_tokens: 56 }, cost: null }));
    const agent = await makeAgent();
    await agent.init(context());
    await agent.nextAction({ step: 1, input: 'Please take the next action' });
    const m = (await messagesOf(agent.conversationId))[3];
    // openai/gpt-4o-mini in the fixture catalog: $0.15 / $0.60 per million tokens.
    expect(m.metadata.cost_source).toBe('catalog');
    expect(m.metadata.cost_usd).toBeCloseTo(0.0002187, 12);
    expect((await conversationRow(agent.conversationId)).cost_usd).toBe(0.0002187);
  });

  it('marks the cost unknown when neither provider nor catalog gives one, without inventing tokens', async () => {
    server.setPolicy(() => ({ content: '```\nsubmit("No")\n```', usage: null }));
    const agent = await makeAgent({}, { catalog: null, model: { requested: 'openai/gpt-4o-mini', id: 'openai/gpt-4o-mini', provider: 'openrouter', baseUrl: server.baseUrl, inCatalog: null, catalogId: null } });
    await agent.init(context());
    await agent.nextAction({ step: 1, input: 'Please take the next action' });
    const m = (await messagesOf(agent.conversationId))[3];
    expect(m.metadata).toMatchObject({ cost_source: 'unknown', cost_usd: 0, usage_reported: false, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } });
    const c = await conversationRow(agent.conversationId);
    expect([c.total_tokens, c.cost_usd, c.llm_calls]).toEqual([0, 0, 1]);
  });

  it('returns "" for an empty or missing reply, records it, and leaves it out of the history sent next', async () => {
    server.enqueue({ kind: 'reply', reply: { content: null } });
    const agent = await makeAgent();
    await agent.init(context());
    const reply = await agent.nextAction({ step: 1, input: 'Please take the next action' });
    expect(reply).toBe('');
    const obs = 'Error parsing response: no code block\nPlease take the next action';
    await agent.nextAction({ step: 2, input: obs });
    const msgs = await messagesOf(agent.conversationId);
    expect(msgs[3]).toMatchObject({ role: 'assistant', content: '', metadata: { empty_reply: true, content_null: true } });
    expect(chatBody(1).messages.slice(2)).toEqual([
      { role: 'user', content: 'Please take the next action' },
      { role: 'user', content: obs },
    ]);
  });

  it('does not touch the reply by default, even with a language tag AIOpsLab will reject', async () => {
    server.setPolicy(() => ({ content: 'Action: ```bash\nexec_shell("kubectl get pods")\n```' }));
    const agent = await makeAgent();
    await agent.init(context());
    const reply = await agent.nextAction({ step: 1, input: 'Please take the next action' });
    expect(reply).toBe('Action: ```bash\nexec_shell("kubectl get pods")\n```');
    expect((await messagesOf(agent.conversationId))[3].metadata.normalization).toBeUndefined();
  });

  it('strips the fence language tag when normalize_reply is on and records raw and sent text', async () => {
    const raw = 'Action: ```bash\nexec_shell("kubectl get pods")\n```';
    server.setPolicy(() => ({ content: raw }));
    const agent = await makeAgent({ agent_config: { model: 'openai/gpt-4o-mini', normalize_reply: true } });
    await agent.init(context());
    const reply = await agent.nextAction({ step: 1, input: 'Please take the next action' });
    expect(reply).toBe('Action: ```\nexec_shell("kubectl get pods")\n```');
    await agent.onStep!({ step: 1, action: reply, api: 'exec_shell', args: ['kubectl get pods'], kwargs: {}, response: 'ok', submitted: false, durationMs: 5 });
    const m = (await messagesOf(agent.conversationId))[3];
    expect(m.content).toBe(raw);
    expect(m.metadata.normalization).toEqual({ raw, sent: reply, changes: ['removed language tag "bash" from a code fence'] });
    expect(m.metadata.env_step.action).toBeUndefined(); // AIOpsLab got the normalised text, as recorded in `sent`
    expect((await conversationRow(agent.conversationId)).llm_config.normalize_reply).toBe(true);
  });
});

describe('limits and failures', () => {
  it('stops with budget_exceeded once max_total_tokens is passed, after recording the call', async () => {
    server.setPolicy(() => ({ content: '```\nexec_shell("ls")\n```', usage: { prompt_tokens: 100, completion_tokens: 20 }, cost: 0.0001 }));
    const agent = await makeAgent({ max_total_tokens: 200 });
    await agent.init(context());
    await agent.nextAction({ step: 1, input: 'Please take the next action' }); // 120 tokens: under
    const e = await agent.nextAction({ step: 2, input: 'out\nPlease take the next action' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('budget_exceeded');
    expect((e as AppError).message).toContain('240 tokens');
    const c = await conversationRow(agent.conversationId);
    expect([c.total_tokens, c.llm_calls, c.total_messages]).toEqual([240, 2, 6]);
    expect(c.metadata.budget_exceeded).toEqual({ limit: 'max_total_tokens', max: 200, used: 240 });
  });

  it('stops with budget_exceeded once max_cost_usd is passed', async () => {
    server.setPolicy(() => ({ content: '```\nexec_shell("ls")\n```', usage: { prompt_tokens: 10, completion_tokens: 2 }, cost: 0.0006 }));
    const agent = await makeAgent({ max_cost_usd: 0.001 });
    await agent.init(context());
    await agent.nextAction({ step: 1, input: 'Please take the next action' });
    await expect(agent.nextAction({ step: 2, input: 'x\nPlease take the next action' })).rejects.toMatchObject({ code: 'budget_exceeded' });
    expect((await conversationRow(agent.conversationId)).cost_usd).toBe(0.0012);
  });

  it('fails the action with the typed provider error and records it on the conversation', async () => {
    server.enqueue({ kind: 'status', status: 402, message: 'Insufficient credits' });
    const agent = await makeAgent();
    await agent.init(context());
    await expect(agent.nextAction({ step: 1, input: 'Please take the next action' })).rejects.toMatchObject({ code: 'llm_credits' });
    const c = await conversationRow(agent.conversationId);
    expect(c.metadata.llm_error).toMatchObject({ code: 'llm_credits', step: 1 });
    expect(c.metadata.llm_error.message).toContain('Insufficient credits');
    expect(c.total_messages).toBe(3); // the observation is kept; no reply was produced
    await agent.finish({ status: 'failed', success: null, results: null, reward: null, outcome: null, error_type: 'llm_credits' });
    expect((await conversationRow(agent.conversationId)).metadata).toMatchObject({ status: 'failed', error_type: 'llm_credits' });
  });

  it('drops the oldest turns (never the system prompt or instructions) when the catalog context length would be exceeded', async () => {
    server.setModels([{ id: 'test/tiny-context', name: 'Tiny', context_length: 1200, pricing: { prompt: '0.000001', completion: '0.000002' } }]);
    await refreshModelCatalog(db.pool, config, log);
    const tiny = (await loadModelCatalog(db.pool)).view!;
    const agent = await makeAgent({ agent_config: { model: 'test/tiny-context', max_tokens: 200 } }, { catalog: tiny, model: resolveModel('test/tiny-context', { config, catalog: tiny }) });
    await agent.init(context());
    const big = `${'pod-line '.repeat(200)}\nPlease take the next action`; // ~1800 characters
    await agent.nextAction({ step: 1, input: 'Please take the next action' });
    await agent.nextAction({ step: 2, input: big });
    await agent.nextAction({ step: 3, input: big });
    expect(chatBody(1).messages).toHaveLength(5); // the second request still fits
    const third = chatBody(2).messages;
    expect(third[0]).toEqual({ role: 'system', content: expectedSystem });
    expect(third[1]).toEqual({ role: 'user', content: instructions });
    expect(third[third.length - 1]).toEqual({ role: 'user', content: big });
    expect(third.length).toBeLessThan(7); // untrimmed it would be system, instructions, u1, a1, u2, a2, u3
    const msgs = await messagesOf(agent.conversationId);
    const trimmedNote = msgs.find((m) => m.step === 3 && m.role === 'user')!.metadata.history_trimmed;
    expect(trimmedNote).toMatchObject({ context_length: 1200 });
    expect(trimmedNote.dropped_messages).toBe(7 - third.length);
    expect(msgs).toHaveLength(8); // the record keeps everything
    // Put the default catalog back for other tests.
    server.setModels(DEFAULT_MODELS);
    await refreshModelCatalog(db.pool, config, log);
  });

  it('sends the full history when the context length is unknown', async () => {
    const agent = await makeAgent({}, { catalog: null, model: { requested: 'x/unknown', id: 'x/unknown', provider: 'openrouter', baseUrl: server.baseUrl, inCatalog: null, catalogId: null } });
    await agent.init(context());
    const big = `${'pod-line '.repeat(2000)}\nPlease take the next action`;
    for (let i = 1; i <= 3; i++) await agent.nextAction({ step: i, input: i === 1 ? 'Please take the next action' : big });
    expect(chatBody(2).messages).toHaveLength(7);
  });
});
