/**
 * Maps an episode to the task's terminal fields: status, error_type, error_details and `result`.
 *
 * `completed` means AIOpsLab ran to evaluation, whatever the score: `submitted`, `max_steps_reached`,
 * and also `failed_in_teardown` (the results dict was computed and saved before teardown failed; the
 * score stands, `error_details` names the teardown failure, and `stopClean` is false so the caller
 * recreates the cluster). Everything else is `failed` with a typed error code.
 */
import { isAppError, isErrorCode, type ErrorCode } from '../errors.js';
import { taskTypeOf, type TaskType } from '../catalog/problemCatalog.js';
import type { EpisodeError, EpisodeResult } from './runEpisode.js';

export interface EpisodeSummary {
  status: 'completed' | 'failed';
  errorType: ErrorCode | null;
  errorDetails: string | null;
  result: Record<string, unknown>;
}

const TIME_KEYS = ['TTD', 'TTL', 'TTA', 'TTM'] as const;
/** Startup failures that mean "install or configure something", not a bridge fault. */
const PREREQUISITE_ERRORS = new Set(['SpawnError', 'ModuleNotFoundError', 'ImportError', 'FileNotFoundError']);
const TRACEBACK_LINES_IN_DETAILS = 12;

/** Uniform success per task type: detection has no `success` key, only `Detection Accuracy`. */
export function successOf(taskType: TaskType | null, results: Record<string, unknown> | null): boolean {
  if (!results) return false;
  if (taskType === 'detection') return results['Detection Accuracy'] === 'Correct';
  return results.success === true;
}

/** 1 or 0; localization uses `Localization Accuracy` / 100, which gives partial credit for a superset. */
export function rewardOf(taskType: TaskType | null, results: Record<string, unknown> | null): number {
  if (!results) return 0;
  const accuracy = results['Localization Accuracy'];
  if (taskType === 'localization' && typeof accuracy === 'number' && Number.isFinite(accuracy)) return Math.max(0, Math.min(1, accuracy / 100));
  return successOf(taskType, results) ? 1 : 0;
}

export function timeToX(results: Record<string, unknown> | null): { name: (typeof TIME_KEYS)[number]; seconds: number } | null {
  if (!results) return null;
  for (const name of TIME_KEYS) {
    const v = results[name];
    if (typeof v === 'number') return { name, seconds: v };
  }
  return null;
}

function errorCodeFor(ep: EpisodeResult, error: EpisodeError): ErrorCode {
  if (ep.stoppedBy === 'timeout') return 'timeout';
  if (ep.stoppedBy) return 'cancelled';
  if (ep.agentError !== null && ep.agentError !== undefined) {
    if (isAppError(ep.agentError)) return ep.agentError.code;
    const code = (ep.agentError as { code?: unknown }).code;
    return typeof code === 'string' && isErrorCode(code) ? code : 'internal';
  }
  switch (error.phase) {
    case 'startup':
      if (PREREQUISITE_ERRORS.has(error.type)) return 'missing_prerequisite';
      if (error.type === 'ConfigException') return 'cluster_failed';
      return 'bridge_failed';
    case 'protocol':
      return 'bridge_failed';
    case 'init':
      return 'aiopslab_init_failed';
    case 'loop':
      return 'aiopslab_loop_failed';
    default:
      return 'aiopslab_eval_failed';
  }
}

function describe(ep: EpisodeResult, error: EpisodeError): string {
  const where = { startup: 'while starting the bridge', protocol: 'in the bridge protocol', init: 'in init_problem', loop: 'in the agent loop', eval: 'in evaluation', teardown: 'in teardown' }[error.phase];
  const head = ep.stoppedBy
    ? `Stopped (${ep.stoppedBy}) ${where}${ep.stopClean ? '' : '; the bridge had to be signalled or timed out, so the cluster is marked dirty'}`
    : `${error.type} ${where}: ${error.message}`;
  const agent = ep.agentError ? `\nAgent error: ${(ep.agentError as { message?: string }).message ?? String(ep.agentError)}` : '';
  const tb = error.traceback ? `\n${error.traceback.split('\n').slice(-TRACEBACK_LINES_IN_DETAILS).join('\n')}` : '';
  return `${head}${agent}${tb}`;
}

export function summarizeEpisode(problemId: string, ep: EpisodeResult): EpisodeSummary {
  const taskType = taskTypeOf(problemId);
  const results = ep.results;
  const steps = typeof results?.steps === 'number' ? results.steps : ep.steps;
  const sessionId = typeof ep.session?.session_id === 'string' ? ep.session.session_id : null;
  const result: Record<string, unknown> = {
    ...(results ?? {}),
    success: successOf(taskType, results),
    reward: rewardOf(taskType, results),
    steps,
    ttx: timeToX(results),
    outcome: ep.outcome,
    task_type: taskType,
    session_id: sessionId,
  };

  const evaluated = results !== null && (ep.outcome === 'submitted' || ep.outcome === 'max_steps_reached' || ep.outcome === 'failed_in_teardown');
  if (evaluated) {
    const details = ep.outcome === 'failed_in_teardown' && ep.error ? `Evaluation completed; teardown failed: ${ep.error.type}: ${ep.error.message}` : null;
    if (details) result.teardown_error = ep.error!.message;
    return { status: 'completed', errorType: null, errorDetails: details, result };
  }
  const error: EpisodeError = ep.error ?? { phase: 'protocol', type: 'NoResults', message: 'AIOpsLab reported no results', traceback: '' };
  return { status: 'failed', errorType: errorCodeFor(ep, error), errorDetails: describe(ep, error), result };
}
