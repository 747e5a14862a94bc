/**
 * A task's bridge started while the worker is still checking its cluster, importing AIOpsLab
 * meanwhile: the Python start and the framework's imports (seconds with the real AIOpsLab) then
 * overlap the check instead of following it (bench/RESULTS.md, executor overhead).
 *
 * Only the outcome of the check is missing when it starts: the cluster's names and paths are fixed
 * per worker. AIOpsLab's observer reads $HOME/.kube/config at import, so the run adopts this process
 * only when the check left that file as it was; otherwise (a cluster created or recreated, a new API
 * port) the process is stopped and the run starts a fresh one. Until adopted, its events are kept
 * and handed to the run in order; its output goes to the task's log from the start.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { homeKubeconfigOf } from '../cluster/workerFiles.js';
import { bridgeEnvironment } from './bridgeEnvironment.js';
import { BridgeProcess } from './bridgeProcess.js';
import { PROTOCOL_VERSION, type BridgeEvent } from './protocol.js';

export interface BridgeLaunch {
  python: string;
  aiopslabDir: string;
  /** The task's folder: cwd of the bridge, with results/ and tmp/ inside. */
  workDir: string;
  cluster: { name: string; context: string; kubeconfig: string; home: string };
  baseEnv: NodeJS.ProcessEnv;
  secretValues?: readonly string[];
  onOutput(line: string, stream: 'stdout' | 'stderr'): void;
}

export interface BridgeHandlers {
  onEvent(event: BridgeEvent): void;
  onProtocolError(error: Error): void;
}

/** The task folders the bridge needs, then the process (environment scrubbed of secrets). */
export async function launchBridge(o: BridgeLaunch, handlers: BridgeHandlers): Promise<BridgeProcess> {
  const tmpDir = path.join(o.workDir, 'tmp');
  await mkdir(path.join(o.workDir, 'results'), { recursive: true });
  await mkdir(tmpDir, { recursive: true });
  const env = bridgeEnvironment(o.baseEnv, { cluster: o.cluster, tmpDir, secretValues: o.secretValues });
  return new BridgeProcess({ python: o.python, cwd: o.workDir, env, onEvent: handlers.onEvent, onProtocolError: handlers.onProtocolError, onOutput: o.onOutput });
}

/** What AIOpsLab's observer reads at import; null when there is none yet. */
function readHomeKubeconfig(home: string): Promise<string | null> {
  return readFile(homeKubeconfigOf(home), 'utf8').catch(() => null);
}

type Held = { event: BridgeEvent } | { protocolError: Error };

export class PreparedBridge {
  /** performance.now() when the process was started. */
  readonly startedAt = performance.now();
  private held: Held[] = [];
  private handlers: BridgeHandlers | null = null;
  private discarded = false;
  private taken = false;
  private settle: ((prepared: boolean) => void) | null = null;
  /** True once AIOpsLab is imported; false if the bridge failed or exited first. */
  readonly prepared = new Promise<boolean>((resolve) => { this.settle = resolve; });

  private constructor(private readonly launch: BridgeLaunch, private readonly kubeconfigAtStart: string, private process: BridgeProcess | null = null) {}

  /**
   * Starts the bridge and sends `prepare` when it says hello. Returns null when there is nothing
   * to prepare against: no kubeconfig yet (the worker's first cluster is still to be created).
   */
  static async start(launch: BridgeLaunch): Promise<PreparedBridge | null> {
    const kubeconfig = await readHomeKubeconfig(launch.cluster.home);
    if (kubeconfig === null) return null;
    const prepared = new PreparedBridge(launch, kubeconfig);
    prepared.process = await launchBridge(launch, {
      onEvent: (e) => prepared.onEvent(e),
      onProtocolError: (e) => prepared.hold({ protocolError: e }),
    });
    void prepared.process.exited.then(() => prepared.settle?.(false));
    return prepared;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  private onEvent(e: BridgeEvent): void {
    if (e.type === 'phase' && e.phase === 'prepared') this.settle?.(true);
    if (e.type === 'error' || e.type === 'bye') this.settle?.(false);
    if (e.type === 'hello' && e.protocol === PROTOCOL_VERSION && !this.discarded) {
      this.process!.send({ type: 'prepare', protocol: PROTOCOL_VERSION, aiopslab_dir: this.launch.aiopslabDir, tmp_dir: path.join(this.launch.workDir, 'tmp') });
    }
    this.hold({ event: e });
  }

  private hold(h: Held): void {
    if (!this.handlers) {
      this.held.push(h);
      return;
    }
    if ('event' in h) this.handlers.onEvent(h.event);
    else this.handlers.onProtocolError(h.protocolError);
  }

  /**
   * The process, for the run to adopt, when the kubeconfig AIOpsLab read at import is still the
   * cluster's; otherwise it is stopped and null returned. The run then calls attach().
   */
  async take(): Promise<BridgeProcess | null> {
    const now = await readHomeKubeconfig(this.launch.cluster.home);
    if (now !== this.kubeconfigAtStart || this.discarded) {
      await this.discard();
      return null;
    }
    this.taken = true;
    return this.process;
  }

  /** From now on events go to the run; those kept so far first, in order. */
  attach(handlers: BridgeHandlers): void {
    this.handlers = handlers;
    for (const h of this.held.splice(0)) this.hold(h);
  }

  /** Stops the process if the run did not adopt it (SIGTERM, then SIGKILL of its group). */
  async discard(graceMs = 5_000): Promise<void> {
    if (this.taken || !this.process) return;
    this.discarded = true;
    const p = this.process;
    p.signal('SIGTERM');
    if (!(await p.waitExit(graceMs))) p.signal('SIGKILL');
    await p.exited;
  }
}
