/**
 * The PostgreSQL server a benchmark run uses — DATABASE_URL, else an embedded server in a temp
 * folder — and the fresh databases each benchmark creates on it and drops afterwards. Product
 * databases are cloned from a template migrated once per run (as test/helpers/globalSetup.ts does),
 * so every benchmark starts from the same empty, migrated schema.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { processAlive, startEmbeddedDatabase } from '../src/store/embeddedDatabase.js';
import { migrate } from '../src/store/migrate.js';
import { createPool, redactDatabaseUrl, type Pool } from '../src/store/pool.js';

/** Every database a run creates starts with this, followed by the run's id. */
export const BENCH_DB_PREFIX = 'aiopslab_bench_';

export interface BenchDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

export interface BenchServer {
  /** URL of the server's maintenance database (databases are created from it). */
  url: string;
  embedded: boolean;
  /** `SHOW server_version`. */
  version: string;
  /** A fresh database holding every product migration. */
  createProductDatabase(label: string): Promise<BenchDatabase>;
  /** A fresh empty database (graphile-worker installs its own schema in it). */
  createEmptyDatabase(label: string): Promise<BenchDatabase>;
  /** Drops every database of this run, then stops an embedded server. */
  close(): Promise<void>;
}

export function withDatabase(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Databases of earlier runs on this host whose process is gone (killed before it could drop them). */
async function dropAbandonedDatabases(c: pg.Client): Promise<void> {
  const r = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE '${BENCH_DB_PREFIX}%'`);
  for (const { datname } of r.rows) {
    const pid = Number(datname.slice(BENCH_DB_PREFIX.length).split('_')[0]);
    if (!Number.isInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    await c.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => {});
  }
}

async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Opens the server for one run. `poolSize` is the size of each database's pool; benchmarks that
 * need their own pools (the service, graphile-worker) open them from `url`.
 */
export async function openBenchServer(opts: { databaseUrl?: string | null; log?: (line: string) => void } = {}): Promise<BenchServer> {
  let serverUrl = opts.databaseUrl ?? process.env.DATABASE_URL ?? null;
  let stopEmbedded: (() => Promise<void>) | null = null;
  if (!serverUrl) {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'aiopslab-bench-pg-'));
    // As root the embedded server runs as the unprivileged `postgres` user, which must reach the folder.
    await chmod(tmp, 0o755);
    const port = 20000 + Math.floor(Math.random() * 20000);
    opts.log?.(`starting embedded PostgreSQL in ${tmp} on port ${port}`);
    const embedded = await startEmbeddedDatabase({ dataDir: path.join(tmp, 'data'), port, database: 'postgres' });
    serverUrl = embedded.url;
    stopEmbedded = async () => {
      await embedded.stop();
      await rm(tmp, { recursive: true, force: true });
    };
  } else {
    opts.log?.(`using PostgreSQL at ${redactDatabaseUrl(serverUrl)}`);
  }
  const adminUrl = serverUrl;
  const runId = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const created: string[] = [];
  const version = await withAdmin(adminUrl, async (c) => {
    await dropAbandonedDatabases(c);
    return (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  });

  let template: Promise<string> | null = null;
  const productTemplate = () => {
    template ??= (async () => {
      const name = `${BENCH_DB_PREFIX}${runId}_tpl`;
      await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
      created.push(name);
      const pool = createPool(withDatabase(adminUrl, name), 2);
      try {
        await migrate(pool);
      } finally {
        await pool.end();
      }
      return name;
    })();
    return template;
  };

  const create = async (label: string, from: string | null): Promise<BenchDatabase> => {
    const name = `${BENCH_DB_PREFIX}${runId}_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${created.length}`;
    await withAdmin(adminUrl, async (c) => {
      // CREATE DATABASE … TEMPLATE fails while another session is connected to the template.
      for (let i = 0; ; i++) {
        try {
          await c.query(`CREATE DATABASE ${name}${from ? ` TEMPLATE ${from}` : ''}`);
          return;
        } catch (e) {
          if (i > 20) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });
    created.push(name);
    const url = withDatabase(adminUrl, name);
    const pool = createPool(url, 20);
    let dropped = false;
    return {
      name, url, pool,
      async drop() {
        if (dropped) return;
        dropped = true;
        await pool.end().catch(() => {});
        await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => {});
      },
    };
  };

  return {
    url: adminUrl,
    embedded: stopEmbedded !== null,
    version,
    createProductDatabase: async (label) => create(label, await productTemplate()),
    createEmptyDatabase: (label) => create(label, null),
    async close() {
      await withAdmin(adminUrl, async (c) => {
        for (const name of created.reverse()) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      }).catch(() => {});
      if (stopEmbedded) await stopEmbedded();
    },
  };
}
