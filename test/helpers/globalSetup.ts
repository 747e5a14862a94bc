/**
 * Once per test run: find a PostgreSQL server (DATABASE_URL, else an embedded one in a temp
 * folder), build a template database with every migration applied, and hand its server URL to
 * the test files, each of which clones the template into a database of its own.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/store/embeddedDatabase.js';
import { migrate } from '../../src/store/migrate.js';
import { createPool } from '../../src/store/pool.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgServerUrl: string;
    templateDatabase: string;
  }
}

let embedded: EmbeddedDatabase | null = null;
let tmpDir: string | null = null;

export default async function setup(project: TestProject) {
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'aiopslab-executor-test-pg-'));
    // As root the server runs as the unprivileged `postgres` user, which must reach the folder.
    await chmod(tmpDir, 0o755);
    const port = 20000 + Math.floor(Math.random() * 20000);
    embedded = await startEmbeddedDatabase({ dataDir: path.join(tmpDir, 'data'), port, database: 'postgres' });
    serverUrl = embedded.url;
  }
  const template = `aiopslab_tpl_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${template}`);
  const pool = createPool(withDatabase(serverUrl, template), 2);
  await migrate(pool);
  await pool.end();
  project.provide('pgServerUrl', serverUrl);
  project.provide('templateDatabase', template);

  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => {});
    // Test databases left by crashed files are removed too.
    const left = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'aiopslab_t_%'`);
    for (const r of left.rows) await admin.query(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`).catch(() => {});
    await admin.end();
    if (embedded) await embedded.stop();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  };
}

export function withDatabase(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}
