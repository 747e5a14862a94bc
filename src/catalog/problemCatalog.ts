/**
 * The problem catalog: AIOpsLab's registry as listed by the bridge (ids and deployments), or the 89
 * known ids shipped in problem-ids.txt when no AIOpsLab checkout is configured or listing fails.
 * It lives in the `problems` table so the API, preflight and submissions all read one source.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { PROBLEM_IDS_FILE } from '../packagePaths.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import { resolveAiopslabPython } from '../bridge/aiopslabPython.js';
import { bridgeEnvironment } from '../bridge/bridgeEnvironment.js';
import { BridgeProcess } from '../bridge/bridgeProcess.js';
import { PROTOCOL_VERSION, type BridgeEvent } from '../bridge/protocol.js';
import { homeKubeconfigOf } from '../cluster/workerFiles.js';

export type TaskType = 'detection' | 'localization' | 'analysis' | 'mitigation';
export type Deployment = 'k8s' | 'docker';
export type Backend = 'kind' | 'existing';
export const TASK_TYPES: readonly TaskType[] = ['detection', 'localization', 'analysis', 'mitigation'];
export const APPLICATIONS = ['social_network', 'hotel_reservation', 'astronomy_shop', 'flower'] as const;
export const BACKENDS: readonly Backend[] = ['kind', 'existing'];

export interface ProblemEntry {
  id: string;
  application: string;
  task_type: TaskType;
  deployment: Deployment;
  source: 'aiopslab' | 'builtin';
}

/** Every AIOpsLab id contains exactly one task type (the registry itself filters by substring). */
export function taskTypeOf(problemId: string): TaskType | null {
  const found = TASK_TYPES.filter((t) => problemId.includes(t));
  return found.length === 1 ? found[0]! : null;
}

/** The application, from the id families of INTERFACE.md §6; `unknown` for ids added upstream later. */
export function applicationOf(problemId: string): string {
  if (problemId.startsWith('flower_')) return 'flower';
  if (problemId.includes('astronomy_shop')) return 'astronomy_shop';
  if (/social_net|k8s_target_port|auth_miss_mongodb/.test(problemId)) return 'social_network';
  if (/hotel_res|revoke_auth_mongodb|user_unregistered_mongodb|redeploy_without_PV|wrong_bin_usage|container_kill|misconfig_app/.test(problemId)) return 'hotel_reservation';
  return 'unknown';
}

function entryFor(id: string, deployment: Deployment, source: ProblemEntry['source']): ProblemEntry | null {
  const taskType = taskTypeOf(id);
  return taskType ? { id, application: applicationOf(id), task_type: taskType, deployment, source } : null;
}

