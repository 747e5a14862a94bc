/**
 * All configuration comes from the environment, read here and nowhere else, so the README's
 * configuration table and the code cannot drift apart (`CONFIG_VARIABLES` is that table).
 */
import os from 'node:os';
import path from 'node:path';

type Kind = 'string' | 'int' | 'number' | 'bool' | 'list';

interface VariableSpec {
  name: string;
  kind: Kind;
  default: string | number | boolean | null;
  description: string;
  secret?: boolean;
}

export const CONFIG_VARIABLES = [
  { name: 'DATABASE_URL', kind: 'string', default: null, secret: true, description: 'PostgreSQL URL. Unset: an embedded PostgreSQL is started with its data in EMBEDDED_PG_DIR.' },
  { name: 'EMBEDDED_PG_DIR', kind: 'string', default: '.data/postgres', description: 'Data folder of the embedded PostgreSQL (used only without DATABASE_URL).' },
  { name: 'EMBEDDED_PG_PORT', kind: 'int', default: 54329, description: 'Port of the embedded PostgreSQL (127.0.0.1 only).' },
  { name: 'HOST', kind: 'string', default: '127.0.0.1', description: 'Address the API listens on. A non-loopback address requires API_TOKEN (or --insecure).' },
  { name: 'PORT', kind: 'int', default: 8000, description: 'API port.' },
  { name: 'NUM_INTERNAL_WORKERS', kind: 'int', default: 3, description: 'Workers started by `start` inside the API process.' },
  { name: 'AUTO_START_WORKERS', kind: 'bool', default: true, description: 'Whether `start` starts the internal workers.' },
  { name: 'WORKER_BACKEND', kind: 'string', default: 'kind', description: 'Backend of the workers this process runs: `kind` (a Kind cluster per worker) or `existing` (EXISTING_KUBECONFIG).' },
  { name: 'WORKER_ID_PREFIX', kind: 'string', default: null, description: 'Prefix of worker ids for `worker` processes on other hosts (default: `worker-<hostname>`), so ids stay unique across hosts.' },
  { name: 'WORKER_POLL_INTERVAL', kind: 'number', default: 5, description: 'Seconds between fallback polls for work (workers normally wake on LISTEN/NOTIFY).' },
  { name: 'WORKER_HEARTBEAT_INTERVAL', kind: 'number', default: 10, description: 'Seconds between worker heartbeats (each renews the lease of the task it holds).' },
  { name: 'LEASE_SECONDS', kind: 'number', default: 60, description: 'How long a claimed task stays leased without a heartbeat before it is failed or requeued (worker_lost).' },
  { name: 'WORKER_OFFLINE_AFTER', kind: 'number', default: 60, description: 'Seconds without a heartbeat after which a worker is shown offline.' },
  { name: 'TIMEOUT_CHECK_INTERVAL', kind: 'number', default: 5, description: 'Seconds between runs of the maintenance loop (leases, timeouts, offline workers).' },
  { name: 'MAX_ATTEMPTS', kind: 'int', default: 2, description: 'How many times a task whose worker was lost is tried in total.' },
  { name: 'STOP_GRACE_SECONDS', kind: 'number', default: 8, description: 'After a cancel or timeout, how long the bridge gets to stop cooperatively before it is signalled.' },
  { name: 'KIND_CONFIG', kind: 'string', default: null, description: 'Kind cluster config file (default: kind/kind-config-x86.yaml or -arm.yaml in AIOPSLAB_DIR).' },
  { name: 'KIND_NODE_IMAGE', kind: 'string', default: null, description: 'Node image for `kind create cluster --image` (default: the one in the kind config).' },
  { name: 'KIND_DELETE_ON_SHUTDOWN', kind: 'bool', default: false, description: 'Delete each worker\'s Kind cluster when the worker shuts down.' },
  { name: 'EXISTING_KUBECONFIG', kind: 'string', default: null, description: 'Kubeconfig for the `existing` backend.' },
  { name: 'EXISTING_CONTEXT', kind: 'string', default: null, description: 'Context in EXISTING_KUBECONFIG for the `existing` backend (default: its current context).' },
  { name: 'EXECUTOR_STATE_DIR', kind: 'string', default: '.data', description: 'Where per-worker kubeconfigs/homes and per-task working folders are kept.' },
  { name: 'AIOPSLAB_DIR', kind: 'string', default: null, description: 'Root of the AIOpsLab checkout (the folder holding aiopslab/ and aiopslab-applications/).' },
  { name: 'AIOPSLAB_PYTHON', kind: 'string', default: null, description: 'Python of the AIOpsLab environment (default: AIOPSLAB_DIR/.venv/bin/python if present, else python3).' },
  { name: 'AIOPSLAB_HOST_SHELL_EXPANSION', kind: 'bool', default: false, description: 'Let the host shell expand $VAR/$(…) in agent commands as upstream AIOpsLab does (off: commands reach the cluster node verbatim).' },
  { name: 'BRIDGE_INIT_TIMEOUT', kind: 'number', default: 1200, description: 'Seconds allowed for AIOpsLab init_problem (deploy, inject, workload).' },
  { name: 'BRIDGE_STEP_TIMEOUT', kind: 'number', default: 600, description: 'Seconds allowed for one environment step (action execution).' },
  { name: 'BRIDGE_TEARDOWN_TIMEOUT', kind: 'number', default: 900, description: 'Seconds allowed for evaluation and teardown after the last step.' },
  { name: 'OPENROUTER_API_KEY', kind: 'string', default: null, secret: true, description: 'OpenRouter key (default provider).' },
  { name: 'OPENROUTER_BASE_URL', kind: 'string', default: 'https://openrouter.ai/api/v1', description: 'OpenRouter API base URL.' },
  { name: 'OPENROUTER_HTTP_REFERER', kind: 'string', default: null, description: 'OpenRouter attribution header HTTP-Referer.' },
  { name: 'OPENROUTER_APP_TITLE', kind: 'string', default: 'AIOpsLab Task Executor', description: 'OpenRouter attribution header X-Title.' },
  { name: 'OPENAI_API_KEY', kind: 'string', default: null, secret: true, description: 'OpenAI key, used for models given as `openai:<model>` or when OpenRouter has no key.' },
  { name: 'OPENAI_BASE_URL', kind: 'string', default: 'https://api.openai.com/v1', description: 'OpenAI API base URL.' },
  { name: 'OPENAI_COMPATIBLE_BASE_URL', kind: 'string', default: null, description: 'Base URL of any OpenAI-compatible server (vLLM, Ollama); models given as `local:<model>`.' },
  { name: 'OPENAI_COMPATIBLE_API_KEY', kind: 'string', default: null, secret: true, description: 'Key for OPENAI_COMPATIBLE_BASE_URL, if it needs one.' },
  { name: 'DEFAULT_AGENT_MODEL', kind: 'string', default: 'openai/gpt-4o-mini', description: 'Model used when a task gives none.' },
  { name: 'LLM_REQUEST_TIMEOUT', kind: 'number', default: 120, description: 'Seconds before one LLM request is abandoned and retried.' },
  { name: 'LLM_MAX_RETRIES', kind: 'int', default: 5, description: 'Retries of one LLM call on 429/5xx/timeouts.' },
  { name: 'LLM_RETRY_BASE_DELAY', kind: 'number', default: 1, description: 'Seconds of the first LLM retry backoff; doubles per retry (capped at 30 s), with jitter. A Retry-After header from the provider takes precedence.' },
  { name: 'MODEL_CATALOG_MAX_AGE', kind: 'number', default: 86400, description: 'Seconds before the cached model catalog is refreshed.' },
  { name: 'API_TOKEN', kind: 'list', default: null, secret: true, description: 'Comma-separated bearer tokens; when set, the API and dashboard require one.' },
  { name: 'WORKER_TOKEN', kind: 'list', default: null, secret: true, description: 'Comma-separated tokens for the worker-host endpoints (register, heartbeat, claim, complete, fail).' },
  { name: 'BODY_LIMIT_BYTES', kind: 'int', default: 1048576, description: 'Largest accepted request body; larger ones get 413.' },
  { name: 'SUBMIT_RATE_LIMIT', kind: 'int', default: 120, description: 'Task submissions (POST /api/v1/tasks) allowed per minute per client (its token, else its address), with bursts up to the same number; beyond it 429 `rate_limited` with Retry-After. 0 turns the limit off.' },
  { name: 'WEBHOOK_SECRET', kind: 'string', default: null, secret: true, description: 'Key of the HMAC-SHA256 signature of webhook deliveries (header X-AIOpsLab-Signature: sha256=<hex> over `<X-AIOpsLab-Timestamp>.<raw body>`). Unset: deliveries are sent unsigned.' },
  { name: 'WEBHOOK_ALLOW_PRIVATE', kind: 'bool', default: false, description: 'Allow callback_url targets on loopback, private (RFC 1918, fc00::/7) and carrier-grade NAT addresses. Link-local (cloud metadata) needs WEBHOOK_ALLOWED_HOSTS.' },
  { name: 'WEBHOOK_ALLOWED_HOSTS', kind: 'list', default: null, description: 'Comma-separated host names and CIDR ranges (e.g. `hooks.internal,10.1.0.0/16`) allowed as callback_url targets even when they resolve to non-public addresses.' },
  { name: 'WEBHOOK_MAX_ATTEMPTS', kind: 'int', default: 8, description: 'Delivery attempts of one webhook before it is recorded as failed.' },
  { name: 'WEBHOOK_RETRY_BASE_DELAY', kind: 'number', default: 10, description: 'Seconds before the first webhook retry; doubles per attempt (capped at one hour). A Retry-After from the receiver is honoured within that cap.' },
  { name: 'WEBHOOK_TIMEOUT', kind: 'number', default: 10, description: 'Seconds one webhook delivery may take (connect + response).' },
  { name: 'WEBHOOK_POLL_INTERVAL', kind: 'number', default: 5, description: 'Seconds between polls for due webhook deliveries (a task ending also wakes the delivery loop at once).' },
  { name: 'ENABLE_DOCS', kind: 'bool', default: true, description: 'Serve OpenAPI JSON at /openapi.json and interactive docs at /docs.' },
  { name: 'ENABLE_METRICS', kind: 'bool', default: true, description: 'Serve Prometheus metrics at /metrics.' },
  { name: 'LOG_LEVEL', kind: 'string', default: 'info', description: 'pino log level (trace, debug, info, warn, error).' },
  { name: 'API_URL', kind: 'string', default: 'http://127.0.0.1:8000', description: 'Where CLI client commands find the API.' },
] as const satisfies readonly VariableSpec[];

