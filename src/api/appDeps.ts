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

/** A readiness check as `doctor` reports it. */
export interface ReadinessCheck { name: string; ok: boolean; detail: string; fix: string | null; neededFor: 'service' | 'real-runs' }

/** Serves the built dashboard, when it is present. */
export interface DashboardServer { dir: string; sendIndex(reply: import('fastify').FastifyReply): unknown }

export interface AppDeps {
  pool: Pool;
  config: Config;
  logger: Logger;
  events: EventHub;
  workers: InternalWorkerControl | null;
  version: string;
  /** The `doctor` checks, shown on /ready (cached by the provider). */
  doctor?: () => Promise<ReadinessCheck[]>;
  dashboard?: DashboardServer | null;
  /** Catalog checks at submit time (unknown problem or model -> 422 with close matches). */
  submitValidator?: { validate(problemId: string, model: string, parameters: Record<string, unknown>): Promise<void> };
}
