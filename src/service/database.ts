/** Opening the database for a process: DATABASE_URL, or the embedded server; then migrations. */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../store/embeddedDatabase.js';
import { migrate } from '../store/migrate.js';
import { createPool, redactDatabaseUrl, type Pool } from '../store/pool.js';

export interface OpenDatabase {
  url: string;
  pool: Pool;
  embedded: EmbeddedDatabase | null;
  close(): Promise<void>;
}

export async function openDatabase(config: Config, logger: Logger, opts: { migrate: boolean; poolSize?: number }): Promise<OpenDatabase> {
  let embedded: EmbeddedDatabase | null = null;
  let url = config.databaseUrl;
  if (!url) {
    logger.info({ data_dir: config.embeddedPgDir, port: config.embeddedPgPort }, 'starting embedded PostgreSQL');
    embedded = await startEmbeddedDatabase({
      dataDir: config.embeddedPgDir,
      port: config.embeddedPgPort,
      log: (line) => logger.debug({ source: 'embedded-postgres' }, line),
    });
    url = embedded.url;
  }
  const pool = createPool(url, opts.poolSize ?? 20);
  try {
    await pool.query('SELECT 1');
    if (opts.migrate) {
      const applied = await migrate(pool);
      if (applied.length) logger.info({ applied }, 'migrations applied');
    }
  } catch (e) {
    await pool.end().catch(() => {});
    if (embedded) await embedded.stop().catch(() => {});
    throw new Error(`cannot use the database at ${redactDatabaseUrl(url)}: ${(e as Error).message}`);
  }
  return {
    url,
    pool,
    embedded,
    async close() {
      await pool.end().catch(() => {});
      if (embedded) await embedded.stop().catch(() => {});
    },
  };
}
