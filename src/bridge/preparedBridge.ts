/**
 * A task's bridge started before the task's run needs it — while the previous run tore down
 * (warmBridge.ts) or alongside the cluster check — importing AIOpsLab meanwhile: the Python start
 * and the framework's imports (seconds with the real AIOpsLab) then leave the task's path.
 *
 * The cluster's names and paths are fixed per worker, so nothing task-specific is missing at the
 * start. AIOpsLab's observer reads $HOME/.kube/config at import, so a run adopts this process only
 * while that file is as it was (a cluster created or recreated, a new API port: the process is
 * stopped and the run starts a fresh one). Until adopted, its events are kept and handed to the run
 * in order, and its output is kept until routed to a task's log.
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
type OutputSink = BridgeLaunch['onOutput'];

/** Output kept for a bridge nobody reads yet (a warm one's import warnings); beyond this, the oldest lines go. */
const HELD_OUTPUT_LINES = 1_000;

export class PreparedBridge {
  /** performance.now() when the process was started. */
  readonly startedAt = performance.now();
  private preparedAt: number | null = null;
  private takenAt: number | null = null;
  private held: Held[] = [];
  private heldOutput: Array<[string, 'stdout' | 'stderr']> = [];
  private droppedOutput = 0;
  private output: OutputSink | null = null;
  private handlers: BridgeHandlers | null = null;
  private discarded = false;
  private taken = false;
  private settle: ((prepared: boolean) => void) | null = null;
  /** True once AIOpsLab is imported; false if the bridge failed or exited first. */
  readonly prepared = new Promise<boolean>((resolve) => { this.settle = resolve; });

  private constructor(private readonly launch: Omit<BridgeLaunch, 'onOutput'>, private readonly kubeconfigAtStart: string, private process: BridgeProcess | null = null) {}

  /**
   * Starts the bridge and sends `prepare` when it says hello. Returns null when there is nothing
   * to prepare against: no kubeconfig yet (the worker's first cluster is still to be created).
   */
  static async start(launch: Omit<BridgeLaunch, 'onOutput'> & { onOutput?: OutputSink }): Promise<PreparedBridge | null> {
    const kubeconfig = await readHomeKubeconfig(launch.cluster.home);
    if (kubeconfig === null) return null;
    const prepared = new PreparedBridge(launch, kubeconfig);
    if (launch.onOutput) prepared.routeOutput(launch.onOutput);
    prepared.process = await launchBridge({ ...launch, onOutput: (line, stream) => prepared.onOutput(line, stream) }, {
      onEvent: (e) => prepared.onEvent(e),
      onProtocolError: (e) => prepared.hold({ protocolError: e }),
    });
    void prepared.process.exited.then(() => prepared.settle?.(false));
    return prepared;
  }

  /** Resolves when the process has exited. */
  async whenExited(): Promise<void> {
    await this.process?.exited;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Whether the process is still running (a warm bridge can die while it waits). */
  isAlive(): boolean {
    return !!this.process && !this.process.isExited() && !this.discarded;
  }

  /** How much of the bridge's start-up happened before the run took it: until AIOpsLab was imported, or until taken. */
  hiddenStartupMs(): number {
    const end = Math.min(this.preparedAt ?? Infinity, this.takenAt ?? performance.now());
    return Math.round(end - this.startedAt);
  }

  /** AIOpsLab's output from now on goes to `sink`, after what was kept until now. */
  routeOutput(sink: OutputSink): void {
    if (this.droppedOutput) sink(`[${this.droppedOutput} earlier line(s) of output from the bridge's start-up not kept]`, 'stderr');
    for (const [line, stream] of this.heldOutput.splice(0)) sink(line, stream);
    this.droppedOutput = 0;
    this.output = sink;
  }

  private onOutput(line: string, stream: 'stdout' | 'stderr'): void {
    if (this.output) return this.output(line, stream);
    this.heldOutput.push([line, stream]);
    if (this.heldOutput.length > HELD_OUTPUT_LINES) {
      this.heldOutput.shift();
      this.droppedOutput++;
    }
  }

  private onEvent(e: BridgeEvent): void {
    if (e.type === 'phase' && e.phase === 'prepared') {
      this.preparedAt ??= performance.now();
      this.settle?.(true);
    }
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
    if (now !== this.kubeconfigAtStart || this.discarded || !this.process || this.process.isExited()) {
      await this.discard();
      return null;
    }
    this.taken = true;
    this.takenAt = performance.now();
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
