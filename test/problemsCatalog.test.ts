/**
 * The problem catalog: the 89 built-in ids, listing the fixture AIOpsLab's registry through the real
 * bridge (without touching a cluster), keeping it in the `problems` table, and GET /api/v1/problems.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { problemRoutes } from '../src/api/routes/problems.js';
import type { AppDeps } from '../src/api/appDeps.js';
import {
  applicationOf,
  builtinProblems,
  ensureProblemCatalog,
  getProblem,
  listProblemIds,
  listProblems,
  listProblemsFromBridge,
  syncProblemCatalog,
  taskTypeOf,
  unsupportedReason,
  type ProblemEntry,
} from '../src/catalog/problemCatalog.js';
import { loadConfig } from '../src/config.js';
import { ERROR_CATALOGUE, isAppError } from '../src/errors.js';
import { createStandins, type Standins } from './fixtures/standins.js';
import { FIXTURE_AIOPSLAB_DIR, realPython } from './fixtures/agents.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

const FIXTURE_IDS = [
  'flower_node_stop-detection',
  'k8s_target_port-misconfig-analysis-1',
  'k8s_target_port-misconfig-detection-1',
  'k8s_target_port-misconfig-detection-2',
  'k8s_target_port-misconfig-localization-1',
  'k8s_target_port-misconfig-mitigation-1',
  'network_delay_hotel_res-detection-1',
  'noop_detection_hotel_reservation-1',
  'noop_detection_social_network-1',
  'pod_failure_hotel_res-detection-1',
  'pod_kill_hotel_res-detection-1',
  'revoke_auth_mongodb-detection-1',
  'scale_pod_zero_social_net-detection-1',
  'wrong_bin_usage-localization-1',
];

const count = <T>(xs: T[], key: (x: T) => string) => xs.reduce<Record<string, number>>((m, x) => ((m[key(x)] = (m[key(x)] ?? 0) + 1), m), {});
const silent = { info() {}, warn() {} };

let python: string;
let standins: Standins;
let db: TestDatabase;
beforeAll(async () => {
  python = realPython();
  standins = createStandins();
  db = await createTestDatabase();
});
afterAll(async () => {
  standins.cleanup();
  await db.drop();
});

describe('the built-in catalog', () => {
  const all = builtinProblems();

  it('has the 89 ids with INTERFACE.md §6\'s counts per task type and application', () => {
    expect(all).toHaveLength(89);
    expect(new Set(all.map((p) => p.id)).size).toBe(89);
    expect(count(all, (p) => p.task_type)).toEqual({ detection: 34, localization: 28, analysis: 13, mitigation: 14 });
    expect(count(all, (p) => p.application)).toEqual({ social_network: 25, hotel_reservation: 38, astronomy_shop: 24, flower: 2 });
    expect(all.filter((p) => p.deployment === 'docker').map((p) => p.id).sort()).toEqual(['flower_model_misconfig-detection', 'flower_node_stop-detection']);
    expect(all.every((p) => p.source === 'builtin')).toBe(true);
  });

  it('derives task type and application from the id', () => {
    expect(taskTypeOf('container_kill-localization')).toBe('localization');
    expect(taskTypeOf('noop_detection_astronomy_shop-1')).toBe('detection');
    expect(taskTypeOf('no-task-type-here')).toBeNull();
    expect(applicationOf('k8s_target_port-misconfig-mitigation-3')).toBe('social_network');
    expect(applicationOf('redeploy_without_PV-analysis-1')).toBe('hotel_reservation');
    expect(applicationOf('astronomy_shop_kafka_queue_problems-mitigation-1')).toBe('astronomy_shop');
    expect(applicationOf('something_new-detection-1')).toBe('unknown');
  });

  it('Kind workers refuse Docker-deployed problems with a reason', () => {
    const flower = all.find((p) => p.id === 'flower_node_stop-detection')!;
    const k8s = all.find((p) => p.id === 'k8s_target_port-misconfig-detection-1')!;
    expect(unsupportedReason(flower, 'kind')).toMatch(/Docker Compose.*Kind workers/);
    expect(unsupportedReason(flower, 'existing')).toBeNull();
    expect(unsupportedReason(k8s, 'kind')).toBeNull();
  });
});

describe('listing AIOpsLab\'s registry through the bridge', () => {
  it('returns the fixture\'s ids and deployments and calls no cluster tool', async () => {
    const entries = await listProblemsFromBridge({ python, aiopslabDir: FIXTURE_AIOPSLAB_DIR, env: { ...standins.env, PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 30_000 });
    expect(entries.map((e) => e.id).sort()).toEqual(FIXTURE_IDS);
    expect(entries.find((e) => e.id === 'flower_node_stop-detection')).toEqual({ id: 'flower_node_stop-detection', application: 'flower', task_type: 'detection', deployment: 'docker', source: 'aiopslab' });
    expect(entries.filter((e) => e.deployment === 'k8s')).toHaveLength(FIXTURE_IDS.length - 1);
    expect(standins.calls()).toEqual([]);
  });

  it('fails with AIOpsLab\'s error when the checkout cannot be imported', async () => {
    const broken = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-broken-'));
    try {
      cpSync(FIXTURE_AIOPSLAB_DIR, broken, { recursive: true });
      rmSync(path.join(broken, 'aiopslab', 'config.yml'));
      await expect(listProblemsFromBridge({ python, aiopslabDir: broken, env: { ...standins.env, PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 30_000 })).rejects.toThrow(/FileNotFoundError.*config\.yml/);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });
});

describe('the catalog in the database', () => {
  it('sync replaces the table; reads and filters see the new catalog', async () => {
    await syncProblemCatalog(db.pool, builtinProblems());
    expect(await listProblemIds(db.pool)).toHaveLength(89);
    const fixture: ProblemEntry[] = FIXTURE_IDS.map((id) => ({ id, application: applicationOf(id), task_type: taskTypeOf(id)!, deployment: id.startsWith('flower') ? 'docker' : 'k8s', source: 'aiopslab' }));
    await syncProblemCatalog(db.pool, fixture);
    expect(await listProblemIds(db.pool)).toEqual(FIXTURE_IDS);
    expect(await getProblem(db.pool, 'astronomy_shop_ad_service_failure-detection-1')).toBeNull();
    expect(await getProblem(db.pool, 'wrong_bin_usage-localization-1')).toEqual({ id: 'wrong_bin_usage-localization-1', application: 'hotel_reservation', task_type: 'localization', deployment: 'k8s', source: 'aiopslab' });
    expect((await listProblems(db.pool, { task_type: 'localization' })).map((p) => p.id)).toEqual(['k8s_target_port-misconfig-localization-1', 'wrong_bin_usage-localization-1']);
    expect((await listProblems(db.pool, { supported_backend: 'kind' })).map((p) => p.id)).not.toContain('flower_node_stop-detection');
    expect(await listProblems(db.pool, { application: 'flower', deployment: 'docker' })).toHaveLength(1);
  });

  it('ensureProblemCatalog lists the configured checkout', async () => {
    const config = loadConfig({ AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: python });
    const out = await ensureProblemCatalog(db.pool, config, silent, { env: { ...standins.env, PYTHONDONTWRITEBYTECODE: '1' } });
    expect(out).toEqual({ source: 'aiopslab', count: FIXTURE_IDS.length });
    expect((await getProblem(db.pool, 'flower_node_stop-detection'))?.source).toBe('aiopslab');
  });

  it('without a checkout, or when listing fails, falls back to the 89 built-in ids (with a warning)', async () => {
    expect(await ensureProblemCatalog(db.pool, loadConfig({}), silent)).toEqual({ source: 'builtin', count: 89 });
    const warnings: string[] = [];
    const config = loadConfig({ AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: '/nonexistent/python3' });
    const out = await ensureProblemCatalog(db.pool, config, { info() {}, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)) }, { env: standins.env });
    expect(out.source).toBe('builtin');
    expect(out.count).toBe(89);
    expect(out.warning).toMatch(/Could not list AIOpsLab's problems \(cannot start \/nonexistent\/python3/);
    expect(warnings).toEqual([out.warning]);
    expect(await listProblemIds(db.pool)).toHaveLength(89);
  });
});

describe('GET /api/v1/problems', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    await syncProblemCatalog(db.pool, builtinProblems());
    app = Fastify();
    // The service's own error handler turns AppError into the envelope; this is the same mapping in small.
    app.setErrorHandler((err, _req, reply) => {
      if (isAppError(err)) return reply.status(ERROR_CATALOGUE[err.code].status).send({ error: { code: err.code, message: err.message, details: err.details } });
      return reply.status((err as { statusCode?: number }).statusCode ?? 500).send({ error: { code: 'validation_failed', message: err.message } });
    });
    const deps = { pool: db.pool } as unknown as AppDeps;
    await app.register(async (scope) => problemRoutes(scope, deps), { prefix: '/api/v1' });
  });
  afterAll(async () => app.close());

  it('lists with filters and says which backends can run each problem', async () => {
    const all = await app.inject({ method: 'GET', url: '/api/v1/problems' });
    expect(all.statusCode).toBe(200);
    expect(all.json().total).toBe(89);
    const res = await app.inject({ method: 'GET', url: '/api/v1/problems?application=hotel_reservation&task_type=mitigation' });
    const body = res.json();
    expect(body.total).toBe(7);
    expect(body.problems.every((p: ProblemEntry) => p.application === 'hotel_reservation' && p.task_type === 'mitigation')).toBe(true);
    const kind = (await app.inject({ method: 'GET', url: '/api/v1/problems?supported_backend=kind' })).json();
    expect(kind.total).toBe(87);
    const flower = (await app.inject({ method: 'GET', url: '/api/v1/problems?deployment=docker' })).json().problems[0];
    expect(flower.supported_backends).toEqual(['existing']);
    expect(flower.unsupported_reasons.kind).toMatch(/Docker Compose/);
  });

  it('rejects an unknown filter value', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/problems?task_type=healing' });
    expect(res.statusCode).toBe(400);
  });

  it('serves one problem, and 404 with the closest ids for an unknown one', async () => {
    const one = await app.inject({ method: 'GET', url: '/api/v1/problems/container_kill-detection' });
    expect(one.json()).toMatchObject({ id: 'container_kill-detection', application: 'hotel_reservation', task_type: 'detection', deployment: 'k8s', supported_backends: ['kind', 'existing'] });
    const missing = await app.inject({ method: 'GET', url: '/api/v1/problems/k8s_target_port-misconfig-detection-9' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
    expect(missing.json().error.details.closest).toContain('k8s_target_port-misconfig-detection-1');
  });
});
