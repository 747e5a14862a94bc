/**
 * The HTTP API as `serve`/`start` builds it (same buildServer, same deps: submit validation
 * against the catalogs, metrics, docs), listening on a loopback port, over a benchmark database
 * whose catalogs are filled as a real deployment's are: the 89 built-in problem ids and a model
 * catalog the size of OpenRouter's. The per-client submission rate limit is off (see startApi).
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildServer } from '../src/api/server.js';
import { createSubmitValidator } from '../src/api/submitValidation.js';
import { builtinProblems, syncProblemCatalog } from '../src/catalog/problemCatalog.js';
import { loadConfig } from '../src/config.js';
import { EventHub } from '../src/store/eventHub.js';
import type { Pool } from '../src/store/pool.js';

/** OpenRouter's models endpoint lists about this many models. */
export const CATALOG_MODELS = 350;
/** The model every benchmark task asks for. */
export const BENCH_MODEL = 'openai/gpt-4o-mini';
export const BENCH_PROBLEM = 'k8s_target_port-misconfig-detection-1';

export async function seedCatalogs(pool: Pool): Promise<void> {
  await syncProblemCatalog(pool, builtinProblems());
  await pool.query(
    `INSERT INTO models (id, name, provider, context_length, prompt_price, completion_price, raw)
     SELECT CASE WHEN i = 0 THEN $1 ELSE 'vendor' || (i % 40) || '/model-' || i END, 'Model ' || i, 'openrouter', 128000,
            0.00000015, 0.0000006, jsonb_build_object('id', i, 'description', repeat('x', 200))
       FROM generate_series(0, $2 - 1) AS i
     ON CONFLICT (id) DO NOTHING`,
    [BENCH_MODEL, CATALOG_MODELS],
  );
}

export interface ApiUnderTest {
  app: FastifyInstance;
  events: EventHub;
  /** http://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

/** `events` may be shared with workers in the same process (one LISTEN connection, as in `start`). */
export async function startApi(db: { url: string; pool: Pool }, events?: EventHub): Promise<ApiUnderTest> {
  // SUBMIT_RATE_LIMIT is a per-client policy (default 120/min); the benchmark measures capacity, so it is off.
  const config = { ...loadConfig({ LOG_LEVEL: 'silent', SUBMIT_RATE_LIMIT: '0' }), databaseUrl: db.url };
  const ownEvents = !events;
  const hub = events ?? new EventHub(db.url);
  if (ownEvents) await hub.start();
  const app = await buildServer({
    pool: db.pool, config, logger: pino({ level: 'silent' }), events: hub, workers: null, version: 'bench',
    dashboard: null, submitValidator: createSubmitValidator(db.pool, config),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  return {
    app, events: hub, url: `http://127.0.0.1:${port}`,
    async close() {
      await app.close();
      if (ownEvents) await hub.stop();
    },
  };
}

/** The body of every benchmark submission (a small, typical one). */
export function taskBody(i: number): Record<string, unknown> {
  return { problem_id: BENCH_PROBLEM, parameters: { max_steps: 10, agent_config: { model: BENCH_MODEL }, metadata: { bench: i } } };
}