/** The 89 ids known when this release was made; the two Flower problems are Docker-deployed. */
export function builtinProblems(): ProblemEntry[] {
  return readFileSync(PROBLEM_IDS_FILE, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((id) => entryFor(id, id.startsWith('flower_') ? 'docker' : 'k8s', 'builtin'))
    .filter((e): e is ProblemEntry => e !== null);
}

/** Why a backend cannot run a problem, or null when it can. */
export function unsupportedReason(entry: ProblemEntry, backend: Backend): string | null {
  if (entry.deployment === 'docker' && backend === 'kind') {
    return `${entry.id} is deployed with Docker Compose on the worker host (not on Kubernetes), which Kind workers do not provide; the agent's shell would run inside the Kind node and could not see those containers.`;
  }
  return null;
}

export function supportedBackends(entry: ProblemEntry): Backend[] {
  return BACKENDS.filter((b) => unsupportedReason(entry, b) === null);
}

// ------------------------------------------------------------------------------ listing

const LISTING_KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- name: kind-aiopslab-catalog
  cluster:
    server: https://127.0.0.1:9
contexts:
- name: kind-aiopslab-catalog
  context:
    cluster: kind-aiopslab-catalog
    user: kind-aiopslab-catalog
current-context: kind-aiopslab-catalog
users:
- name: kind-aiopslab-catalog
  user: {}
`;

/**
 * Lists AIOpsLab's registry through the bridge (ProblemRegistry().get_problem_ids() and
 * get_problem_deployment()). Importing AIOpsLab reads ~/.kube/config but calls no cluster, so the
 * listing runs with a private HOME holding a placeholder kubeconfig: it never touches a real cluster.
 */
export async function listProblemsFromBridge(opts: { python: string; aiopslabDir: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<ProblemEntry[]> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'aiopslab-catalog-'));
  try {
    const kubeconfig = homeKubeconfigOf(home);
    await mkdir(path.dirname(kubeconfig), { recursive: true });
    await writeFile(kubeconfig, LISTING_KUBECONFIG);
    const env = bridgeEnvironment(opts.env, {
      cluster: { name: 'aiopslab-catalog', context: 'kind-aiopslab-catalog', kubeconfig, home },
      tmpDir: home,
    });
    let problems: Array<{ id: string; deployment: string }> | null = null;
    let failure: string | null = null;
    const bridge = new BridgeProcess({
      python: opts.python,
      cwd: home,
      env,
      onOutput: () => {},
      onProtocolError: (e) => (failure ??= `protocol error: ${e.message}`),
      onEvent: (e: BridgeEvent) => {
        if (e.type === 'hello') {
          if (e.protocol !== PROTOCOL_VERSION) failure ??= `bridge protocol ${e.protocol}, expected ${PROTOCOL_VERSION}`;
          bridge.send({ type: 'list', protocol: PROTOCOL_VERSION, aiopslab_dir: opts.aiopslabDir });
        } else if (e.type === 'problems') {
          problems = e.problems;
        } else if (e.type === 'error') {
          failure ??= `${e.error_type}: ${e.message}`;
        }
      },
    });
    if (!(await bridge.waitExit(opts.timeoutMs))) {
      bridge.signal('SIGKILL');
      await bridge.exited;
      throw new Error(`listing AIOpsLab problems took longer than ${opts.timeoutMs} ms`);
    }
    const exit = await bridge.exited;
    if (exit.spawnError) throw new Error(`cannot start ${opts.python}: ${exit.spawnError.message}`);
    if (failure || !problems) {
      const tail = bridge.stderrTail().split('\n').slice(-5).join('\n');
      throw new Error(`${failure ?? `the bridge exited with code ${exit.code} without listing problems`}${tail ? `\n${tail}` : ''}`);
    }
    const listed = problems as Array<{ id: string; deployment: string }>;
    return listed
      .map((p) => entryFor(p.id, p.deployment === 'docker' ? 'docker' : 'k8s', 'aiopslab'))
      .filter((e): e is ProblemEntry => e !== null);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------ storage

/** Replaces the catalog with `entries` in one transaction. */
export async function syncProblemCatalog(pool: Pool, entries: readonly ProblemEntry[]): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query('DELETE FROM problems WHERE NOT (id = ANY($1::text[]))', [entries.map((e) => e.id)]);
    await client.query(
      `INSERT INTO problems (id, application, task_type, deployment, source)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
       ON CONFLICT (id) DO UPDATE SET application = EXCLUDED.application, task_type = EXCLUDED.task_type,
         deployment = EXCLUDED.deployment, source = EXCLUDED.source, updated_at = now()`,
      [entries.map((e) => e.id), entries.map((e) => e.application), entries.map((e) => e.task_type), entries.map((e) => e.deployment), entries.map((e) => e.source)],
    );
  });
}

/** At start: list AIOpsLab's registry when a checkout is configured, else (or on failure) the built-in ids. */
export async function ensureProblemCatalog(
  pool: Pool,
  config: Config,
  log: Pick<Logger, 'info' | 'warn'>,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ source: 'aiopslab' | 'builtin'; count: number; warning?: string }> {
  let entries: ProblemEntry[] | null = null;
  let warning: string | undefined;
  if (config.aiopslabDir) {
    try {
      entries = await listProblemsFromBridge({
        python: resolveAiopslabPython(config),
        aiopslabDir: config.aiopslabDir,
        env: opts.env ?? process.env,
        timeoutMs: opts.timeoutMs ?? 120_000,
      });
      if (entries.length === 0) {
        entries = null;
        warning = 'AIOpsLab listed no problems; using the built-in catalog of 89 ids';
      }
    } catch (e) {
      warning = `Could not list AIOpsLab's problems (${(e as Error).message.split('\n')[0]}); using the built-in catalog of 89 ids. Run \`aiopslab-executor doctor\`.`;
    }
  }
  const source = entries ? 'aiopslab' : 'builtin';
  const final = entries ?? builtinProblems();
  await syncProblemCatalog(pool, final);
  if (warning) log.warn({ source, count: final.length }, warning);
  else log.info({ source, count: final.length }, 'problem catalog loaded');
  return warning ? { source, count: final.length, warning } : { source, count: final.length };
}

interface ProblemRow {
  id: string;
  application: string;
  task_type: TaskType;
  deployment: Deployment;
  source: 'aiopslab' | 'builtin';
}

export async function getProblem(db: Queryable, id: string): Promise<ProblemEntry | null> {
  const r = await db.query<ProblemRow>('SELECT id, application, task_type, deployment, source FROM problems WHERE id = $1', [id]);
  return r.rows[0] ?? null;
}

export async function listProblemIds(db: Queryable): Promise<string[]> {
  const r = await db.query<{ id: string }>('SELECT id FROM problems ORDER BY id');
  return r.rows.map((row) => row.id);
}

export interface ProblemFilter {
  application?: string;
  task_type?: TaskType;
  deployment?: Deployment;
  supported_backend?: Backend;
}

export async function listProblems(db: Queryable, filter: ProblemFilter = {}): Promise<ProblemEntry[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  for (const key of ['application', 'task_type', 'deployment'] as const) {
    const v = filter[key];
    if (v !== undefined) {
      args.push(v);
      where.push(`${key} = $${args.length}`);
    }
  }
  const r = await db.query<ProblemRow>(
    `SELECT id, application, task_type, deployment, source FROM problems ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`,
    args,
  );
  const backend = filter.supported_backend;
  return backend ? r.rows.filter((p) => unsupportedReason(p, backend) === null) : r.rows;
}
