/**
 * The whole service as a user runs it: POST /tasks → a worker claims it → preflight → its Kind
 * cluster (stand-in) → the real bridge runs the fixture AIOpsLab → the LLM agent answers through
 * the OpenAI protocol (stand-in server) → completed task with reward, conversation and cost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServiceHarness, TEST_LLM_KEY, type ServiceHarness } from './helpers/serviceHarness.js';

let h: ServiceHarness;
beforeAll(async () => { h = await startServiceHarness({ workers: 2 }); });
afterAll(async () => { await h?.close(); });

describe('a task end to end', () => {
  it('runs a detection problem to a completed, correct result with its conversation and real usage', async () => {
    const task = await h.submit({ problem_id: 'k8s_target_port-misconfig-detection-1', parameters: { max_steps: 5, agent_config: { model: 'gpt-4o-mini', temperature: 0.3 } } });
    const done = await h.waitForTask(task.id, ['completed', 'failed', 'timeout'], 90_000);
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect(done.result).toMatchObject({
      'Detection Accuracy': 'Correct', success: true, reward: 1, outcome: 'submitted', steps: 2,
      model: 'openai/gpt-4o-mini', problem_id: task.problem_id,
    });
    expect(done.result.usage.total_tokens).toBeGreaterThan(0);
    expect(done.result.usage.llm_calls).toBe(2);

    // The LLM saw exactly what the stock clients send, with the configured temperature.
    const reqs = h.llm.chatRequests();
    const first = reqs[0]!.body as { model: string; temperature: number; messages: Array<{ role: string; content: string }> };
    expect(first.model).toBe('openai/gpt-4o-mini');
    expect(first.temperature).toBe(0.3);
    expect(first.messages.map((m) => m.role)).toEqual(['system', 'user', 'user']);
    expect(first.messages[2]!.content).toBe('Please take the next action');

    // The conversation is stored with per-message usage and totals equal to the provider's numbers.
    const convs = (await h.api(`/api/v1/llm-conversations/task/${task.id}/conversations`)).body;
    expect(convs).toHaveLength(1);
    const conv = (await h.api(`/api/v1/llm-conversations/${convs[0].id}`)).body;
    const assistant = conv.messages.filter((m: { role: string }) => m.role === 'assistant');
    expect(assistant).toHaveLength(2);
    const sent = h.llm.responses.map((r) => (r.usage as { total_tokens: number }).total_tokens).reduce((a, b) => a + b, 0);
    expect(conv.total_tokens).toBe(sent);
    expect(done.result.usage.total_tokens).toBe(sent);

    // The timeline has every phase, and AIOpsLab's output was captured.
    const logs = (await h.api(`/api/v1/tasks/${task.id}/logs?limit=1000`)).body.logs as Array<{ message: string; context: Record<string, unknown> }>;
    const phases = logs.map((l) => l.context.phase).filter(Boolean);
    for (const p of ['created', 'claimed', 'preflight', 'cluster', 'run', 'init', 'step', 'run_finished', 'finished']) expect(phases).toContain(p);
    expect(logs.some((l) => l.context.source === 'aiopslab')).toBe(true);

    // One cluster for the worker, created once, with its own kubeconfig.
    const creates = h.standins.callsMatching('kind', ['create', 'cluster']);
    expect(creates).toHaveLength(1);
    expect(h.standins.calls('kubectl').some((c) => c.argv.includes('use-context'))).toBe(false);

    // The key is nowhere but where it belongs.
    const dump = await h.db.pool.query(`SELECT (SELECT string_agg(t::text, '') FROM tasks t) || (SELECT string_agg(l::text, '') FROM task_logs l) || (SELECT string_agg(c::text, '') FROM llm_conversations c) || (SELECT string_agg(m::text, '') FROM llm_messages m) AS all`);
    expect(dump.rows[0].all).not.toContain(TEST_LLM_KEY);
    expect(h.logs()).not.toContain(TEST_LLM_KEY);
    expect(reqs[0]!.headers.authorization).toBe(`Bearer ${TEST_LLM_KEY}`);
  });

  it('starts the run during the cluster check when the worker\'s cluster is reused, not when it is created', async () => {
    // Two workers, tasks one after another until one lands on a worker whose cluster exists (the
    // first test created one): at most three, as the two workers' clusters both exist after two.
    const seen: Array<{ action: string; hidden: unknown }> = [];
    while (seen.length < 3 && !seen.some((s) => s.action === 'reused')) {
      const task = await h.submit({ problem_id: 'k8s_target_port-misconfig-detection-1', parameters: { max_steps: 5, agent_config: { model: 'gpt-4o-mini' } } });
      const done = await h.waitForTask(task.id, ['completed', 'failed', 'timeout'], 90_000);
      expect(done.status, JSON.stringify(done)).toBe('completed');
      const logs = (await h.api(`/api/v1/tasks/${task.id}/logs?limit=1000`)).body.logs as Array<{ context: Record<string, unknown> }>;
      const cluster = logs.find((l) => l.context.phase === 'cluster')!;
      seen.push({ action: String(cluster.context.action), hidden: done.result.phase_durations_ms.cluster_check_alongside_run });
    }
    for (const s of seen) {
      if (s.action === 'reused') expect(s.hidden).toEqual(expect.any(Number));
      else expect(s.hidden).toBeUndefined();
    }
    expect(seen.filter((s) => s.action === 'reused').length).toBeGreaterThanOrEqual(1);
  }, 3 * 90_000);

  it('fails in preflight, before any cluster work, for a missing provider key', async () => {
    const before = h.standins.calls().length;
    const task = await h.submit({ problem_id: 'k8s_target_port-misconfig-detection-1', parameters: { agent_config: { model: 'openai:gpt-4o' } } });
    const done = await h.waitForTask(task.id, ['completed', 'failed'], 30_000);
    expect(done).toMatchObject({ status: 'failed', error_type: 'missing_api_key' });
    expect(done.error_details).toContain('OPENAI_API_KEY');
    expect(h.standins.calls().slice(before).filter((c) => c.tool === 'kind' && c.argv[0] === 'create')).toEqual([]);
  });

  it('rejects an unknown problem id at submission with close matches', async () => {
    const r = await h.api('/api/v1/tasks', { body: { problem_id: 'k8s_target_port-misconfig-detektion-1' } });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('unknown_problem');
    expect(r.body.error.details[0].closest).toContain('k8s_target_port-misconfig-detection-1');
  });
});