type VarName = (typeof CONFIG_VARIABLES)[number]['name'];

export interface Config {
  databaseUrl: string | null;
  embeddedPgDir: string;
  embeddedPgPort: number;
  host: string;
  port: number;
  numInternalWorkers: number;
  autoStartWorkers: boolean;
  workerBackend: 'kind' | 'existing';
  workerIdPrefix: string;
  workerPollInterval: number;
  workerHeartbeatInterval: number;
  leaseSeconds: number;
  workerOfflineAfter: number;
  maintenanceInterval: number;
  maxAttempts: number;
  stopGraceSeconds: number;
  kindConfig: string | null;
  kindNodeImage: string | null;
  kindDeleteOnShutdown: boolean;
  existingKubeconfig: string | null;
  existingContext: string | null;
  stateDir: string;
  aiopslabDir: string | null;
  aiopslabPython: string | null;
  hostShellExpansion: boolean;
  bridgeInitTimeout: number;
  bridgeStepTimeout: number;
  bridgeTeardownTimeout: number;
  openrouterApiKey: string | null;
  openrouterBaseUrl: string;
  openrouterReferer: string | null;
  openrouterTitle: string;
  openaiApiKey: string | null;
  openaiBaseUrl: string;
  compatibleBaseUrl: string | null;
  compatibleApiKey: string | null;
  defaultModel: string;
  llmRequestTimeout: number;
  llmMaxRetries: number;
  llmRetryBaseDelay: number;
  modelCatalogMaxAge: number;
  apiTokens: string[];
  workerTokens: string[];
  bodyLimitBytes: number;
  submitRateLimit: number;
  webhookSecret: string | null;
  webhookAllowPrivate: boolean;
  webhookAllowedHosts: string[];
  webhookMaxAttempts: number;
  webhookRetryBaseDelay: number;
  webhookTimeout: number;
  webhookPollInterval: number;
  enableDocs: boolean;
  enableMetrics: boolean;
  logLevel: string;
  apiUrl: string;
}

