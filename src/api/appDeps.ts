/** What route modules receive: the shared services of one server process. */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Pool } from '../store/pool.js';
import type { EventHub } from '../store/eventHub.js';

/** Control of the in-process worker pool, when this process runs workers (`start`). */
export interface InternalWorkerControl {
  status(): { running: boolean; num_workers: number; workers: Record<string, { status: 'running' | 'stopped'; has_executor: boolean; current_task_id: string | null }> };
  scale(n: number): Promise<{ previous_workers: number; current_workers: number }>;
  stop(): Promise<void>;
  start(): Promise<number>;
}

export interface AppDeps {
  pool: Pool;
  config: Config;
  logger: Logger;
  events: EventHub;
  workers: InternalWorkerControl | null;
  version: string;
}
