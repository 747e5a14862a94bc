/**
 * One worker: registers, heartbeats (renewing its task's lease), claims work when woken by
 * NOTIFY (or a slow poll), runs each task through the pipeline, and stops the run it holds when
 * the task is cancelled, times out, or its lease is lost. The loop never dies on errors: a
 * database outage is waited out with backoff.
 */
import { resolveAiopslabPython } from '../bridge/aiopslabPython.js';
import { WarmBridge } from '../bridge/warmBridge.js';
import { workerFiles } from '../cluster/workerFiles.js';
import { secretValues } from '../config.js';
import { claimTask, type ClaimedTask } from '../queue/claimTask.js';
import type { TaskRow } from '../queue/taskRecord.js';
import { heartbeat, markWorkerOffline, registerWorker, type WorkerRow } from '../queue/workerRegistry.js';
import type { EventHub } from '../store/eventHub.js';
import { isConnectionError } from '../store/pool.js';
import { runClaimedTask, type PipelineDeps, type StopReason } from './runTask.js';

export interface WorkerOptions {
  id: string;
  backendType: string;
  capabilities: { supported_problems?: string[] } & Record<string, unknown>;
  metadata: Record<string, unknown>;
  instanceId: string;
}

export type WorkerState = 'starting' | 'idle' | 'busy' | 'stopping' | 'stopped';

export class TaskWorker {
  state: WorkerState = 'starting';
  currentTask: TaskRow | null = null;
  private stopRequested = false;
  private abort: AbortController | null = null;
  private wake: (() => void) | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastRenewal = Date.now();
  private loopDone: Promise<void> | null = null;
  private unsubscribe: (() => void) | null = null;
  /** The next task's bridge, started while this worker waits (warmBridge.ts); only for a worker's own kind cluster. */
  private readonly warm: WarmBridge | null;

  constructor(readonly opts: WorkerOptions, private readonly deps: PipelineDeps & { events: EventHub }) {
    this.warm = deps.clusters.backend === 'kind'
      ? new WarmBridge({
        workerDir: workerFiles(deps.config.stateDir, opts.id).dir, baseEnv: deps.env, secretValues: secretValues(deps.config),
        onError: (e) => deps.logger.warn({ worker_id: opts.id, err: e.message }, 'could not start a bridge ahead of the next task'),
      })
      : null;
  }

  /** Starts the next task's bridge now, when the worker's cluster is there and AIOpsLab is configured. */
  private warmUp(): void {
    const cluster = this.deps.clusters.plannedHandle(this.opts.id);
    const aiopslabDir = this.deps.config.aiopslabDir;
    if (!this.warm || !cluster || !aiopslabDir || this.stopRequested) return;
    void this.warm.fill({ python: resolveAiopslabPython(this.deps.config), aiopslabDir, cluster });
  }

  get id(): string { return this.opts.id; }

  /** Registers the worker; false when the id is live in another process. */
  async register(): Promise<WorkerRow | null> {
    return registerWorker(this.deps.pool, {
      id: this.opts.id, backendType: this.opts.backendType, capabilities: this.opts.capabilities,
      metadata: { ...this.opts.metadata, kind_cluster: this.deps.clusters.backend === 'kind' ? `aiopslab-${this.opts.id}` : null },
      instanceId: this.opts.instanceId, offlineAfterSeconds: this.deps.config.workerOfflineAfter,
    });
  }

  start(): void {
    this.unsubscribe = this.deps.events.subscribe((e) => {
      if (e.channel === 'task_events') {
        const p = e.payload as { id?: string; status?: string };
        // New work, or a slot freed that a concurrency or spend cap was holding back.
        if (p.status !== 'running') this.wake?.();
        if (this.currentTask && p.id === this.currentTask.id && (p.status === 'cancelled' || p.status === 'timeout')) this.stopCurrent(p.status);
      } else if (e.channel === 'reconnected') {
        this.wake?.();
      }
    });
    this.heartbeatTimer = setInterval(() => void this.beat(), this.deps.config.workerHeartbeatInterval * 1000);
    this.loopDone = this.loop();
  }

