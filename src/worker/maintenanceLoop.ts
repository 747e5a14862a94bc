/** Runs the maintenance pass periodically; never throws (a database outage is logged and retried). */
import type { Logger } from '../logger.js';
import { runMaintenance } from '../queue/maintenance.js';
import { isConnectionError, type Pool } from '../store/pool.js';

export function startMaintenanceLoop(opts: { pool: Pool; logger: Logger; intervalSeconds: number; workerOfflineAfterSeconds: number }): { stop(): Promise<void>; runOnce(): Promise<void> } {
  let running: Promise<void> | null = null;
  let stopped = false;
  const runOnce = async () => {
    try {
      const r = await runMaintenance(opts.pool, { workerOfflineAfterSeconds: opts.workerOfflineAfterSeconds });
      if (r.workersOffline.length || r.requeued.length || r.lost.length || r.timedOut.length) opts.logger.warn({ event: 'maintenance', ...r }, 'maintenance changed state');
    } catch (e) {
      opts.logger[isConnectionError(e) ? 'warn' : 'error']({ event: 'maintenance.error', err: (e as Error).message }, 'maintenance pass failed');
    }
  };
  const timer = setInterval(() => {
    if (stopped || running) return;
    running = runOnce().finally(() => { running = null; });
  }, opts.intervalSeconds * 1000);
  timer.unref();
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (running) await running;
    },
  };
}
