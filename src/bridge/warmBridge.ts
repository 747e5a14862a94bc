/**
 * One bridge per worker kept started between tasks, AIOpsLab already imported, so that the next
 * task's run begins at once: in a batch the Python start and the framework's imports (seconds with
 * the real AIOpsLab) leave every task's path but the first.
 *
 * It is started when a run reaches its teardown (AIOpsLab's teardown takes long enough for the
 * imports; a bridge started only once the task has ended would still be importing when a queued
 * task is claimed), else when a task ends or the worker starts with its cluster already there. It
 * starts in a folder of the worker's and moves into the task's folder when the run begins (the
 * `run` message names it). It is used only by a task that would have started the same bridge (same Python, same
 * checkout, same cluster files), only while the kubeconfig it imported against is unchanged, and
 * only within MAX_AGE_MS of its start, so edits to the AIOpsLab checkout reach the runs that
 * start after that; otherwise it is stopped and the task starts its own.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { PreparedBridge } from './preparedBridge.js';

/** How long a bridge may wait for a task; then it is stopped (bounds how stale its imports can be). */
export const MAX_AGE_MS = 60_000;

export interface WarmBridgeSpec {
  python: string;
  aiopslabDir: string;
  cluster: { name: string; context: string; kubeconfig: string; home: string };
}

export interface WarmBridgeOptions {
  /** The worker's own folder (`<stateDir>/workers/<id>`); each warm bridge starts in a folder inside it. */
  workerDir: string;
  baseEnv: NodeJS.ProcessEnv;
  secretValues: readonly string[];
  maxAgeMs?: number;
  onError?(err: Error): void;
}

const specKey = (s: WarmBridgeSpec) => JSON.stringify([s.python, s.aiopslabDir, s.cluster.name, s.cluster.context, s.cluster.kubeconfig, s.cluster.home]);

interface Held {
  bridge: PreparedBridge;
  key: string;
  /** The process has exited and its start-up folder is removed. */
  gone: Promise<void>;
  timer: NodeJS.Timeout;
}

export class WarmBridge {
  private held: Held | null = null;
  /** The start in progress, so a take() right after fill() gets its bridge. */
  private filling: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly o: WarmBridgeOptions) {}

  /** Starts a bridge for `spec` unless one is held; nothing when the worker has no cluster yet. */
  fill(spec: WarmBridgeSpec): Promise<void> {
    if (this.closed || this.held || this.filling) return this.filling ?? Promise.resolve();
    this.filling = this.start(spec).catch((e) => this.o.onError?.(e as Error)).finally(() => { this.filling = null; });
    return this.filling;
  }

  /** The held bridge when it was started for `spec` and is alive and fresh (it is then the caller's); else null. */
  async take(spec: WarmBridgeSpec): Promise<PreparedBridge | null> {
    await this.filling;
    const h = this.held;
    if (!h) return null;
    this.held = null;
    clearTimeout(h.timer);
    if (h.key !== specKey(spec) || !h.bridge.isAlive()) {
      await this.stop(h);
      return null;
    }
    return h.bridge;
  }

  /** The held bridge's process id, if one is held. */
  get pid(): number | undefined {
    return this.held?.bridge.pid;
  }

  /** Resolves when the held bridge's process has exited (at once when none is held). */
  async heldExited(): Promise<void> {
    await this.held?.bridge.whenExited();
  }

  /** Stops the held bridge, if any. */
  async discard(): Promise<void> {
    await this.filling;
    const h = this.held;
    this.held = null;
    if (h) {
      clearTimeout(h.timer);
      await this.stop(h);
    }
  }

  /** Stops the held bridge and starts no more (the worker is stopping). */
  async close(): Promise<void> {
    this.closed = true;
    await this.discard();
  }

  private async start(spec: WarmBridgeSpec): Promise<void> {
    const dir = path.join(this.o.workerDir, `warm-${randomBytes(4).toString('hex')}`);
    const bridge = await PreparedBridge.start({
      python: spec.python, aiopslabDir: spec.aiopslabDir, workDir: dir, cluster: spec.cluster, baseEnv: this.o.baseEnv, secretValues: this.o.secretValues,
    });
    if (!bridge) return;
    // Its folder holds only the start-up's temp files (a run works in its task's folder); it goes with the process.
    const gone = bridge.whenExited().then(() => rm(dir, { recursive: true, force: true })).catch(() => {});
    const h: Held = { bridge, key: specKey(spec), gone, timer: setTimeout(() => void this.expire(h), this.o.maxAgeMs ?? MAX_AGE_MS) };
    h.timer.unref();
    if (this.closed) return void (await this.stop(h));
    this.held = h;
  }

  private async expire(h: Held): Promise<void> {
    if (this.held !== h) return;
    this.held = null;
    await this.stop(h);
  }

  private async stop(h: Held): Promise<void> {
    await h.bridge.discard();
    await h.gone;
  }
}
