/**
 * The product's own workers with a no-op task body, for the queue benchmarks. Each is a real
 * TaskWorker: it registers, heartbeats, is woken by the same EventHub (LISTEN/NOTIFY) fan-out and
 * claims with the same claimTask statement. Only its per-task step is replaced: instead of the
 * pipeline (preflight, cluster, bridge, LLM) it reports the start and ends the task with
 * finishTask — the statement the pipeline ends with.
 */
import os from 'node:os';
import pino from 'pino';
import { loadConfig, type Config } from '../src/config.js';
import { finishTask } from '../src/queue/finishTask.js';
import type { TaskRow } from '../src/queue/taskRecord.js';
import type { EventHub } from '../src/store/eventHub.js';
import type { Pool } from '../src/store/pool.js';
import type { ClusterProvider } from '../src/worker/clusterProvider.js';
import { TaskWorker } from '../src/worker/taskWorker.js';

export interface NoopWorkers {
  workers: TaskWorker[];
  /** finishTask calls that failed and were retried (a healthy run has none). */
  finishRetries(): number;
  /** Stops the workers; throws when their loop reported errors meanwhile. */
  stop(): Promise<void>;
}

/** Never used: the no-op body touches no cluster; `release` is called when a worker stops. */
const noCluster: ClusterProvider = {
  backend: 'kind',
  async ensure() { throw new Error('the no-op benchmark body needs no cluster'); },
  async release() {},
  plannedHandle: () => null,
};

/** What TaskWorker's per-task step hands back to its loop. */
type RunTask = (task: TaskRow) => Promise<{ clusterDirty: boolean }>;

/** Replaces the worker's per-task step. Throws if TaskWorker no longer has one by that name. */
function replaceTaskBody(worker: TaskWorker, body: RunTask): void {
  const w = worker as unknown as { runTask?: unknown };
  if (typeof w.runTask !== 'function') throw new Error('TaskWorker has no runTask method any more: update bench/noopWorkers.ts');
  Object.defineProperty(worker, 'runTask', { value: body, configurable: true });
}

export async function startNoopWorkers(opts: {
  pool: Pool;
  events: EventHub;
  count: number;
  /** Called when the worker loop hands the claimed task to the body (claimTask has returned). */
  onClaimed?: (task: TaskRow) => void;
  /** Called as the task body starts. */
  onStart: (task: TaskRow) => void;
  /** Called after finishTask committed. */
  onFinish?: (task: TaskRow) => void;
  idPrefix?: string;
  config?: Partial<Config>;
}): Promise<NoopWorkers> {
  const config: Config = { ...loadConfig({ LOG_LEVEL: 'silent' }), ...opts.config };
  // Worker faults are printed, and errors counted: a worker loop that fails between tasks still
  // drains the queue (it retries on the next wake-up), slowly, and the benchmark would measure that.
  let loopErrors = 0;
  const logger = pino({ level: 'warn', base: { bench: 'noop-worker' } }, {
    write(line: string) {
      if ((JSON.parse(line) as { level: number }).level >= 50) loopErrors++;
      process.stderr.write(line);
    },
  });
  const deps = { pool: opts.pool, config, logger, env: process.env, clusters: noCluster, events: opts.events };
  const workers: TaskWorker[] = [];
  let finishRetries = 0;
  for (let n = 1; n <= opts.count; n++) {
    const worker = new TaskWorker({
      id: `${opts.idPrefix ?? 'bench'}-${String(n).padStart(3, '0')}`,
      backendType: 'kind',
      capabilities: { max_parallel_tasks: 1, supported_problems: [] },
      metadata: { host: os.hostname(), pid: process.pid, type: 'bench' },
      instanceId: `bench-${process.pid}`,
    }, deps);
    replaceTaskBody(worker, async (task) => {
      opts.onClaimed?.(task);
      worker.state = 'busy';
      worker.currentTask = task;
      try {
        opts.onStart(task);
        // The product's pipeline never throws out of a task; a failed finish here would leave the
        // worker holding the task (and the benchmark waiting), so it is retried and counted.
        for (let attempt = 1; ; attempt++) {
          try {
            await finishTask(opts.pool, { taskId: task.id, workerId: worker.id, status: 'completed', result: {}, errorType: null, errorDetails: null });
            break;
          } catch (e) {
            finishRetries++;
            logger.warn({ worker_id: worker.id, task_id: task.id, attempt, err: (e as Error).message }, 'finishTask failed; retrying');
            if (attempt >= 20) throw e;
            await new Promise((r) => setTimeout(r, 50 * attempt));
          }
        }
        opts.onFinish?.(task);
        return { clusterDirty: false };
      } finally {
        worker.currentTask = null;
      }
    });
    if (!(await worker.register())) throw new Error(`could not register ${worker.id}`);
    workers.push(worker);
  }
  for (const w of workers) w.start();
  return {
    workers,
    finishRetries: () => finishRetries,
    async stop() {
      await Promise.all(workers.map((w) => w.stop({ drain: true })));
      if (loopErrors > 0) throw new Error(`the workers' loop reported ${loopErrors} error(s) (on stderr): the figures measured a failing loop`);
    },
  };
}
