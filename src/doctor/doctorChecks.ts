/**
 * `aiopslab-executor doctor`: everything a real run needs, each missing piece with its fix. The same
 * checks back /ready and the warnings at start. Probes run concurrently, each with a time limit.
 *
 * The doctor only reads: a missing aiopslab/config.yml is reported with the command that creates it,
 * never written into the user's checkout behind their back.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { resolveAiopslabPython } from '../bridge/aiopslabPython.js';
import { listProblemsFromBridge } from '../catalog/problemCatalog.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix: string | null;
  /** `service`: the API/queue cannot work without it; `real-runs`: tasks fail at preflight without it. */
  neededFor: 'service' | 'real-runs';
}

const PROBE_TIMEOUT_MS = 10_000;
const IMPORT_TIMEOUT_MS = 60_000;
const MIN_NODE = [20, 19] as const;
const CLONE_FIX = 'git clone --recurse-submodules https://github.com/microsoft/AIOpsLab && export AIOPSLAB_DIR=$PWD/AIOpsLab';

interface ProbeResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** 'missing' when the program is not on PATH, 'timeout', or null. */
  failure: 'missing' | 'timeout' | null;
}

function probe(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean }) | null;
      const failure = e?.code === 'ENOENT' || e?.code === 'EACCES' ? 'missing' : e?.killed ? 'timeout' : null;
      resolve({ ok: !e, stdout: String(stdout), stderr: String(stderr), failure });
    });
  });
}

function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
}

function failureText(cmd: string, r: ProbeResult): string {
  if (r.failure === 'missing') return cmd.includes('/') ? `${cmd} does not exist or is not executable` : `${cmd} was not found on PATH`;
  if (r.failure === 'timeout') return `${cmd} did not answer within ${PROBE_TIMEOUT_MS / 1000} s`;
  return firstLine(r.stderr) || firstLine(r.stdout) || `${cmd} failed`;
}

