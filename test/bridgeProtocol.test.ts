/** Protocol parsing, output line handling, environment scrubbing and the outcome → task mapping. */
import { describe, expect, it } from 'vitest';
import { aiopslabClusterName, bridgeEnvironment, isSecretVariable, scrubEnvironment } from '../src/bridge/bridgeEnvironment.js';
import { LineSplitter, stripAnsi, visibleLine } from '../src/bridge/outputLines.js';
import { ProtocolError, encodeWorkerMessage, parseBridgeEvent } from '../src/bridge/protocol.js';
import type { EpisodeResult } from '../src/bridge/runEpisode.js';
import { rewardOf, successOf, summarizeEpisode, timeToX } from '../src/bridge/taskOutcome.js';
import { AppError } from '../src/errors.js';

describe('parseBridgeEvent', () => {
  it('accepts known events and rejects anything else', () => {
    expect(parseBridgeEvent('{"type":"action_request","step":2,"input":"x","ts":1}')).toMatchObject({ type: 'action_request', step: 2 });
    expect(() => parseBridgeEvent('Session ID: 1234')).toThrow(ProtocolError);
    expect(() => parseBridgeEvent('[1,2]')).toThrow(/not an object/);
    expect(() => parseBridgeEvent('{"type":"surprise"}')).toThrow(/unknown event type/);
    expect(() => parseBridgeEvent('{"type":"step","step":"1"}')).toThrow(/integer step/);
  });

  it('encodes worker messages as single lines', () => {
    const line = encodeWorkerMessage({ type: 'action_reply', step: 1, text: 'a\nb' });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({ type: 'action_reply', step: 1, text: 'a\nb' });
  });
});

describe('output lines', () => {
  function lines(chunks: Array<Buffer | string>, max?: number): string[] {
    const out: string[] = [];
    const s = new LineSplitter((l) => out.push(l), max);
    for (const c of chunks) s.push(c);
    s.end();
    return out;
  }

  it('decodes UTF-8 split across chunks', () => {
    const bytes = Buffer.from('café ✓\n', 'utf8');
    expect(lines([bytes.subarray(0, 4), bytes.subarray(4, 6), bytes.subarray(6)])).toEqual(['café ✓']);
  });

  it('removes colours, cursor codes and hyperlinks; keeps what a terminal finally shows', () => {
    expect(stripAnsi('\x1b[1;32mok\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07')).toBe('ok link');
    expect(visibleLine('\r| wait\r/ wait\r\x1b[2K\x1b[32mdone\x1b[0m')).toBe('done');
    expect(visibleLine('text\r')).toBe('text');
    expect(lines(['a\r\nb\n\n   \nc'])).toEqual(['a', 'b', 'c']);
  });

  it('cuts long lines and bounds a line that never ends', () => {
    expect(lines(['x'.repeat(25) + '\n'], 10)).toEqual(['x'.repeat(10), 'x'.repeat(10), 'x'.repeat(5)]);
    const out: string[] = [];
    const s = new LineSplitter((l) => out.push(l), 10);
    s.push('y'.repeat(45));
    expect(out.join('')).toBe('y'.repeat(45));
  });
});

