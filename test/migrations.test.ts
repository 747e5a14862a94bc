import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate, loadMigrations } from '../src/store/migrate.js';
import { createPool } from '../src/store/pool.js';
import { withDatabase } from './helpers/globalSetup.js';
import { pgServerUrl } from './helpers/database.js';

describe('migrations', () => {
  const name = `aiopslab_t_${randomBytes(6).toString('hex')}`;
  let admin: pg.Client;
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgServerUrl() });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
  });
  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  it('apply once when two processes migrate at the same time, and are a no-op the second time', async () => {
    const url = withDatabase(pgServerUrl(), name);
    const a = createPool(url, 2);
    const b = createPool(url, 2);
    const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
    const all = (await loadMigrations()).map((m) => m.name);
    // Exactly one of the two applied each migration; together they applied all of them.
    expect([...ra, ...rb].sort()).toEqual(all.sort());
    expect(await migrate(a)).toEqual([]);
    const rows = await a.query('SELECT name FROM schema_migrations ORDER BY version');
    expect(rows.rows.map((r) => r.name)).toEqual(all);
    const tables = await a.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['tasks', 'workers', 'task_logs', 'llm_conversations', 'llm_messages', 'problems', 'models']));
    // Every timestamp column is timestamptz.
    const naive = await a.query(`SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'`);
    expect(naive.rows).toEqual([]);
    await a.end();
    await b.end();
  });
});
