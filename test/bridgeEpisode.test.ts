/**
 * The real bridge against the fixture AIOpsLab checkout, with kind/kubectl/helm/docker stand-ins:
 * runs that reach evaluation (correct detection, wrong localization, analysis dict, mitigation checked
 * in the cluster, invalid formats, max steps) and how they map to the task's outcome.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarizeEpisode } from '../src/bridge/taskOutcome.js';
import { ScriptedAgent, createEpisodeHarness, shell, submit, type EpisodeHarness } from './fixtures/agents.js';

let h: EpisodeHarness;
beforeAll(() => {
  h = createEpisodeHarness();
});
afterAll(() => h.cleanup());

describe('a detection run that submits the right answer', () => {
  let run: Awaited<ReturnType<EpisodeHarness['run']>>;
  let agent: ScriptedAgent;
  beforeAll(async () => {
    agent = new ScriptedAgent([shell('kubectl get svc -n test-social-network'), submit('Yes')]);
    run = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent });
  }, 120_000);

  it('ends submitted, with AIOpsLab\'s detection results unchanged', () => {
    const { result } = run;
    expect(result.error).toBeNull();
    expect(result.outcome).toBe('submitted');
    expect(result.steps).toBe(2);
    expect(result.stopClean).toBe(true);
    expect(result.exitCode).toBe(0);
    expect(Object.keys(result.results!).sort()).toEqual(['Detection Accuracy', 'TTD', 'in_tokens', 'out_tokens', 'steps']);
    expect(result.results!['Detection Accuracy']).toBe('Correct');
    expect(result.results!.steps).toBe(2);
  });

  it('maps to a completed task with success, reward and time-to-detect', () => {
    const s = summarizeEpisode('k8s_target_port-misconfig-detection-1', run.result);
    expect(s.status).toBe('completed');
    expect(s.errorType).toBeNull();
    expect(s.result).toMatchObject({ 'Detection Accuracy': 'Correct', success: true, reward: 1, steps: 2, outcome: 'submitted', task_type: 'detection' });
    expect(s.result.ttx).toEqual({ name: 'TTD', seconds: run.result.results!.TTD });
    expect(s.result.session_id).toBe(run.result.session!.session_id);
  });

  it('gives the agent the initial context: description, instructions, actions and the checkout\'s templates', () => {
    const ctx = agent.contexts[0]!;
    expect(agent.contexts).toHaveLength(1);
    expect(ctx.problemId).toBe('k8s_target_port-misconfig-detection-1');
    expect(ctx.taskDescription).toContain('Service Name: Social Network');
    expect(ctx.instructions).toContain('exec_shell("ls -l")');
    expect(Object.keys(ctx.actions)).toEqual(['exec_shell', 'get_logs', 'get_metrics', 'get_traces', 'read_metrics', 'read_traces', 'submit']);
    expect(ctx.actions.submit).toContain('"Yes" or "No"');
    // Top-level string constants only, read without importing the clients package.
    expect(Object.keys(ctx.templates).sort()).toEqual(['AUTOGEN_DOCS', 'DOCS', 'DOCS_SHELL_ONLY']);
    expect(ctx.templates.DOCS_SHELL_ONLY).toContain('{shell_api}');
    expect(ctx.sessionId).toBe(run.result.session!.session_id);
  });

  it('asks with AIOpsLab\'s raw inputs and reports every step, the final submit included', () => {
    expect(agent.requests.map((r) => r.step)).toEqual([1, 2]);
    expect(agent.requests[0]!.input).toBe('Please take the next action');
    expect(agent.requests[1]!.input).toBe(`${agent.steps[0]!.response}\nPlease take the next action`);
    expect(agent.steps[0]).toMatchObject({ step: 1, api: 'exec_shell', args: ['kubectl get svc -n test-social-network'], submitted: false });
    expect(agent.steps[0]!.response).toContain('user-service');
    expect(agent.steps[1]).toMatchObject({ step: 2, api: 'submit', args: ['Yes'], kwargs: {}, response: 'VALID_SUBMISSION', submitted: true });
  });

  it('returns the session as JSON, the same as the file AIOpsLab wrote into results_dir', () => {
    const session = run.result.session!;
    const trace = session.trace as Array<{ role: string; content: string }>;
    expect(trace.map((t) => t.role)).toEqual(['assistant', 'env', 'assistant', 'env']);
    expect(trace[2]!.content).toBe(submit('Yes'));
    const files = readdirSync(path.join(run.workDir, 'results'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^${session.session_id}_\\d+\\.\\d+\\.json$`));
    const saved = JSON.parse(readFileSync(path.join(run.workDir, 'results', files[0]!), 'utf8'));
    expect(saved).toEqual(session);
  });

  it('emits the protocol events in order, from hello to bye', () => {
    const types = run.events.map((e) => (e.type === 'phase' ? e.phase : e.type));
    expect(types[0]).toBe('hello');
    expect(types.at(-1)).toBe('bye');
    const order = ['init_started', 'init_done', 'initialized', 'loop_started', 'action_request', 'step', 'loop_done', 'eval_started', 'eval_done', 'teardown_done', 'results'];
    const positions = order.map((t) => types.indexOf(t));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(Object.keys(run.result.phaseDurationsMs)).toEqual(expect.arrayContaining(['startup', 'init', 'loop', 'eval', 'teardown', 'agent', 'env']));
  });

  it('runs AIOpsLab\'s full teardown on the worker\'s cluster', () => {
    const state = h.standins.clusterState(h.cluster.name)!;
    expect(Object.keys(state.objects).filter((k) => k.startsWith('test-social-network/'))).toEqual([]);
    expect(state.objects['/namespace/openebs']).toBeUndefined();
    expect(state.helmReleases['observe/prometheus']).toBeUndefined();
    expect(run.stdout().some((l) => /^Framework overhead: \d/.test(l))).toBe(true);
  });
});

describe('scored runs per task type', () => {
  it('a wrong localization is completed with success false and reward 0', async () => {
    const agent = new ScriptedAgent([submit(['text-service'])]);
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-localization-1', agent });
    expect(result.outcome).toBe('submitted');
    expect(result.results).toMatchObject({ 'Localization Accuracy': 0, success: false, is_subset: false, steps: 1 });
    expect(typeof result.results!.TTL).toBe('number');
    const s = summarizeEpisode('k8s_target_port-misconfig-localization-1', result);
    expect(s).toMatchObject({ status: 'completed', errorType: null });
    expect(s.result).toMatchObject({ success: false, reward: 0, task_type: 'localization' });
    expect(s.result.ttx).toMatchObject({ name: 'TTL' });
  }, 120_000);

  it('an analysis dict reaches eval as a dict', async () => {
    const analysis = { system_level: 'Virtualization', fault_type: 'Misconfiguration' };
    const agent = new ScriptedAgent([submit(analysis)]);
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-analysis-1', agent });
    expect(agent.steps[0]!.args).toEqual([analysis]);
    expect(result.results).toMatchObject({ system_level_correct: true, fault_type_correct: true, success: true });
    expect(result.session!.results).toEqual(result.results);
    const s = summarizeEpisode('k8s_target_port-misconfig-analysis-1', result);
    expect(s.result).toMatchObject({ success: true, reward: 1, task_type: 'analysis', ttx: { name: 'TTA', seconds: result.results!.TTA } });
  }, 120_000);
});

describe('mitigation is judged from the cluster', () => {
  const fix = `kubectl patch svc user-service -n test-social-network --type merge -p '{"spec":{"ports":[{"name":"9090","port":9090,"targetPort":9090}]}}'`;

  it('the agent fixes the Service with kubectl inside the node; eval reads it back and succeeds', async () => {
    const agent = new ScriptedAgent([shell('kubectl get svc user-service -n test-social-network -o json'), shell(fix), submit()]);
    const before = h.standins.calls().length;
    const { result, workDir } = await h.run({ problemId: 'k8s_target_port-misconfig-mitigation-1', agent });
    expect(result.outcome).toBe('submitted');
    // The fault was in the cluster when the agent looked.
    expect(JSON.parse(agent.steps[0]!.response).spec.ports[0].targetPort).toBe(9999);
    expect(agent.steps[1]!.response).toBe('service/user-service patched\n');
    expect(result.results).toMatchObject({ success: true });
    expect(summarizeEpisode('k8s_target_port-misconfig-mitigation-1', result).result).toMatchObject({ success: true, reward: 1, ttx: { name: 'TTM' } });

    const calls = h.standins.calls().slice(before);
    // The agent's kubectl ran inside the worker's node container; eval read the object back with kubectl.
    const patch = calls.find((c) => c.tool === 'kubectl' && c.argv[0] === 'patch');
    expect(patch?.env.STANDIN_NODE_CLUSTER).toBe(h.cluster.name);
    const evalRead = calls.filter((c) => c.tool === 'kubectl' && c.argv.join(' ') === 'get service user-service -n test-social-network -o json');
    expect(evalRead.length).toBeGreaterThanOrEqual(2);
    // The injector's fixed /tmp file went to the task's private temp folder.
    const apply = calls.find((c) => c.tool === 'kubectl' && c.argv[0] === 'apply' && c.argv[2]?.endsWith('user-service_modified.yaml'));
    expect(apply?.argv[2]).toBe(path.join(workDir, 'tmp', 'user-service_modified.yaml'));
    expect(existsSync(path.join(workDir, 'tmp', 'user-service_modified.yaml'))).toBe(true);
  }, 120_000);

  it('without the fix, eval finds targetPort 9999 and the mitigation fails', async () => {
    const agent = new ScriptedAgent([submit()]);
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-mitigation-1', agent });
    expect(result.outcome).toBe('submitted');
    expect(result.results).toMatchObject({ success: false });
    const s = summarizeEpisode('k8s_target_port-misconfig-mitigation-1', result);
    expect(s).toMatchObject({ status: 'completed', result: { success: false, reward: 0 } });
  }, 120_000);
});

describe('format errors and the step limit', () => {
  it('replies AIOpsLab cannot parse consume steps and come back as the environment\'s answer', async () => {
    const agent = new ScriptedAgent([
      '```bash\nexec_shell("ls")\n```', // language tag on the fence
      'exec_shell("ls")', // no code block
      '```\nexec_shell(ls)\n```', // unquoted command
      '```\nexec_shell("a")\n```\n```\nexec_shell("b")\n```', // two blocks
      submit('Yes'),
    ]);
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-2', agent });
    expect(result.outcome).toBe('submitted');
    expect(result.steps).toBe(5);
    for (const step of agent.steps.slice(0, 4)) expect(step.response).toMatch(/^Error parsing response: /);
    expect(agent.steps[0]!.api).toBeNull();
    expect(agent.steps[2]!.response).toContain('commands must be quoted strings');
    expect(agent.requests[1]!.input.startsWith('Error parsing response: ')).toBe(true);
    expect(result.results).toMatchObject({ 'Detection Accuracy': 'Correct', steps: 5 });
  }, 120_000);

  it('running out of steps is not an error: eval runs with no solution', async () => {
    const agent = new ScriptedAgent([shell('kubectl get pods -n test-social-network')], { repeatLast: true });
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-2', agent, maxSteps: 3 });
    expect(result.error).toBeNull();
    expect(result.outcome).toBe('max_steps_reached');
    expect(result.steps).toBe(3);
    expect(agent.requests).toHaveLength(3);
    expect(result.results).toMatchObject({ 'Detection Accuracy': 'Invalid Format', steps: 3 });
    expect(result.stopClean).toBe(true);
    const s = summarizeEpisode('k8s_target_port-misconfig-detection-2', result);
    expect(s).toMatchObject({ status: 'completed', errorType: null, result: { outcome: 'max_steps_reached', success: false, reward: 0 } });
  }, 120_000);
});
