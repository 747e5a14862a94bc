/**
 * The comparison side: graphile-worker 0.17 in its default, unbatched mode (no local queue, no
 * batched completion), in this process, on its own fresh database on the same server. Its task
 * function does nothing but report that it started.
 */
import { Logger, run, runMigrations, type Runner } from 'graphile-worker';

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
  const runner = await run({
    connectionString: opts.connectionString,
    concurrency: opts.concurrency,
    // Both sides get a pool with room for every worker plus the submitter.
    maxPoolSize: opts.concurrency + 2,
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
    },
  };
}