describe('the bridge environment', () => {
  it('treats keys, tokens, secrets, passwords, database and LLM settings as secret', () => {
    for (const name of ['OPENROUTER_API_KEY', 'OPENAI_API_KEY', 'OPENAI_KEY', 'ANTHROPIC_API_KEY', 'DATABASE_URL', 'API_TOKEN', 'WORKER_TOKEN', 'GITHUB_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'DB_PASSWORD', 'PGPASSWORD', 'PGHOST', 'OPENROUTER_BASE_URL', 'WANDB_API_KEY', 'SSH_PRIVATE_KEY', 'GOOGLE_APPLICATION_CREDENTIALS']) {
      expect(isSecretVariable(name), name).toBe(true);
    }
    for (const name of ['PATH', 'HOME', 'KUBECONFIG', 'DOCKER_HOST', 'HTTPS_PROXY', 'TIKTOKEN_CACHE_DIR', 'LOG_TRIM', 'LANG', 'VIRTUAL_ENV', 'SSH_AUTH_SOCK', 'KEYBOARD_LAYOUT']) {
      expect(isSecretVariable(name), name).toBe(false);
    }
  });

  it('drops variables whose value contains a configured secret', () => {
    expect(scrubEnvironment({ A: 'x sk-1234567 y', B: 'fine' }, ['sk-1234567'])).toEqual({ B: 'fine' });
  });

  it('derives AIOPSLAB_CLUSTER from the kind context and sets the per-task variables', () => {
    expect(aiopslabClusterName({ name: 'n', context: 'kind-aiopslab-worker-001-internal' })).toBe('aiopslab-worker-001-internal');
    expect(aiopslabClusterName({ name: 'n', context: 'prod-admin' })).toBe('n');
    const env = bridgeEnvironment({ PATH: '/bin', OPENROUTER_API_KEY: 'k', USE_WANDB: 'true' }, {
      cluster: { name: 'c', context: 'kind-c', kubeconfig: '/w/kubeconfig', home: '/w/home' },
      tmpDir: '/t/tmp',
    });
    expect(env).toEqual({ PATH: '/bin', AIOPSLAB_CLUSTER: 'c', KUBECONFIG: '/w/kubeconfig', HOME: '/w/home', TMPDIR: '/t/tmp', PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8', USE_WANDB: 'false' });
  });
});

function episode(over: Partial<EpisodeResult>): EpisodeResult {
  return {
    outcome: 'submitted', session: { session_id: 's-1' }, results: null, steps: 1, error: null, agentError: null, stoppedBy: null,
    stopClean: true, exitCode: 0, exitSignal: null, durationMs: 1, phaseDurationsMs: {}, ...over,
  };
}

describe('summarizeEpisode', () => {
  it('success and reward per task type', () => {
    expect(successOf('detection', { 'Detection Accuracy': 'Correct', success: false })).toBe(true);
    expect(successOf('detection', { 'Detection Accuracy': 'Invalid Format' })).toBe(false);
    expect(successOf('mitigation', { success: true })).toBe(true);
    expect(successOf('analysis', { success: 'yes' })).toBe(false);
    expect(rewardOf('localization', { 'Localization Accuracy': 50, success: false })).toBe(0.5);
    expect(rewardOf('localization', { 'Localization Accuracy': 100, success: true })).toBe(1);
    expect(rewardOf('analysis', { success: true })).toBe(1);
    expect(rewardOf('detection', null)).toBe(0);
    expect(timeToX({ TTM: 12.5 })).toEqual({ name: 'TTM', seconds: 12.5 });
    expect(timeToX({})).toBeNull();
  });

  it('keeps AIOpsLab\'s results dict unchanged and adds the uniform fields', () => {
    const results = { 'Localization Accuracy': 50, TTL: 3.5, steps: 4, in_tokens: 10, out_tokens: 20, success: false, is_subset: true };
    const s = summarizeEpisode('k8s_target_port-misconfig-localization-2', episode({ results, steps: 4 }));
    expect(s).toMatchObject({ status: 'completed', errorType: null, errorDetails: null });
    expect(s.result).toEqual({ ...results, success: false, reward: 0.5, ttx: { name: 'TTL', seconds: 3.5 }, outcome: 'submitted', task_type: 'localization', session_id: 's-1' });
  });

  const err = (phase: NonNullable<EpisodeResult['error']>['phase'], type = 'X') => ({ phase, type, message: 'boom', traceback: 'Traceback\n  line' });
  it.each([
    [{ outcome: 'aborted_in_init', error: err('init') }, 'aiopslab_init_failed'],
    [{ outcome: 'aborted_in_loop', error: err('loop') }, 'aiopslab_loop_failed'],
    [{ outcome: 'failed_in_eval', error: err('eval') }, 'aiopslab_eval_failed'],
    [{ outcome: 'aborted_in_init', error: err('protocol', 'ProtocolError') }, 'bridge_failed'],
    [{ outcome: 'aborted_in_init', error: err('startup', 'RuntimeError') }, 'bridge_failed'],
    [{ outcome: 'aborted_in_init', error: err('startup', 'ModuleNotFoundError') }, 'missing_prerequisite'],
    [{ outcome: 'aborted_in_init', error: err('startup', 'ConfigException') }, 'cluster_failed'],
    [{ outcome: 'aborted_in_loop', error: err('loop', 'AgentActionError'), agentError: new AppError('llm_credits', 'no credits') }, 'llm_credits'],
    [{ outcome: 'aborted_in_loop', error: err('loop', 'AgentActionError'), agentError: { code: 'budget_exceeded', message: 'over' } }, 'budget_exceeded'],
    [{ outcome: 'aborted_in_loop', error: err('loop', 'StopRequested'), stoppedBy: 'cancelled' }, 'cancelled'],
    [{ outcome: 'aborted_in_init', error: err('init', 'Terminated'), stoppedBy: 'timeout' }, 'timeout'],
    [{ outcome: 'aborted_in_loop', error: err('loop', 'StopRequested'), stoppedBy: 'shutdown' }, 'cancelled'],
  ] as Array<[Partial<EpisodeResult>, string]>)('failed runs carry a typed error: %j → %s', (over, code) => {
    const s = summarizeEpisode('k8s_target_port-misconfig-detection-1', episode({ results: null, ...over }));
    expect(s.status).toBe('failed');
    expect(s.errorType).toBe(code);
    expect(s.errorDetails).toBeTruthy();
    expect(s.result).toMatchObject({ success: false, reward: 0, outcome: over.outcome });
  });

  it('a teardown failure after evaluation is completed, with the failure in error_details', () => {
    const s = summarizeEpisode('k8s_target_port-misconfig-detection-1', episode({ outcome: 'failed_in_teardown', results: { 'Detection Accuracy': 'Correct', TTD: 1 }, error: err('teardown', 'Exception'), stopClean: false }));
    expect(s).toMatchObject({ status: 'completed', errorType: null, result: { success: true, reward: 1, teardown_error: 'boom' } });
    expect(s.errorDetails).toBe('Evaluation completed; teardown failed: Exception: boom');
  });

  it('max steps reached is a completed task with the score AIOpsLab gave', () => {
    const s = summarizeEpisode('k8s_target_port-misconfig-detection-1', episode({ outcome: 'max_steps_reached', results: { 'Detection Accuracy': 'Invalid Format', steps: 30 } }));
    expect(s).toMatchObject({ status: 'completed', result: { success: false, reward: 0, steps: 30, outcome: 'max_steps_reached' } });
  });
});
