/**
 * The API shapes the dashboard reads. Fields the server may omit (older rows, other engineers'
 * endpoints still settling) are optional, and every page reads them defensively.
 */

export const TASK_STATUSES = ['pending', 'running', 'completed', 'failed', 'timeout', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const ACTIVE_STATUSES: readonly TaskStatus[] = ['pending', 'running'];

export interface AgentConfig {
  model?: string;
  temperature?: number;
  max_tokens?: number;
  top_p?: number;
  [k: string]: unknown;
}

export interface TaskParameters {
  max_steps?: number;
  timeout_minutes?: number;
  priority?: number;
  agent_config?: AgentConfig;
  max_total_tokens?: number;
  max_cost_usd?: number;
  [k: string]: unknown;
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  cached_tokens?: number;
  reasoning_tokens?: number;
  total_tokens?: number;
  cost_usd?: number;
  llm_calls?: number;
}

export interface TaskResult {
  success?: boolean | null;
  reward?: number | null;
  steps?: number;
  /** Time to detect/localize/analyze/mitigate, named after AIOpsLab's key (TTD…). */
  ttx?: { name?: string; seconds?: number } | number | null;
  outcome?: string;
  usage?: Usage;
  conversation_id?: string;
  model?: string;
  results?: Record<string, unknown> | null;
  phase_durations_ms?: Record<string, number>;
  [k: string]: unknown;
}

export interface Task {
  id: string;
  problem_id: string;
  status: TaskStatus;
  priority: number;
  parameters: TaskParameters;
  worker_id: string | null;
  attempt: number;
  max_attempts?: number;
  result: TaskResult | null;
  error_type: string | null;
  error_details: string | null;
  created_at: string;
  updated_at?: string;
  started_at: string | null;
  completed_at: string | null;
}

export interface TaskPage { tasks: Task[]; total: number; page: number; page_size: number }

export interface LogEntry {
  id: number;
  timestamp: string;
  level: 'debug' | 'info' | 'warning' | 'error' | 'critical';
  message: string;
  context: { phase?: string; duration_ms?: number; source?: string; stream?: string; step?: number; [k: string]: unknown };
}

export interface LogPage { logs: LogEntry[]; total: number }

export interface QueueStats {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  timeout: number;
  cancelled: number;
  total: number;
  success_rate: number;
  average_wait_time: number | null;
  average_execution_time: number | null;
}

export interface Worker {
  id: string;
  backend_type: string;
  status: 'idle' | 'busy' | 'offline';
  last_heartbeat: string;
  heartbeat_age_seconds: number;
  current_task_id: string | null;
  metadata: { kind_cluster?: string; host?: string; version?: string; [k: string]: unknown };
  cluster_dirty?: boolean;
  tasks_completed: number;
  tasks_failed: number;
}

export interface InternalWorkerStatus { enabled: boolean; running: boolean; num_workers: number; message?: string }

export interface ConversationSummary {
  id: string;
  task_id: string;
  attempt?: number;
  model_name: string;
  total_messages: number;
  total_tokens: number;
  cost_usd?: number;
  llm_calls?: number;
  success: boolean | null;
  started_at: string;
  ended_at: string | null;
  status?: string | null;
}

export interface EnvStep {
  step?: number;
  api?: string | null;
  args?: unknown[] | null;
  kwargs?: Record<string, unknown> | null;
  response?: string;
  response_truncated?: boolean;
  submitted?: boolean;
  duration_ms?: number;
}

export interface MessageMetadata {
  type?: string;
  usage?: Usage;
  cost_usd?: number;
  latency_ms?: number;
  served_model?: string;
  finish_reason?: string | null;
  env_step?: EnvStep;
  [k: string]: unknown;
}

export interface Message {
  seq?: number;
  timestamp: string;
  role: 'system' | 'user' | 'assistant' | 'function' | 'tool';
  content: string;
  step?: number | null;
  metadata?: MessageMetadata;
}

export interface Conversation extends ConversationSummary {
  messages: Message[];
  usage?: Usage;
  total_cost?: { input_tokens?: number; output_tokens?: number; total_cost?: number };
}

export interface Problem { id: string; application: string; task_type: string; deployment: string; source?: string }

export interface CatalogModel {
  id: string;
  name?: string | null;
  context_length?: number | null;
  /** USD per token, as the catalog gives it (strings or numbers). */
  pricing?: { prompt?: number | string | null; completion?: number | string | null };
}

export interface ModelCatalog {
  models: CatalogModel[];
  total: number;
  fetched_at: string | null;
  age_seconds: number | null;
  stale?: boolean;
  aliases?: Record<string, string>;
  default_model?: string;
}

export interface SpendRow {
  model: string;
  conversations: number;
  llm_calls: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  cost_usd: number;
}

export interface SuccessRow { key: string; ended: number; succeeded: number; success_rate: number | null; avg_reward: number | null }

export interface Spend {
  days: number;
  tz: string;
  since: string;
  today: string;
  daily: Array<SpendRow & { day: string }>;
  today_by_model: SpendRow[];
  totals_by_model: SpendRow[];
  success_by_task_type: SuccessRow[];
  success_by_model: SuccessRow[];
}

/** One field problem from the error envelope. */
export interface FieldIssue { field: string; reason: string; closest?: string[] }

/* Experiments: problems × models × repeats (GET /api/v1/experiments…). */

export type ExperimentCountKey = TaskStatus | 'not_created';
export type ExperimentCounts = Record<ExperimentCountKey, number>;
/** Derived from the experiment's state and its tasks' statuses. */
export type ExperimentStatus = 'queued' | 'running' | 'spend_cap_reached' | 'completed' | 'incomplete' | 'cancelled';

export interface ExperimentModelProgress {
  model: string;
  combinations: number;
  counts: ExperimentCounts;
  spend_usd: number;
  max_running: number | null;
  cost_per_task_usd: number | null;
  estimate_basis: 'observed' | 'prices' | 'unknown';
  estimated_remaining_cost_usd: number | null;
}

export interface ExperimentProgress {
  status: ExperimentStatus;
  combinations: number;
  tasks_total: number;
  counts: ExperimentCounts;
  finished: number;
  percent_finished: number;
  spend_usd: number;
  spend_cap_usd: number | null;
  spend_cap_reached: boolean;
  estimated_remaining_cost_usd: number | null;
  by_model: ExperimentModelProgress[];
}

export interface Experiment {
  id: string;
  name: string;
  description: string | null;
  status: 'active' | 'cancelled';
  problem_selectors: { problem_ids: string[]; patterns: string[]; applications: string[]; task_types: string[] };
  problem_ids: string[];
  models: string[];
  repeats: number;
  combinations: number;
  parameters: TaskParameters;
  limits: { spend_cap_usd: number | null; max_running_per_model: number | null; model_max_running: Record<string, number> };
  created_at: string;
  updated_at: string;
  progress: ExperimentProgress;
  /** Present on the answer to a create, resume or cancel. */
  created?: boolean;
  tasks_created?: number;
  cancelled_tasks?: number;
}

export interface ExperimentPage { experiments: Experiment[]; total: number; page: number; page_size: number }

export interface ResultStats {
  tasks: number;
  evaluated: number;
  errored: number;
  successes: number;
  success_rate: number | null;
  success_ci_low: number | null;
  success_ci_high: number | null;
  ttx_name: string | null;
  ttx_mean_s: number | null;
  ttx_median_s: number | null;
  steps_mean: number | null;
  steps_median: number | null;
  input_tokens_mean: number | null;
  output_tokens_mean: number | null;
  input_tokens_total: number;
  output_tokens_total: number;
  cost_per_task_usd: number | null;
  cost_total_usd: number;
}

export interface ExperimentResults {
  experiment: { id: string; name: string; models: string[]; problem_ids: string[]; repeats: number };
  confidence_level: number;
  definitions: Record<string, string>;
  summary: Array<{ model: string; task_type: string } & ResultStats>;
  by_model: Array<{ model: string } & ResultStats>;
  detail: Array<{ problem_id: string; task_type: string; model: string } & ResultStats>;
}