/** Flat `key: value` YAML, which is all aiopslab/config.yml holds. */
export function readFlatYaml(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+#.*$/, '');
    const m = /^([A-Za-z_][\w-]*)\s*:\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

function nodeCheck(): DoctorCheck {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const ok = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  return { name: 'node', ok, detail: `Node.js ${process.versions.node}`, fix: ok ? null : `Install Node.js ${MIN_NODE.join('.')} or newer`, neededFor: 'service' };
}

async function pythonCheck(config: Config, env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const python = resolveAiopslabPython(config);
  const fix = 'Point AIOPSLAB_PYTHON at the Python of AIOpsLab\'s environment: cd $AIOPSLAB_DIR && poetry env use python3.11 && poetry install --without clients, then AIOPSLAB_PYTHON=$(poetry env info -p)/bin/python';
  const r = await probe(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'], env);
  if (!r.ok) return { name: 'python', ok: false, detail: `${python}: ${failureText(python, r)}`, fix, neededFor: 'real-runs' };
  const version = r.stdout.trim();
  const ok = /^3\.(11|12)\./.test(version);
  return { name: 'python', ok, detail: `${python} is Python ${version}${ok ? '' : ' (AIOpsLab needs 3.11 or 3.12)'}`, fix: ok ? null : fix, neededFor: 'real-runs' };
}

function checkoutChecks(config: Config): DoctorCheck[] {
  const dir = config.aiopslabDir;
  if (!dir) {
    return [{ name: 'aiopslab_dir', ok: false, detail: 'AIOPSLAB_DIR is not set', fix: CLONE_FIX, neededFor: 'real-runs' }];
  }
  const checks: DoctorCheck[] = [];
  const hasPackage = existsSync(path.join(dir, 'aiopslab', 'orchestrator'));
  checks.push({ name: 'aiopslab_dir', ok: hasPackage, detail: hasPackage ? `AIOpsLab checkout at ${dir}` : `${dir} holds no aiopslab/orchestrator package`, fix: hasPackage ? null : CLONE_FIX, neededFor: 'real-runs' });
  if (!hasPackage) return checks;

  const apps = path.join(dir, 'aiopslab-applications');
  let appsOk = false;
  try {
    appsOk = readdirSync(apps).length > 0;
  } catch {
    appsOk = false;
  }
  checks.push({
    name: 'aiopslab_applications',
    ok: appsOk,
    detail: appsOk ? 'aiopslab-applications submodule present' : `${apps} is missing or empty (manifests, charts and workload scripts live there)`,
    fix: appsOk ? null : `cd ${dir} && git submodule update --init --recursive`,
    neededFor: 'real-runs',
  });

  checks.push(configYmlCheck(config, dir));
  return checks;
}

/** INTERFACE §10.3: config.yml must exist with k8s_host: kind, data_dir set, no LLM judge, no session printing. */
function configYmlCheck(config: Config, dir: string): DoctorCheck {
  const file = path.join(dir, 'aiopslab', 'config.yml');
  const createFix = `cd ${dir} && cp aiopslab/config.yml.example aiopslab/config.yml, then set k8s_host: kind, data_dir: data, qualitative_eval: false, print_session: false`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { name: 'aiopslab_config', ok: false, detail: `${file} does not exist (AIOpsLab cannot be imported without it)`, fix: createFix, neededFor: 'real-runs' };
  }
  const values = readFlatYaml(text);
  const problems: string[] = [];
  const fixes: string[] = [];
  if (config.workerBackend === 'kind' && values.k8s_host !== 'kind') {
    problems.push(`k8s_host is ${JSON.stringify(values.k8s_host ?? null)}, Kind workers need "kind" (agent commands must run in the worker's cluster node)`);
    fixes.push('k8s_host: kind');
  }
  if (!values.data_dir || values.data_dir === 'null') {
    problems.push('data_dir is not set (import fails)');
    fixes.push('data_dir: data');
  }
  if (/^(true|yes|on)$/i.test(values.qualitative_eval ?? '')) {
    problems.push('qualitative_eval is on: the LLM judge needs OPENAI_KEY, which the bridge never receives');
    fixes.push('qualitative_eval: false');
  }
  if (/^(true|yes|on)$/i.test(values.print_session ?? '')) {
    problems.push('print_session is on: every turn is printed again into the task logs');
    fixes.push('print_session: false');
  }
  return {
    name: 'aiopslab_config',
    ok: problems.length === 0,
    detail: problems.length ? `${file}: ${problems.join('; ')}` : `${file}: k8s_host ${values.k8s_host}, data_dir ${values.data_dir}`,
    fix: problems.length ? `Edit ${file}: ${fixes.join(', ')}` : null,
    neededFor: 'real-runs',
  };
}

async function importCheck(config: Config, env: NodeJS.ProcessEnv, ready: boolean): Promise<DoctorCheck> {
  if (!ready || !config.aiopslabDir) {
    return { name: 'aiopslab_import', ok: false, detail: 'not checked: needs a working Python, AIOPSLAB_DIR and aiopslab/config.yml (see above)', fix: 'Fix the checks above', neededFor: 'real-runs' };
  }
  try {
    const problems = await listProblemsFromBridge({ python: resolveAiopslabPython(config), aiopslabDir: config.aiopslabDir, env, timeoutMs: IMPORT_TIMEOUT_MS });
    const docker = problems.filter((p) => p.deployment === 'docker').length;
    return { name: 'aiopslab_import', ok: problems.length > 0, detail: `AIOpsLab imports; its registry lists ${problems.length} problems (${docker} Docker-deployed)`, fix: problems.length > 0 ? null : 'The registry is empty: check the checkout', neededFor: 'real-runs' };
  } catch (e) {
    return {
      name: 'aiopslab_import',
      ok: false,
      detail: `importing AIOpsLab failed: ${(e as Error).message.split('\n').slice(0, 4).join(' | ')}`,
      fix: `cd ${config.aiopslabDir} && poetry install --without clients (in the environment of AIOPSLAB_PYTHON)`,
      neededFor: 'real-runs',
    };
  }
}

async function toolCheck(name: string, args: string[], env: NodeJS.ProcessEnv, fix: string, describe: (r: ProbeResult) => string): Promise<DoctorCheck> {
  const r = await probe(name, args, env);
  return { name, ok: r.ok, detail: r.ok ? describe(r) : failureText(name, r), fix: r.ok ? null : fix, neededFor: 'real-runs' };
}

function kindConfigCheck(config: Config): DoctorCheck | null {
  if (config.workerBackend !== 'kind') return null;
  const arch = process.arch === 'arm64' ? 'arm' : 'x86';
  const file = config.kindConfig ?? (config.aiopslabDir ? path.join(config.aiopslabDir, 'kind', `kind-config-${arch}.yaml`) : null);
  const ok = file !== null && existsSync(file);
  return {
    name: 'kind_config',
    ok,
    detail: ok ? `Kind cluster config ${file}` : `no Kind cluster config${file ? ` at ${file}` : ''}`,
    fix: ok ? null : 'Set KIND_CONFIG, or AIOPSLAB_DIR to a checkout that has kind/kind-config-*.yaml',
    neededFor: 'real-runs',
  };
}

function existingClusterCheck(config: Config): DoctorCheck | null {
  if (config.workerBackend !== 'existing') return null;
  const ok = Boolean(config.existingKubeconfig && existsSync(config.existingKubeconfig));
  return {
    name: 'existing_kubeconfig',
    ok,
    detail: ok ? `kubeconfig ${config.existingKubeconfig}${config.existingContext ? `, context ${config.existingContext}` : ''}` : `EXISTING_KUBECONFIG ${config.existingKubeconfig ? `(${config.existingKubeconfig}) does not exist` : 'is not set'}`,
    fix: ok ? null : 'Set EXISTING_KUBECONFIG (and EXISTING_CONTEXT) for WORKER_BACKEND=existing',
    neededFor: 'real-runs',
  };
}

/** Says which variable is set, never its value. */
function llmKeyCheck(config: Config): DoctorCheck {
  const set = [
    config.openrouterApiKey ? 'OPENROUTER_API_KEY' : null,
    config.openaiApiKey ? 'OPENAI_API_KEY' : null,
    config.compatibleBaseUrl ? 'OPENAI_COMPATIBLE_BASE_URL' : null,
  ].filter((s): s is string => s !== null);
  return {
    name: 'llm_key',
    ok: set.length > 0,
    detail: set.length ? `${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} set` : 'no LLM provider is configured',
    fix: set.length ? null : 'export OPENROUTER_API_KEY=... (or OPENAI_API_KEY, or OPENAI_COMPATIBLE_BASE_URL for a local server)',
    neededFor: 'real-runs',
  };
}

export async function runDoctorChecks(config: Config, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<DoctorCheck[]> {
  const env = opts.env ?? process.env;
  const checkout = checkoutChecks(config);
  const python = pythonCheck(config, env);
  const needsKind = config.workerBackend === 'kind';
  const tools = Promise.all([
    needsKind
      ? toolCheck('kind', ['version'], env, 'Install kind v0.27+: https://kind.sigs.k8s.io/docs/user/quick-start/#installation', (r) => firstLine(r.stdout))
      : Promise.resolve<DoctorCheck>({ name: 'kind', ok: true, detail: 'not needed for WORKER_BACKEND=existing', fix: null, neededFor: 'real-runs' }),
    toolCheck('kubectl', ['version', '--client'], env, 'Install kubectl 1.32: https://kubernetes.io/docs/tasks/tools/', (r) => firstLine(r.stdout)),
    toolCheck('helm', ['version', '--short'], env, 'Install Helm 3: https://helm.sh/docs/intro/install/', (r) => `helm ${firstLine(r.stdout)}`),
    toolCheck('docker', ['info', '--format', '{{.ServerVersion}}'], env, 'Install Docker and start its daemon (the docker CLI must reach it: `docker info`)', (r) => `Docker Engine ${firstLine(r.stdout)} reachable`),
  ]);
  const pythonResult = await python;
  const configOk = checkout.length === 3 && checkout.every((c) => c.name === 'aiopslab_applications' || c.ok);
  const [importResult, toolResults] = await Promise.all([importCheck(config, env, pythonResult.ok && configOk), tools]);
  return [
    nodeCheck(),
    pythonResult,
    ...checkout,
    importResult,
    ...toolResults,
    ...[kindConfigCheck(config), existingClusterCheck(config)].filter((c): c is DoctorCheck => c !== null),
    llmKeyCheck(config),
  ];
}

/** Human-readable report for the CLI. */
export function formatDoctorReport(checks: readonly DoctorCheck[]): string {
  const lines = checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(22)} ${c.detail}${c.ok || !c.fix ? '' : `\n     fix: ${c.fix}`}`);
  const failing = checks.filter((c) => !c.ok);
  const service = failing.filter((c) => c.neededFor === 'service').length;
  lines.push(
    failing.length === 0
      ? 'Everything a real run needs is in place.'
      : `${failing.length} check(s) failed${service ? `, ${service} of them needed by the service itself` : '; the service runs, but real tasks fail at preflight until they are fixed'}.`,
  );
  return lines.join('\n');
}