  private async beat(): Promise<void> {
    // Read before the await: a claim that commits while the heartbeat is in flight must not
    // look like a lost lease.
    const task = this.currentTask;
    try {
      const r = await heartbeat(this.deps.pool, this.opts.id, this.deps.config.leaseSeconds, task?.id ?? null);
      if (task !== this.currentTask) return;
      if (!r) {
        // Our row vanished (deleted by an operator): register again.
        await this.register();
        return;
      }
      this.lastRenewal = Date.now();
      if (task && (r.worker.current_task_id !== task.id || r.heldTaskStatus !== 'running')) {
        this.stopCurrent(r.heldTaskStatus === 'cancelled' || r.heldTaskStatus === 'timeout' ? r.heldTaskStatus : 'lease_lost');
      }
    } catch (e) {
      this.deps.logger.warn({ worker_id: this.opts.id, err: (e as Error).message }, 'heartbeat failed');
      // Self-fencing: a worker that cannot renew its lease must assume the task will be given
      // to someone else, and stop before that can happen.
      if (this.currentTask && Date.now() - this.lastRenewal > (this.deps.config.leaseSeconds - this.deps.config.workerHeartbeatInterval) * 1000) {
        this.stopCurrent('lease_lost');
      }
    }
  }

  private stopCurrent(reason: StopReason): void {
    if (this.abort && !this.abort.signal.aborted) {
      this.deps.logger.warn({ worker_id: this.opts.id, task_id: this.currentTask?.id, reason }, 'stopping the running task');
      this.abort.abort(reason);
    }
  }

  private waitForWork(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() { clearTimeout(t); resolve(); }
      this.wake = () => { this.wake = null; done(); };
    });
  }

  private async loop(): Promise<void> {
    let backoff = 500;
    this.warmUp();
    while (!this.stopRequested) {
      try {
        this.state = 'idle';
        const task = await claimTask(this.deps.pool, {
          workerId: this.opts.id,
          backendType: this.opts.backendType,
          supportedProblems: this.opts.capabilities.supported_problems ?? [],
          leaseSeconds: this.deps.config.leaseSeconds,
        });
        backoff = 500;
        if (!task) {
          await this.waitForWork(this.deps.config.workerPollInterval * 1000);
          continue;
        }
        // A cluster left dirty is recreated first: a bridge started now would be stopped unused.
        if (!(await this.runTask(task)).clusterDirty) this.warmUp();
      } catch (e) {
        const level = isConnectionError(e) ? 'warn' : 'error';
        this.deps.logger[level]({ worker_id: this.opts.id, err: (e as Error).message }, 'worker loop error; retrying');
        await this.waitForWork(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
    this.state = 'stopped';
  }

  private async runTask(task: ClaimedTask): Promise<{ clusterDirty: boolean }> {
    this.state = 'busy';
    this.currentTask = task;
    this.abort = new AbortController();
    this.lastRenewal = Date.now();
    if (this.stopRequested) this.abort.abort('shutdown');
    // The worker's own timer, so a timeout is enforced even when the maintenance pass runs elsewhere.
    const deadline = new Date(task.started_at!).getTime() + task.timeout_minutes * 60_000;
    const timer = setTimeout(() => this.stopCurrent('timeout'), Math.max(0, deadline - Date.now()));
    let clusterDirty = false;
    try {
      await runClaimedTask(task, {
        workerId: this.opts.id, clusterDirty: task.worker_cluster_dirty, signal: this.abort.signal, warm: this.warm,
        onClusterDirty: () => { clusterDirty = true; void this.warm?.discard(); },
      }, this.deps);
      return { clusterDirty };
    } finally {
      clearTimeout(timer);
      this.currentTask = null;
      this.abort = null;
    }
  }

  /** Stop claiming; a running task is stopped cooperatively and requeued (drain=false) or allowed to finish (drain=true). */
  async stop(opts: { drain: boolean }): Promise<void> {
    this.stopRequested = true;
    this.state = 'stopping';
    if (!opts.drain) this.stopCurrent('shutdown');
    this.wake?.();
    await this.loopDone;
    await this.warm?.close();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.unsubscribe?.();
    await markWorkerOffline(this.deps.pool, this.opts.id).catch(() => {});
    await this.deps.clusters.release(this.opts.id).catch((e) => this.deps.logger.warn({ worker_id: this.opts.id, err: (e as Error).message }, 'cluster release failed'));
    this.state = 'stopped';
  }
}
