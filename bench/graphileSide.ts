/**
 * The comparison side: graphile-worker 0.17 in its default, unbatched mode (no local queue, no
 * batched completion), in this process, on its own fresh database on the same server. Its task
 * function does nothing but report that it started.
 */
import { Logger, run, runMigrations, type Runner } from 'graphile-worker';
import pg from 'pg';

/** Silences graphile-worker's own logging (it would interleave with the summary). */
const quietLogger = new Logger(() => () => {});

export interface GraphileSide {
  runner: Runner;
  stop(): Promise<void>;
}

export async function installGraphileSchema(connectionString: string): Promise<void> {
  await runMigrations({ connectionString, logger: quietLogger });
}

/** Starts a runner whose `noop` task calls `onStart(payload)` and returns at once. */
export async function startGraphileRunner(opts: {
  connectionString: string;
  concurrency: number;
  onStart: (payload: { i: number }) => void;
}): Promise<GraphileSide> {
  // Our own pool, so it can be ended (and its idle connections' errors handled) before the
  // database is dropped: a runner-owned pool outlived runner.stop() and crashed the run on the
  // DROP DATABASE's "terminating connection". Room for every worker plus the submitter, as ours.
  const pgPool = new pg.Pool({ connectionString: opts.connectionString, max: opts.concurrency + 2 });
  pgPool.on('error', () => {});
  pgPool.on('connect', (client) => client.on('error', () => {}));
  const runner = await run({
    pgPool,
    concurrency: opts.concurrency,
    noHandleSignals: true,
    // Its default; workers are woken by LISTEN "jobs:insert", the poll is the fallback.
    pollInterval: 2000,
    logger: quietLogger,
    taskList: {
      noop: async (payload) => {
        opts.onStart(payload as { i: number });
      },
    },
  });
  return {
    runner,
    async stop() {
      await runner.stop();
      await pgPool.end();
    },
  };
}
