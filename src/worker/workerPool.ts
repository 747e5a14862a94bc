/**
 * A process's workers: `start` runs worker-001-internal … worker-NNN-internal inside the API
 * process; `worker` runs <prefix>-001 … on another host. Ids live in another process are
 * skipped, so two processes never drive the same worker (and so the same cluster).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { InternalWorkerControl } from '../api/appDeps.js';
import type { EventHub } from '../store/eventHub.js';
import type { PipelineDeps } from './runTask.js';
import { TaskWorker } from './taskWorker.js';

export interface PoolOptions {
  /** Id for worker n (1-based), e.g. n => `worker-${pad(n)}-internal`. */
  idFor(n: number): string;
  supportedProblems?: string[];
  version: string;
  kind: 'internal' | 'host';
}

export const pad3 = (n: number) => String(n).padStart(3, '0');

export class WorkerPool implements InternalWorkerControl {
  private readonly workers: TaskWorker[] = [];
  private readonly draining = new Set<TaskWorker>();
  private readonly instanceId = randomUUID();
  private target = 0;
  private running = false;
  private nextNumber = 1;

  constructor(private readonly deps: PipelineDeps & { events: EventHub }, private readonly opts: PoolOptions) {}

  private async spawnOne(): Promise<TaskWorker> {
    for (let attempts = 0; attempts < 1000; attempts++) {
      const n = this.nextNumber++;
      const id = this.opts.idFor(n);
      if (this.workers.some((w) => w.id === id) || [...this.draining].some((w) => w.id === id)) continue;
      const w = new TaskWorker({
        id,
        backendType: this.deps.clusters.backend,
        capabilities: { max_parallel_tasks: 1, supported_problems: this.opts.supportedProblems ?? [] },
        metadata: { host: os.hostname(), pid: process.pid, version: this.opts.version, type: this.opts.kind },
        instanceId: this.instanceId,
      }, this.deps);
      const row = await w.register();
      if (!row) {
        this.deps.logger.warn({ worker_id: id }, 'worker id is live in another process; trying the next one');
        continue;
      }
      w.start();
      this.deps.logger.info({ worker_id: id, backend: this.deps.clusters.backend }, 'worker started');
      return w;
    }
    throw new Error('no free worker id');
  }

  async startWorkers(n: number): Promise<void> {
    this.target = n;
    this.running = true;
    this.nextNumber = 1;
    while (this.workers.length < n) this.workers.push(await this.spawnOne());
  }

  status() {
    const workers: Record<string, { status: 'running' | 'stopped'; has_executor: boolean; current_task_id: string | null; state: string }> = {};
    for (const w of [...this.workers, ...this.draining]) {
      workers[w.id] = { status: w.state === 'stopped' ? 'stopped' : 'running', has_executor: w.currentTask !== null, current_task_id: w.currentTask?.id ?? null, state: w.state };
    }
    return { running: this.running, num_workers: this.workers.length, workers };
  }

  async scale(n: number): Promise<{ previous_workers: number; current_workers: number }> {
    const previous = this.workers.length;
    this.target = n;
    this.running = true;
    this.nextNumber = 1;
    while (this.workers.length < n) this.workers.push(await this.spawnOne());
    while (this.workers.length > n) {
      // Idle workers go first; a busy one finishes its task before it leaves.
      const idx = this.workers.findIndex((w) => !w.currentTask);
      const [w] = this.workers.splice(idx >= 0 ? idx : this.workers.length - 1, 1);
      this.draining.add(w!);
      void w!.stop({ drain: true }).finally(() => this.draining.delete(w!));
    }
    return { previous_workers: previous, current_workers: this.workers.length };
  }

  async stop(): Promise<void> {
    this.running = false;
    const all = [...this.workers, ...this.draining];
    this.workers.length = 0;
    await Promise.all(all.map((w) => w.stop({ drain: false })));
    this.draining.clear();
  }

  async start(): Promise<number> {
    if (!this.running || this.workers.length < this.target) await this.startWorkers(this.target || 1);
    return this.workers.length;
  }
}
