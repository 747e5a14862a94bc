/**
 * Assembles a process: `start` (API + dashboard + internal workers + maintenance), `serve`
 * (API + dashboard + maintenance) or `worker` (workers + maintenance, for other hosts).
 * Shuts down gracefully on SIGINT/SIGTERM: stop taking work, stop running tasks cooperatively
 * and requeue them, close the server, then the database.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ensureModelCatalog } from '../agent/modelCatalog.js';
import type { ReadinessCheck } from '../api/appDeps.js';
import { createDashboardServer } from '../api/dashboard.js';
import { buildServer } from '../api/server.js';
import { createSubmitValidator } from '../api/submitValidation.js';
import { ensureProblemCatalog } from '../catalog/problemCatalog.js';
import { loadConfig, secretValues, type Config } from '../config.js';
import { runDoctorChecks } from '../doctor/doctorChecks.js';
import { createLogger, type Logger } from '../logger.js';
import { PACKAGE_ROOT } from '../packagePaths.js';
import { EventHub } from '../store/eventHub.js';
import { redactDatabaseUrl } from '../store/pool.js';
import { createClusterProvider } from '../worker/clusterProvider.js';
import { startMaintenanceLoop } from '../worker/maintenanceLoop.js';
import { startWebhookLoop } from '../webhooks/deliveryLoop.js';
import { pad3, WorkerPool } from '../worker/workerPool.js';
import { openDatabase } from './database.js';

export type ServiceMode = 'start' | 'serve' | 'worker';

export interface ServiceOverrides {
  host?: string;
  port?: number;
  workers?: number;
  insecure?: boolean;
  supportedProblems?: string[];
  /** Where JSON logs go (default stdout); tests capture them to scan for secrets. */
  logDestination?: NodeJS.WritableStream;
}

export const VERSION: string = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export interface RunningService {
  config: Config;
  url: string | null;
  close(): Promise<void>;
}

/** A cached doctor run, so /ready stays cheap. */
function cachedDoctor(config: Config, env: NodeJS.ProcessEnv, ttlMs = 30_000): () => Promise<ReadinessCheck[]> {
  let at = 0;
  let value: Promise<ReadinessCheck[]> | null = null;
  return () => {
    if (!value || Date.now() - at > ttlMs) {
      at = Date.now();
      value = runDoctorChecks(config, { env }).catch(() => []);
    }
    return value!;
  };
}

export async function runService(mode: ServiceMode, overrides: ServiceOverrides = {}, env: NodeJS.ProcessEnv = process.env): Promise<RunningService> {
  const base = loadConfig(env);
  const config: Config = {
    ...base,
    host: overrides.host ?? base.host,
    port: overrides.port ?? base.port,
    numInternalWorkers: overrides.workers ?? base.numInternalWorkers,
  };
  const logger: Logger = createLogger({ level: config.logLevel, secrets: secretValues(config), base: { service: 'aiopslab-executor', mode }, destination: overrides.logDestination });

  if (mode !== 'worker' && !LOOPBACK.test(config.host) && config.apiTokens.length === 0 && !overrides.insecure) {
    throw new Error(`Refusing to listen on ${config.host} without API_TOKEN: anyone who can reach it could run tasks. Set API_TOKEN, or pass --insecure if this network is trusted.`);
  }

  const db = await openDatabase(config, logger, { migrate: true });
  const events = new EventHub(db.url, (e) => logger.warn({ err: (e as Error).message }, 'event listener connection problem'));
  await events.start();

  const catalog = await ensureProblemCatalog(db.pool, config, logger, { env });
  void ensureModelCatalog(db.pool, config, logger).catch(() => {});

  const maintenance = startMaintenanceLoop({ pool: db.pool, logger, intervalSeconds: config.maintenanceInterval, workerOfflineAfterSeconds: config.workerOfflineAfter });
  const doctor = cachedDoctor(config, env);
  // Every process delivers webhooks; SKIP LOCKED claims keep several from sending one twice.
  const webhooks = startWebhookLoop({ pool: db.pool, config, logger, events, version: VERSION });

  let workers: WorkerPool | null = null;
  const runsWorkers = mode === 'worker' || (mode === 'start' && config.autoStartWorkers);
  if (runsWorkers) {
    const clusters = createClusterProvider(config, env, (msg, ctx) => logger.info({ event: 'cluster', ...ctx }, msg));
    workers = new WorkerPool({ pool: db.pool, config, logger, env, clusters, events }, {
      idFor: mode === 'start' ? (n) => `worker-${pad3(n)}-internal` : (n) => `${config.workerIdPrefix}-${pad3(n)}`,
      supportedProblems: overrides.supportedProblems,
      version: VERSION,
      kind: mode === 'start' ? 'internal' : 'host',
    });
    const n = mode === 'start' ? config.numInternalWorkers : Math.max(1, config.numInternalWorkers);
    await workers.startWorkers(n);
  }

  let app: FastifyInstance | null = null;
  let url: string | null = null;
  if (mode !== 'worker') {
    app = await buildServer({
      pool: db.pool, config, logger, events, workers, version: VERSION, doctor,
      dashboard: createDashboardServer(),
      submitValidator: createSubmitValidator(db.pool, config),
    });
    url = await app.listen({ host: config.host, port: config.port });
  }

  const checks = await doctor();
  const missing = checks.filter((c) => !c.ok);
  const lines = [
    `AIOpsLab Task Executor ${VERSION} (${mode})`,
    url ? `  API:        ${url}/api/v1   docs: ${url}/docs` : null,
    url ? `  Dashboard:  ${url}/` : null,
    `  Database:   ${db.embedded ? `embedded PostgreSQL, data in ${db.embedded.dataDir}` : redactDatabaseUrl(db.url)}`,
    `  Workers:    ${workers ? `${workers.status().num_workers} (${config.workerBackend})` : 'none in this process'}`,
    `  Problems:   ${catalog.count} (${catalog.source})`,
    `  State dir:  ${config.stateDir}`,
    missing.length ? `  Not ready for real runs (see \`aiopslab-executor doctor\`):\n${missing.map((c) => `    - ${c.name}: ${c.detail}${c.fix ? ` → ${c.fix}` : ''}`).join('\n')}` : '  Ready for real runs.',
  ].filter(Boolean);
  // Webhooks are the one outbound channel a receiver must be able to trust; say so once.
  if (mode !== 'worker' && !config.webhookSecret) lines.push('  Webhooks:   unsigned (set WEBHOOK_SECRET to sign callback_url deliveries)');
  process.stderr.write(`${lines.join('\n')}\n`);
  logger.info({ event: 'started', url, workers: workers?.status().num_workers ?? 0, database: db.embedded ? 'embedded' : 'external' }, 'service started');

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      logger.info({ event: 'stopping' }, 'shutting down');
      if (workers) await workers.stop();
      if (app) await app.close();
      await maintenance.stop();
      await webhooks.stop();
      await events.stop();
      await db.close();
      logger.info({ event: 'stopped' }, 'stopped');
    })();
    return closing;
  };
  return { config, url, close };
}

/** For the CLI: run until SIGINT/SIGTERM/SIGHUP, then shut down gracefully (a second signal exits at once). */
export async function runUntilSignal(mode: ServiceMode, overrides: ServiceOverrides): Promise<void> {
  const service = await runService(mode, overrides);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    process.stderr.write(`Received ${sig}; stopping (running tasks are stopped and requeued)…\n`);
    service.close().then(() => process.exit(0), (e) => { process.stderr.write(`shutdown error: ${(e as Error).message}\n`); process.exit(1); });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
}
