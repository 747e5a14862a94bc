/**
 * The queue's hot statements as named prepared statements: PostgreSQL parses and plans each once
 * per connection instead of on every call (the claim statement took longer to plan than to run,
 * and draining no-op tasks went 1.5× faster without the planning; bench/RESULTS.md).
 *
 * A migration that changes a table's columns makes PostgreSQL refuse a prepared statement that
 * returns them ("cached plan must not change result type"); the statement is then prepared again
 * under a new name, so a running process survives a migration applied by another one.
 * (Behind a transaction-pooling proxy such as PgBouncer < 1.21, prepared statements need its
 * prepared-statement support.)
 */
import type pg from 'pg';
import type { Queryable } from './pool.js';

let generation = 0;

function isStalePlan(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '0A000' && /cached plan must not change result type/.test(err.message ?? '');
}

export async function queryPrepared<R extends pg.QueryResultRow>(db: Queryable, name: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
  const seen = generation;
  try {
    return await db.query<R>({ name: `${name}_${seen}`, text, values });
  } catch (e) {
    if (!isStalePlan(e)) throw e;
    if (generation === seen) generation++;
    return db.query<R>({ name: `${name}_${generation}`, text, values });
  }
}
