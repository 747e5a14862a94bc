import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate, loadMigrations } from '../src/store/migrate.js';
import { createPool } from '../src/store/pool.js';
import { withDatabase } from './helpers/globalSetup.js';
import { createTestDatabase, pgServerUrl } from './helpers/database.js';

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

  // migrations/0008 rewrote three identifier checks to be cheaper to evaluate; each must accept
  // exactly what its original pattern accepted.
  it('identifier checks accept exactly what their original patterns did', async () => {
    const db = await createTestDatabase();
    try {
      const checks = [
        { constraint: 'tasks_problem_id_check', original: '^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$', insert: 'INSERT INTO tasks (problem_id) VALUES ($1)' },
        { constraint: 'workers_id_check', original: '^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$', insert: `INSERT INTO workers (id, backend_type) VALUES ($1, 'kind')` },
        {
          constraint: 'experiments_name_check', original: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
          insert: `INSERT INTO experiments (name, problem_selectors, problem_ids, models, repeats) VALUES ($1, '{}', '{p}', '{m}', 1)`,
        },
      ];
      const samples = new Set(['a', 'Z', '7', 'ab', 'a-b', 'a_b', 'a.b', 'a-', '-a', '_a', '.a', 'a_', 'a b', 'a\n', 'é', 'aé', 'A-9', '9-a',
        'k8s_target_port-misconfig-detection-1', ...[2, 47, 48, 49, 127, 128, 129, 254, 255, 256].flatMap((n) => ['a'.repeat(n), `${'a'.repeat(n - 1)}-`])]);
      for (const c of checks) {
        for (const sample of samples) {
          const expected = (await db.pool.query<{ ok: boolean }>('SELECT $1::text ~ $2 AS ok', [sample, c.original])).rows[0]!.ok;
          const accepted = await db.pool.query(c.insert, [sample]).then(() => true, (e: { code?: string; constraint?: string }) => {
            if (e.code === '23514' && e.constraint === c.constraint) return false;
            throw e;
          });
          expect(accepted, `${c.constraint} on ${JSON.stringify(sample)}`).toBe(expected);
        }
      }
    } finally {
      await db.drop();
    }
  });
});