export class ConfigError extends Error {}

function raw(env: NodeJS.ProcessEnv, name: VarName): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function spec(name: VarName): VariableSpec {
  return CONFIG_VARIABLES.find((v) => v.name === name)!;
}

function str(env: NodeJS.ProcessEnv, name: VarName): string | null {
  const v = raw(env, name);
  if (v !== undefined) return v;
  const d = spec(name).default;
  return d === null ? null : String(d);
}

function num(env: NodeJS.ProcessEnv, name: VarName, opts: { int?: boolean; min?: number } = {}): number {
  const v = raw(env, name);
  const n = v === undefined ? Number(spec(name).default) : Number(v);
  if (!Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
    throw new ConfigError(`${name} must be ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}, got "${v}"`);
  }
  return n;
}

function bool(env: NodeJS.ProcessEnv, name: VarName): boolean {
  const v = raw(env, name);
  if (v === undefined) return Boolean(spec(name).default);
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(`${name} must be true or false, got "${v}"`);
}

function list(env: NodeJS.ProcessEnv, name: VarName): string[] {
  const v = raw(env, name);
  return v === undefined ? [] : v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const backend = str(env, 'WORKER_BACKEND');
  if (backend !== 'kind' && backend !== 'existing') {
    throw new ConfigError(`WORKER_BACKEND must be "kind" or "existing", got "${backend}"`);
  }
  const hostname = os.hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 20) || 'host';
  const stateDir = path.resolve(str(env, 'EXECUTOR_STATE_DIR')!);
  return {
    databaseUrl: str(env, 'DATABASE_URL'),
    embeddedPgDir: path.resolve(str(env, 'EMBEDDED_PG_DIR')!),
    embeddedPgPort: num(env, 'EMBEDDED_PG_PORT', { int: true, min: 1 }),
    host: str(env, 'HOST')!,
    port: num(env, 'PORT', { int: true, min: 0 }),
    numInternalWorkers: num(env, 'NUM_INTERNAL_WORKERS', { int: true, min: 0 }),
    autoStartWorkers: bool(env, 'AUTO_START_WORKERS'),
    workerBackend: backend,
    workerIdPrefix: str(env, 'WORKER_ID_PREFIX') ?? `worker-${hostname}`,
    workerPollInterval: num(env, 'WORKER_POLL_INTERVAL', { min: 0.05 }),
    workerHeartbeatInterval: num(env, 'WORKER_HEARTBEAT_INTERVAL', { min: 0.05 }),
    leaseSeconds: num(env, 'LEASE_SECONDS', { min: 1 }),
    workerOfflineAfter: num(env, 'WORKER_OFFLINE_AFTER', { min: 1 }),
    maintenanceInterval: num(env, 'TIMEOUT_CHECK_INTERVAL', { min: 0.05 }),
    maxAttempts: num(env, 'MAX_ATTEMPTS', { int: true, min: 1 }),
    stopGraceSeconds: num(env, 'STOP_GRACE_SECONDS', { min: 0 }),
    kindConfig: str(env, 'KIND_CONFIG'),
    kindNodeImage: str(env, 'KIND_NODE_IMAGE'),
    kindDeleteOnShutdown: bool(env, 'KIND_DELETE_ON_SHUTDOWN'),
    existingKubeconfig: str(env, 'EXISTING_KUBECONFIG'),
    existingContext: str(env, 'EXISTING_CONTEXT'),
    stateDir,
    aiopslabDir: str(env, 'AIOPSLAB_DIR') ? path.resolve(str(env, 'AIOPSLAB_DIR')!) : null,
    aiopslabPython: str(env, 'AIOPSLAB_PYTHON'),
    hostShellExpansion: bool(env, 'AIOPSLAB_HOST_SHELL_EXPANSION'),
    bridgeInitTimeout: num(env, 'BRIDGE_INIT_TIMEOUT', { min: 0.1 }),
    bridgeStepTimeout: num(env, 'BRIDGE_STEP_TIMEOUT', { min: 0.1 }),
    bridgeTeardownTimeout: num(env, 'BRIDGE_TEARDOWN_TIMEOUT', { min: 0.1 }),
    openrouterApiKey: str(env, 'OPENROUTER_API_KEY'),
    openrouterBaseUrl: str(env, 'OPENROUTER_BASE_URL')!,
    openrouterReferer: str(env, 'OPENROUTER_HTTP_REFERER'),
    openrouterTitle: str(env, 'OPENROUTER_APP_TITLE')!,
    openaiApiKey: str(env, 'OPENAI_API_KEY'),
    openaiBaseUrl: str(env, 'OPENAI_BASE_URL')!,
    compatibleBaseUrl: str(env, 'OPENAI_COMPATIBLE_BASE_URL'),
    compatibleApiKey: str(env, 'OPENAI_COMPATIBLE_API_KEY'),
    defaultModel: str(env, 'DEFAULT_AGENT_MODEL')!,
    llmRequestTimeout: num(env, 'LLM_REQUEST_TIMEOUT', { min: 0.1 }),
    llmMaxRetries: num(env, 'LLM_MAX_RETRIES', { int: true, min: 0 }),
    llmRetryBaseDelay: num(env, 'LLM_RETRY_BASE_DELAY', { min: 0 }),
    modelCatalogMaxAge: num(env, 'MODEL_CATALOG_MAX_AGE', { min: 0 }),
    apiTokens: list(env, 'API_TOKEN'),
    workerTokens: list(env, 'WORKER_TOKEN'),
    bodyLimitBytes: num(env, 'BODY_LIMIT_BYTES', { int: true, min: 1024 }),
    submitRateLimit: num(env, 'SUBMIT_RATE_LIMIT', { int: true, min: 0 }),
    webhookSecret: str(env, 'WEBHOOK_SECRET'),
    webhookAllowPrivate: bool(env, 'WEBHOOK_ALLOW_PRIVATE'),
    webhookAllowedHosts: list(env, 'WEBHOOK_ALLOWED_HOSTS'),
    webhookMaxAttempts: num(env, 'WEBHOOK_MAX_ATTEMPTS', { int: true, min: 1 }),
    webhookRetryBaseDelay: num(env, 'WEBHOOK_RETRY_BASE_DELAY', { min: 0 }),
    webhookTimeout: num(env, 'WEBHOOK_TIMEOUT', { min: 0.1 }),
    webhookPollInterval: num(env, 'WEBHOOK_POLL_INTERVAL', { min: 0.05 }),
    enableDocs: bool(env, 'ENABLE_DOCS'),
    enableMetrics: bool(env, 'ENABLE_METRICS'),
    logLevel: str(env, 'LOG_LEVEL')!,
    apiUrl: str(env, 'API_URL')!,
  };
}

/** Values of every secret variable, so log redaction and leak scans can look for them. */
export function secretValues(config: Config): string[] {
  return [config.openrouterApiKey, config.openaiApiKey, config.compatibleApiKey, ...config.apiTokens, ...config.workerTokens, config.webhookSecret, config.databaseUrl]
    .filter((s): s is string => typeof s === 'string' && s.length >= 6);
}

/** The README's configuration table, generated from CONFIG_VARIABLES (a test keeps them equal). */
export function configTableMarkdown(): string {
  const rows = CONFIG_VARIABLES.map((v: VariableSpec) => {
    const d = v.default === null ? '—' : `\`${String(v.default)}\``;
    return `| \`${v.name}\` | ${d} | ${v.description.replace(/\|/g, '\\|')}${v.secret ? ' *(secret: never logged or stored)*' : ''} |`;
  });
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows].join('\n');
}
