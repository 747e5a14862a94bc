/** The task row and its API representation (field names kept from the earlier executor). */

export const TASK_STATUSES = ['pending', 'running', 'completed', 'failed', 'timeout', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'timeout', 'cancelled'];

export interface AgentConfig {
  model: string;
  temperature?: number;
  max_tokens?: number;
  top_p?: number;
  use_openrouter?: boolean;
  normalize_reply?: boolean;
  prompt_template?: 'DOCS_SHELL_ONLY' | 'DOCS';
}

/** Normalised task parameters, as stored in tasks.parameters. */
export interface TaskParameters {
  max_steps: number;
  timeout_minutes: number;
  priority: number;
  agent_config: AgentConfig;
  backend_type?: string;
  metadata?: Record<string, unknown>;
  callback_url?: string;
  max_total_tokens?: number;
  max_cost_usd?: number;
}

export interface TaskRow {
  id: string;
  problem_id: string;
  status: TaskStatus;
  priority: number;
  parameters: TaskParameters;
  backend_type: string | null;
  timeout_minutes: number;
  max_steps: number;
  worker_id: string | null;
  attempt: number;
  max_attempts: number;
  lease_expires_at: Date | null;
  result: Record<string, unknown> | null;
  error_type: string | null;
  error_details: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  experiment_id: string | null;
  callback_url: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
}

export function taskToJson(row: TaskRow): Record<string, unknown> {
  return {
    id: row.id,
    problem_id: row.problem_id,
    status: row.status,
    priority: row.priority,
    parameters: row.parameters,
    backend_type: row.backend_type,
    worker_id: row.worker_id,
    attempt: row.attempt,
    max_attempts: row.max_attempts,
    result: row.result,
    error_type: row.error_type,
    error_details: row.error_details,
    experiment_id: row.experiment_id,
    idempotency_key: row.idempotency_key,
    lease_expires_at: row.lease_expires_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
    started_at: row.started_at,
    completed_at: row.completed_at,
  };
}
