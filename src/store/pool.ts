/** The PostgreSQL connection pool and the few helpers every store module uses. */
import pg from 'pg';
import { AppError } from '../errors.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

// timestamptz and bigint come back as strings/Date by default; keep int8 exact but usable.
pg.types.setTypeParser(20, (v) => Number(v)); // int8: counts and token totals fit in 2^53
pg.types.setTypeParser(1700, (v) => Number(v)); // numeric: costs in USD

export function createPool(connectionString: string, max = 20): pg.Pool {
  // Every statement here is short. JIT compilation, on by default since PostgreSQL 12, kicks in on
  // estimated cost alone: the claim statement's estimate crosses its threshold, and compiling it
  // took 70 ms of every claim that ran in 15 ms (bench/RESULTS.md). (Behind PgBouncer, list
  // `options` in its ignore_startup_parameters.)
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5_000, options: '-c jit=off' });
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', () => {});
  return pool;
}

/** SQLSTATE classes that mean "the database is not reachable right now", not a bug. */
const CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004', '53300']);

export function isConnectionError(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const err = e as { code?: string; message?: string };
  if (err.code && (CONNECTION_CODES.has(err.code) || ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND'].includes(err.code))) return true;
  const m = err.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)/i.test(m);
}

/** Map connection failures to the 503 error; rethrow everything else unchanged. */
export function translateDbError(e: unknown): never {
  if (isConnectionError(e)) throw new AppError('database_unavailable', 'The database is unavailable; retry shortly.');
  throw e;
}

export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}

/** Hide the password of a connection URL before printing it. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable database URL)';
  }
}
