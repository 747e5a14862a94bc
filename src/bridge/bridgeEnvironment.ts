/**
 * The environment of a bridge process. It starts from the worker's environment minus every secret
 * (LLM keys, the database URL, API/worker tokens, anything named like a key, token, secret or
 * password), because AIOpsLab runs agent-chosen shell commands and, with host-shell expansion on,
 * `$VARIABLE` in those commands is expanded from this environment.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

/** Kept although the patterns below match them. */
const NOT_SECRET = new Set(['TIKTOKEN_CACHE_DIR']);
/** Variables dropped by name, beyond the patterns below. */
const SECRET_NAMES = new Set(['DATABASE_URL', 'API_TOKEN', 'WORKER_TOKEN', 'OPENAI_KEY']);
const SECRET_PATTERNS = [
  /TOKEN/i,
  /SECRET/i,
  /PASSWORD|PASSWD|PASSPHRASE/i,
  /CREDENTIAL/i,
  /(^|_)(API_?KEY|KEY|KEYS|PRIVATE_KEY)(_|$)/i,
  /DATABASE_URL/i,
  /^PG[A-Z]/, // libpq's PGPASSWORD, PGHOST, … belong to the executor's database
];
/** LLM provider settings are the worker's business, never AIOpsLab's. */
const LLM_PREFIXES = ['OPENROUTER_', 'OPENAI_', 'ANTHROPIC_', 'AZURE_OPENAI_', 'GROQ_', 'DEEPSEEK_', 'DASHSCOPE_'];

export function isSecretVariable(name: string): boolean {
  if (NOT_SECRET.has(name)) return false;
  return SECRET_NAMES.has(name) || SECRET_PATTERNS.some((p) => p.test(name)) || LLM_PREFIXES.some((p) => name.startsWith(p));
}

/** A copy of `base` without secrets: by name, and any variable whose value contains a known secret value. */
export function scrubEnvironment(base: NodeJS.ProcessEnv, secretValues: readonly string[] = []): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  const values = secretValues.filter((s) => s.length >= 6);
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || isSecretVariable(name)) continue;
    if (values.some((s) => value.includes(s))) continue;
    out[name] = value;
  }
  return out;
}

/** AIOpsLab derives the kube context `kind-$AIOPSLAB_CLUSTER`, so the variable is the context minus `kind-`. */
export function aiopslabClusterName(cluster: { name: string; context: string }): string {
  return cluster.context.startsWith('kind-') ? cluster.context.slice('kind-'.length) : cluster.name;
}

export interface BridgeEnvironmentOptions {
  cluster: { name: string; context: string; kubeconfig: string; home: string };
  tmpDir: string;
  secretValues?: readonly string[];
}

export function bridgeEnvironment(base: NodeJS.ProcessEnv, opts: BridgeEnvironmentOptions): NodeJS.ProcessEnv {
  const env = scrubEnvironment(base, opts.secretValues);
  // The private HOME hides the user's ~/.pyenv and ~/.docker; keep pyenv shims and docker contexts working.
  const userHome = base.HOME;
  if (userHome && userHome !== opts.cluster.home) {
    if (!env.PYENV_ROOT && existsSync(path.join(userHome, '.pyenv'))) env.PYENV_ROOT = path.join(userHome, '.pyenv');
    if (!env.DOCKER_CONFIG && existsSync(path.join(userHome, '.docker'))) env.DOCKER_CONFIG = path.join(userHome, '.docker');
  }
  env.AIOPSLAB_CLUSTER = aiopslabClusterName(opts.cluster);
  env.KUBECONFIG = opts.cluster.kubeconfig;
  env.HOME = opts.cluster.home;
  env.TMPDIR = opts.tmpDir;
  env.PYTHONUNBUFFERED = '1';
  env.PYTHONIOENCODING = 'utf-8';
  // wandb.log without wandb.init fails after the results are written (INTERFACE §5.3).
  env.USE_WANDB = 'false';
  return env;
}
