/**
 * The one error type of the service. Every failure that reaches a user — an HTTP response or a
 * task's `error_type` — carries one of these stable codes, so clients can branch on the code and
 * never on message text.
 */

export interface ErrorSpec {
  /** HTTP status when the error answers a request. */
  status: number;
  /** What the code means, for the docs and the OpenAPI description. */
  description: string;
}

/** The catalogue. Codes are stable: add new ones, never rename. */
export const ERROR_CATALOGUE = {
  // Request problems (4xx)
  invalid_json: { status: 400, description: 'The request body is not valid JSON.' },
  validation_failed: { status: 422, description: 'A field is missing, has the wrong type or is out of range; `details` names each field.' },
  unknown_field: { status: 422, description: 'The body contains a field the endpoint does not accept; `details` names it.' },
  unknown_problem: { status: 422, description: 'The problem id is not in the AIOpsLab catalog; `details.closest` lists near matches.' },
  invalid_model: { status: 422, description: 'The model cannot be resolved to a provider model id; `details.closest` lists near matches.' },
  unauthorized: { status: 401, description: 'A bearer token is required and was missing or wrong.' },
  forbidden: { status: 403, description: 'The token is valid but not for this endpoint.' },
  not_found: { status: 404, description: 'No route matches the path.' },
  task_not_found: { status: 404, description: 'No task has this id.' },
  worker_not_found: { status: 404, description: 'No worker has this id.' },
  conversation_not_found: { status: 404, description: 'No conversation has this id.' },
  experiment_not_found: { status: 404, description: 'No experiment has this id.' },
  method_not_allowed: { status: 405, description: 'The path exists but not with this method.' },
  task_terminal: { status: 409, description: 'The task already ended; it cannot change state any more.' },
  task_not_held: { status: 409, description: 'The worker does not hold this task (it was requeued, cancelled, or claimed by another worker).' },
  worker_busy: { status: 409, description: 'The worker already holds a task.' },
  idempotency_conflict: { status: 409, description: 'The Idempotency-Key was used before with a different request body.' },
  experiment_conflict: { status: 409, description: 'An experiment of this name (or id) exists with a different definition; `details` names the fields that differ.' },
  payload_too_large: { status: 413, description: 'The request body exceeds the documented limit.' },
  uri_too_long: { status: 414, description: 'A path segment (an id) is longer than any id can be.' },
  invalid_url: { status: 400, description: 'The request path is malformed (e.g. broken percent-encoding).' },
  unsupported_media_type: { status: 415, description: 'The request body must be application/json.' },
  rate_limited: { status: 429, description: 'Too many requests; retry after the time in Retry-After.' },
  workers_disabled: { status: 400, description: 'Internal workers are not enabled in this process.' },

  // Server problems (5xx)
  internal: { status: 500, description: 'An unexpected server fault; the request id identifies it in the logs.' },
  database_unavailable: { status: 503, description: 'The database cannot be reached; retry later.' },

  // Task outcomes (stored as tasks.error_type; status is what an API call failing this way would return)
  worker_failed: { status: 500, description: 'A worker on another host reported the task as failed (POST …/fail without a more specific error_type).' },
  worker_lost: { status: 500, description: 'The worker holding the task stopped heartbeating before the task finished.' },
  timeout: { status: 504, description: 'The task ran past its timeout_minutes and was stopped.' },
  cancelled: { status: 409, description: 'The task was cancelled.' },
  missing_prerequisite: { status: 503, description: 'Something a real run needs is not installed or configured on the worker (see `doctor`).' },
  unsupported_problem: { status: 422, description: 'The problem cannot run on this worker backend (e.g. a Docker-deployed problem on a Kind worker).' },
  missing_api_key: { status: 503, description: 'No API key is configured for the provider of the requested model.' },
  cluster_failed: { status: 502, description: 'The worker could not create or reach its Kubernetes cluster.' },
  bridge_failed: { status: 502, description: 'The AIOpsLab bridge process failed to start or broke its protocol.' },
  aiopslab_init_failed: { status: 502, description: 'AIOpsLab raised while deploying the app or injecting the fault.' },
  aiopslab_loop_failed: { status: 502, description: 'AIOpsLab raised during the agent loop.' },
  aiopslab_eval_failed: { status: 502, description: 'AIOpsLab raised while evaluating the submission.' },
  llm_auth: { status: 502, description: 'The LLM provider rejected the API key (401/403).' },
  llm_credits: { status: 502, description: 'The LLM provider refused for lack of credits (402).' },
  llm_bad_request: { status: 502, description: 'The LLM provider rejected the request (400), e.g. context too long.' },
  llm_model_not_found: { status: 502, description: 'The LLM provider does not know the model.' },
  llm_unavailable: { status: 502, description: 'The LLM provider kept failing (429/5xx/timeouts) after all retries.' },
  budget_exceeded: { status: 402, description: 'The task reached its max_total_tokens or max_cost_usd limit.' },
  webhook_target_refused: { status: 422, description: 'The callback_url points at an address that is not allowed.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, details?: unknown, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.details = details ?? null;
    this.headers = headers;
  }

  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}

export function isErrorCode(s: string): s is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CATALOGUE, s);
}
