/** An API app over a fresh test database, driven with app.inject(). */
import pino from 'pino';
import { buildServer } from '../../src/api/server.js';
import type { AppDeps } from '../../src/api/appDeps.js';
import { loadConfig, type Config } from '../../src/config.js';
import { EventHub } from '../../src/store/eventHub.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export interface ApiHarness {
  db: TestDatabase;
  deps: AppDeps;
  app: Awaited<ReturnType<typeof buildServer>>;
  close(): Promise<void>;
}

export function testConfig(env: Record<string, string> = {}, databaseUrl: string | null = null): Config {
  return { ...loadConfig({ LOG_LEVEL: 'silent', ...env }), databaseUrl };
}

export async function createApiHarness(opts: { env?: Record<string, string>; deps?: Partial<AppDeps> } = {}): Promise<ApiHarness> {
  const db = await createTestDatabase();
  const events = new EventHub(db.url);
  await events.start();
  const deps: AppDeps = {
    pool: db.pool,
    config: testConfig(opts.env, db.url),
    logger: pino({ level: 'silent' }),
    events,
    workers: null,
    version: 'test',
    ...opts.deps,
  };
  const app = await buildServer(deps);
  await app.ready();
  return {
    db, deps, app,
    async close() {
      await app.close();
      await events.stop();
      await db.drop();
    },
  };
}
