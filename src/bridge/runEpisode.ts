/**
 * Runs one AIOpsLab problem through one bridge process and reports what happened.
 *
 * The bridge drives AIOpsLab's real orchestrator; this side answers its `get_action` requests with
 * the agent, enforces the init / step / teardown time limits, and stops the process the way
 * INTERFACE.md §10.8 describes: during the agent loop the pending `get_action` is failed (AIOpsLab
 * then recovers its fault itself); otherwise SIGTERM (the bridge turns it into a normal exit so the
 * atexit recovery runs), then SIGKILL of the whole process group after the grace period.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { homeKubeconfigOf } from '../cluster/workerFiles.js';
import { redactSecrets } from '../logger.js';
import type { BridgeExit, BridgeProcess } from './bridgeProcess.js';
import type { EpisodeAgent, EpisodeContext } from './episodeAgent.js';
import { launchBridge, type PreparedBridge } from './preparedBridge.js';
import {
  PROTOCOL_VERSION,
  type BridgeEvent,
  type BridgePhase,
  type CleanupEvent,
  type PhaseMarker,
  type ResultsEvent,
  type StepEvent,
} from './protocol.js';

export type StopReason = 'cancelled' | 'timeout' | 'shutdown';

export interface EpisodeOptions {
  python: string;
  aiopslabDir: string;
  problemId: string;
  maxSteps: number;
  /** Per task: cwd of the bridge; results_dir is <workDir>/results, the private temp folder <workDir>/tmp. */
  workDir: string;
  cluster: { name: string; context: string; kubeconfig: string; home: string; controlPlaneContainer: string | null };
  /** false (default): agent commands reach `docker exec <container> sh -c <cmd>` verbatim, without a host shell. */
  hostShellExpansion: boolean;
  timeouts: { initSeconds: number; stepSeconds: number; teardownSeconds: number };
  stopGraceSeconds: number;
  /** The worker's environment; secrets are removed by bridgeEnvironment.ts. */
  baseEnv: NodeJS.ProcessEnv;
  agent: EpisodeAgent;
  /** AIOpsLab's fd 1/fd 2, line by line, ANSI stripped. */
  onOutput(line: string, stream: 'stdout' | 'stderr'): void;
  /** Every protocol event, for the task timeline. */
  onEvent?(event: BridgeEvent): void;
  /** Abort with reason 'cancelled' | 'timeout' | 'shutdown'. */
  signal: AbortSignal;
  /** Values of configured secrets: any variable containing one is also dropped from the bridge's environment. */
  secretValues?: readonly string[];
  /** Host-wide folder for the telemetry-port lock (default: the OS temp folder), shared by all workers on the host. */
  lockDir?: string;
  /** The name AIOpsLab records as the session's agent. */
  agentName?: string;
  /** A bridge started ahead of the run (preparedBridge.ts); adopted when still valid, else stopped. */
  prepared?: PreparedBridge | null;
  /**
   * The run started before the worker's cluster check ended (runTask.ts): AIOpsLab initialises
   * meanwhile, but the agent is not called before this resolves true; false stops the run.
   */
  clusterConfirmed?: Promise<boolean>;
}

export type EpisodeOutcome = 'submitted' | 'max_steps_reached' | 'aborted_in_init' | 'aborted_in_loop' | 'failed_in_eval' | 'failed_in_teardown';

export interface EpisodeError {
  phase: BridgePhase;
  type: string;
  message: string;
  traceback: string;
}

export interface EpisodeResult {
  outcome: EpisodeOutcome;
  /** orch.session.to_dict() as JSON (trace, results, session_id, start/end), also for aborted runs when a session existed. */
  session: Record<string, unknown> | null;
  /** AIOpsLab's results dict, unchanged; null when evaluation did not complete. */
  results: Record<string, unknown> | null;
  /** Completed environment steps (the final submit included). */
  steps: number;
  error: EpisodeError | null;
  /** What agent.init/nextAction/onStep threw, when that aborted the loop. */
  agentError: unknown | null;
  stoppedBy: StopReason | null;
  /**
   * true when the cluster was left the way AIOpsLab expects between runs: the run finished with its
   * teardown, or an aborted loop/eval was cleaned up, or a stop was honoured cooperatively. false when
   * the bridge had to be signalled, a phase timed out, init failed after it started, or teardown failed:
   * the caller marks the cluster dirty.
   */
  stopClean: boolean;
  exitCode: number | null;
  exitSignal: string | null;
  durationMs: number;
  /** startup, init, loop, eval, teardown (wall time per phase), agent (time in nextAction), env (time in steps). */
  phaseDurationsMs: Record<string, number>;
}

/** The agent's failure as sent to the bridge (and so into AIOpsLab's output); provider messages can echo keys. */
function describeError(e: unknown, secrets: readonly string[]): { code: string; message: string } {
  const err = e as { code?: unknown; message?: unknown } | null;
  const code = err && typeof err.code === 'string' ? err.code : 'agent_error';
  const message = err && typeof err.message === 'string' ? err.message : String(e);
  return { code, message: redactSecrets(message, secrets) };
}

function assertOptions(opts: EpisodeOptions): void {
  const problems: string[] = [];
  if (!opts.python) problems.push('python is empty');
  if (!path.isAbsolute(opts.aiopslabDir)) problems.push('aiopslabDir must be absolute');
  if (!path.isAbsolute(opts.workDir)) problems.push('workDir must be absolute');
  if (!opts.problemId) problems.push('problemId is empty');
  if (!Number.isInteger(opts.maxSteps) || opts.maxSteps < 1) problems.push('maxSteps must be a positive integer');
  for (const [k, v] of Object.entries(opts.timeouts)) if (!(v > 0)) problems.push(`timeouts.${k} must be > 0`);
  if (!(opts.stopGraceSeconds >= 0)) problems.push('stopGraceSeconds must be >= 0');
  if (!opts.agent || typeof opts.agent.nextAction !== 'function') problems.push('agent is missing');
  if (problems.length) throw new TypeError(`runEpisode: ${problems.join('; ')}`);
}

/** Never rejects for AIOpsLab or bridge faults (they are in the result); rejects only on invalid options. */
export async function runEpisode(opts: EpisodeOptions): Promise<EpisodeResult> {
  assertOptions(opts);
  return new EpisodeRun(opts).run();
}

class EpisodeRun {
  private readonly started = performance.now();
  private readonly marks = new Map<string, number>();
  private bridge: BridgeProcess | null = null;
  private phase: BridgePhase = 'startup';
  private helloSeen = false;
  private error: EpisodeError | null = null;
  private results: ResultsEvent | null = null;
  private cleanup: CleanupEvent | null = null;
  private steps = 0;
  private lastStepSubmitted = false;
  private agentError: unknown | null = null;
  private stoppedBy: StopReason | null = null;
  private stopping = false;
  /** The first stop asked for, even of a bridge that had already exited. */
  private stopAsked: { reason: StopReason | null } | null = null;
  private signalled = false;
  private phaseTimedOut = false;
  private teardownFailedAfterAbort = false;
  private agentMs = 0;
  /** How long the agent, AIOpsLab initialised, waited for the cluster check (clusterConfirmed). */
  private clusterWaitMs: number | null = null;
  private envMs = 0;
  private stepRunning = false;
  private agentReady: Promise<void> = Promise.resolve();
  private stepChain: Promise<void> = Promise.resolve();
  /** The bridge was started ahead of the run (see preparedBridge.ts): `run` waits for its `prepared` marker. */
  private preparedRun = false;
  /** How much of that bridge's start-up was done before the run adopted it (off the task's path). */
  private prestartedMs: number | null = null;
  private readonly timers = new Map<'init' | 'step' | 'teardown', NodeJS.Timeout>();

  constructor(private readonly opts: EpisodeOptions) {}

  async run(): Promise<EpisodeResult> {
    const { opts } = this;
    if (opts.signal.aborted) {
      await opts.prepared?.discard();
      this.stoppedBy = stopReason(opts.signal.reason);
      this.error = { phase: 'startup', type: 'Stopped', message: `stopped (${this.stoppedBy}) before the bridge started`, traceback: '' };
      return this.result({ code: null, signal: null, spawnError: null });
    }
    const launch = { python: opts.python, aiopslabDir: opts.aiopslabDir, workDir: opts.workDir, cluster: opts.cluster, baseEnv: opts.baseEnv, secretValues: opts.secretValues, onOutput: opts.onOutput };
    const handlers = {
      onEvent: (e: BridgeEvent) => this.onEvent(e),
      onProtocolError: (e: Error) => this.fail({ phase: 'protocol', type: 'ProtocolError', message: e.message, traceback: '' }, { stop: true }),
    };
    const adopted = opts.prepared ? await opts.prepared.take() : null;
    if (adopted && opts.prepared) {
      this.mark('spawn');
      this.prestartedMs = opts.prepared.hiddenStartupMs();
      this.bridge = adopted;
      this.preparedRun = true;
      opts.prepared.attach(handlers);
    } else {
      await this.ensureHomeKubeconfig();
      this.mark('spawn');
      this.bridge = await launchBridge(launch, handlers);
    }
    this.startTimer('init', opts.timeouts.initSeconds, () => {
      if (!this.marks.has('init_done')) this.timeoutPhase(this.helloSeen ? 'init' : 'startup', `AIOpsLab init did not finish within ${opts.timeouts.initSeconds} s`);
    });

    const onAbort = () => void this.stop(stopReason(opts.signal.reason));
    opts.signal.addEventListener('abort', onAbort, { once: true });
    void opts.clusterConfirmed?.then((ok) => { if (!ok) void this.stop(null); });
    if (opts.signal.aborted) onAbort(); // aborted while the folders were being prepared
    let exit = await this.bridge.exited;
    // A bridge started ahead that died before it began the run (killed, out of memory) is replaced, once.
    if (this.preparedRun && !this.marks.has('startup_started') && !this.stopAsked && !opts.signal.aborted) {
      opts.onOutput(`[the bridge started ahead of this task exited (code ${exit.code ?? 'none'}, signal ${exit.signal ?? 'none'}) before the run began; starting a fresh one]`, 'stderr');
      this.preparedRun = false;
      this.helloSeen = false;
      this.error = null;
      await this.ensureHomeKubeconfig();
      this.bridge = await launchBridge(launch, handlers);
      // Asked while the fresh one was starting (TypeScript cannot see that the await may set it).
      const asked = this.stopAsked as { reason: StopReason | null } | null;
      if (asked) void this.stop(asked.reason);
      exit = await this.bridge.exited;
    }
    opts.signal.removeEventListener('abort', onAbort);
    for (const t of this.timers.values()) clearTimeout(t);
    // Steps reported before the exit are observed before the result is handed back (bounded: an observer may hang).
    await Promise.race([this.stepChain, new Promise((r) => setTimeout(r, 5_000).unref())]);
    this.mark('exit');
    return this.result(exit);
  }

  // ---------------------------------------------------------------- events

  private onEvent(event: BridgeEvent): void {
    try {
      this.opts.onEvent?.(event);
    } catch {
      // The timeline is an observer; it cannot break the run.
    }
    switch (event.type) {
      case 'hello':
        this.helloSeen = true;
        if (event.protocol !== PROTOCOL_VERSION) {
          this.fail({ phase: 'protocol', type: 'ProtocolMismatch', message: `bridge speaks protocol ${event.protocol}, worker speaks ${PROTOCOL_VERSION}`, traceback: '' }, { stop: true });
          return;
        }
        // A prepared bridge gets `run` once it has imported AIOpsLab (its `prepared` marker).
        if (!this.preparedRun) this.sendRun();
        return;
      case 'phase':
        this.onPhase(event.phase);
        return;
      case 'initialized': {
        const ctx: EpisodeContext = {
          problemId: event.problem_id,
          taskDescription: event.task_description,
          instructions: event.instructions,
          actions: event.actions,
          templates: event.templates ?? {},
          sessionId: event.session_id,
        };
        this.agentReady = (async () => {
          // Nothing reaches the agent (or the LLM) before the cluster the run uses is confirmed.
          if (this.opts.clusterConfirmed) {
            const t0 = performance.now();
            const ok = await this.opts.clusterConfirmed;
            this.clusterWaitMs = performance.now() - t0;
            if (!ok) return;
          }
          await this.opts.agent.init(ctx);
        })().catch((e) => {
          this.agentError ??= e;
        });
        return;
      }
      case 'action_request':
        void this.answer(event.step, event.input);
        return;
      case 'step':
        this.onStep(event);
        return;
      case 'results':
        this.results = event;
        return;
      case 'cleanup':
        this.cleanup = event;
        return;
      case 'error':
        this.onBridgeError({ phase: event.phase, type: event.error_type, message: event.message, traceback: event.traceback });
        return;
      default:
        return;
    }
  }

  private sendRun(): void {
    this.bridge!.send({
      type: 'run',
      protocol: PROTOCOL_VERSION,
      problem_id: this.opts.problemId,
      max_steps: this.opts.maxSteps,
      aiopslab_dir: this.opts.aiopslabDir,
      results_dir: path.join(this.opts.workDir, 'results'),
      tmp_dir: path.join(this.opts.workDir, 'tmp'),
      work_dir: this.opts.workDir,
      lock_dir: this.opts.lockDir ?? os.tmpdir(),
      cluster: { name: this.opts.cluster.name, control_plane_container: this.opts.cluster.controlPlaneContainer },
      host_shell_expansion: this.opts.hostShellExpansion,
      agent_name: this.opts.agentName ?? 'aiopslab-executor',
    });
  }

  private onPhase(marker: PhaseMarker): void {
    this.mark(marker);
    switch (marker) {
      case 'prepared':
        if (this.preparedRun) this.sendRun();
        break;
      case 'init_started':
        this.phase = 'init';
        break;
      case 'init_done':
        this.clearTimer('init');
        break;
      case 'loop_started':
        this.phase = 'loop';
        break;
      case 'loop_done':
        this.phase = 'eval';
        this.startTeardownTimer();
        break;
      case 'eval_started':
        this.phase = 'eval';
        break;
      case 'eval_done':
      case 'teardown_started':
        this.phase = 'teardown';
        this.startTeardownTimer();
        break;
      default:
        break;
    }
  }

  private async answer(step: number, input: string): Promise<void> {
    await this.agentReady;
    if (this.opts.clusterConfirmed && !(await this.opts.clusterConfirmed)) return; // being stopped
    // The agent sees every completed step before it is asked for the next action.
    await this.stepChain;
    if (this.stopping) return; // the bridge already fails this get_action
    if (this.agentError !== null) {
      this.bridge!.send({ type: 'action_error', step, ...describeError(this.agentError, this.opts.secretValues ?? []) });
      return;
    }
    const t0 = performance.now();
    let text: string;
    try {
      const reply = await this.opts.agent.nextAction({ step, input });
      text = typeof reply === 'string' ? reply : String(reply ?? '');
    } catch (e) {
      this.agentMs += performance.now() - t0;
      this.agentError ??= e;
      if (!this.stopping) this.bridge!.send({ type: 'action_error', step, ...describeError(e, this.opts.secretValues ?? []) });
      return;
    }
    this.agentMs += performance.now() - t0;
    if (this.stopping) return;
    this.stepRunning = true;
    this.startTimer('step', this.opts.timeouts.stepSeconds, () =>
      this.timeoutPhase('loop', `step ${step} did not finish within ${this.opts.timeouts.stepSeconds} s`),
    );
    this.bridge!.send({ type: 'action_reply', step, text });
  }

  private onStep(event: StepEvent): void {
    this.clearTimer('step');
    this.stepRunning = false;
    this.steps += 1;
    this.lastStepSubmitted = event.submitted;
    this.envMs += event.duration_ms;
    const onStep = this.opts.agent.onStep?.bind(this.opts.agent);
    if (!onStep) return;
    this.stepChain = this.stepChain.then(async () => {
      try {
        await onStep({
          step: event.step,
          action: event.action,
          api: event.api,
          args: event.args,
          kwargs: event.kwargs,
          response: event.response,
          submitted: event.submitted,
          durationMs: event.duration_ms,
        });
      } catch (e) {
        this.agentError ??= e;
      }
    });
  }

  private onBridgeError(err: EpisodeError): void {
    this.clearTimer('step');
    this.stepRunning = false;
    if (this.error && err.phase === 'teardown' && (this.error.phase === 'loop' || this.error.phase === 'eval')) this.teardownFailedAfterAbort = true;
    this.error ??= err;
    // The bridge now cleans up after the failed loop/eval (or exits); that is bounded like a teardown.
    if (err.phase === 'loop' || err.phase === 'eval') this.startTeardownTimer();
  }

  // ---------------------------------------------------------------- stopping

  private fail(err: EpisodeError, opts: { stop: boolean }): void {
    this.error ??= err;
    if (opts.stop) void this.stop(null);
  }

  private timeoutPhase(phase: BridgePhase, message: string): void {
    this.phaseTimedOut = true;
    this.error ??= { phase, type: 'PhaseTimeout', message, traceback: '' };
    void this.stop(null);
  }

  private async stop(reason: StopReason | null): Promise<void> {
    if (reason && !this.stoppedBy) this.stoppedBy = reason;
    this.stopAsked ??= { reason };
    const bridge = this.bridge;
    if (!bridge || bridge.isExited() || this.stopping) return;
    this.stopping = true;
    const grace = this.opts.stopGraceSeconds * 1000;
    // Inside the loop and between steps, failing the pending get_action lets AIOpsLab recover its fault itself.
    const inLoop = this.marks.has('init_done') && !this.marks.has('loop_done') && (this.phase === 'init' || this.phase === 'loop');
    const cooperative = reason !== null && inLoop && !this.stepRunning && !this.error;
    if (cooperative) {
      bridge.send({ type: 'stop', reason });
      if (await bridge.waitExit(grace)) return;
    }
    this.signalled = true;
    bridge.signal('SIGTERM');
    if (await bridge.waitExit(grace)) return;
    bridge.signal('SIGKILL');
  }

  // ---------------------------------------------------------------- timers and marks

  private startTimer(name: 'init' | 'step' | 'teardown', seconds: number, fn: () => void): void {
    this.clearTimer(name);
    this.timers.set(name, setTimeout(fn, seconds * 1000));
  }

  private clearTimer(name: 'init' | 'step' | 'teardown'): void {
    const t = this.timers.get(name);
    if (t) clearTimeout(t);
    this.timers.delete(name);
  }

  private startTeardownTimer(): void {
    if (this.timers.has('teardown')) return;
    this.startTimer('teardown', this.opts.timeouts.teardownSeconds, () =>
      this.timeoutPhase(this.phase === 'eval' ? 'eval' : 'teardown', `AIOpsLab evaluation and teardown did not finish within ${this.opts.timeouts.teardownSeconds} s`),
    );
  }

  private mark(name: string): void {
    if (!this.marks.has(name)) this.marks.set(name, performance.now());
  }

  private span(from: string[], to: string[]): number | null {
    const a = from.map((k) => this.marks.get(k)).find((v) => v !== undefined);
    const b = to.map((k) => this.marks.get(k)).find((v) => v !== undefined);
    return a !== undefined && b !== undefined && b >= a ? Math.round(b - a) : null;
  }

  /** AIOpsLab's observer reads $HOME/.kube/config at import: give the private HOME the cluster's kubeconfig if it has none. */
  private async ensureHomeKubeconfig(): Promise<void> {
    const { home, kubeconfig } = this.opts.cluster;
    const target = homeKubeconfigOf(home);
    if (existsSync(target) || !existsSync(kubeconfig)) return;
    await mkdir(path.dirname(target), { recursive: true });
    await copyFile(kubeconfig, target);
  }

  // ---------------------------------------------------------------- result

  private result(exit: BridgeExit): EpisodeResult {
    if (exit.spawnError && !this.error) {
      this.error = { phase: 'startup', type: 'SpawnError', message: `cannot start ${this.opts.python}: ${exit.spawnError.message}`, traceback: '' };
    }
    const tail = this.bridge?.stderrTail() ?? '';
    let outcome: EpisodeOutcome;
    if (this.error) {
      outcome = outcomeForPhase(this.error.phase);
      if (!this.error.traceback && tail) this.error.traceback = tail;
    } else if (this.results?.return_summary) {
      outcome = this.results.return_summary.submitted || this.lastStepSubmitted ? 'submitted' : 'max_steps_reached';
    } else {
      const phase: BridgePhase = this.helloSeen ? this.phase : 'protocol';
      this.error = {
        phase,
        type: 'BridgeExited',
        message: `the bridge exited (code ${exit.code ?? 'none'}${exit.signal ? `, signal ${exit.signal}` : ''}) without reporting an outcome`,
        traceback: tail,
      };
      outcome = outcomeForPhase(phase);
    }

    return {
      outcome,
      session: this.results?.session ?? null,
      results: this.results?.results ?? null,
      steps: this.steps,
      error: this.error,
      agentError: outcome === 'aborted_in_loop' ? this.agentError : null,
      stoppedBy: this.stoppedBy,
      stopClean: this.isClean(outcome, exit),
      exitCode: exit.code,
      exitSignal: exit.signal,
      durationMs: Math.round(performance.now() - this.started),
      phaseDurationsMs: this.phaseDurations(),
    };
  }

  private isClean(outcome: EpisodeOutcome, exit: BridgeExit): boolean {
    if (!this.marks.has('init_started')) return true; // nothing touched the cluster, however the bridge ended
    if (this.signalled || this.phaseTimedOut || exit.signal !== null) return false;
    if (exit.code !== 0) return false;
    switch (outcome) {
      case 'submitted':
      case 'max_steps_reached':
        return this.marks.has('teardown_done');
      case 'aborted_in_loop':
      case 'failed_in_eval':
        if (this.stoppedBy && outcome === 'aborted_in_loop') return this.error?.type === 'StopRequested';
        return !this.teardownFailedAfterAbort && this.cleanup !== null && this.cleanup.recovered && this.cleanup.app_cleaned && !this.cleanup.error;
      default:
        return false;
    }
  }

  private phaseDurations(): Record<string, number> {
    const out: Record<string, number> = {};
    const put = (name: string, v: number | null) => {
      if (v !== null) out[name] = v;
    };
    put('startup', this.span(['spawn'], ['init_started', 'exit']));
    put('startup_hidden', this.prestartedMs);
    put('cluster_wait', this.clusterWaitMs === null ? null : Math.round(this.clusterWaitMs));
    put('init', this.span(['init_started'], ['init_done', 'exit']));
    put('loop', this.span(['loop_started'], ['loop_done', 'teardown_started', 'exit']));
    put('eval', this.span(['eval_started'], ['eval_done', 'teardown_started', 'exit']));
    put('teardown', this.span(['eval_done', 'teardown_started'], ['teardown_done', 'exit']));
    out.agent = Math.round(this.agentMs);
    out.env = Math.round(this.envMs);
    return out;
  }
}

function stopReason(reason: unknown): StopReason {
  return reason === 'timeout' || reason === 'shutdown' ? reason : 'cancelled';
}

function outcomeForPhase(phase: BridgePhase): EpisodeOutcome {
  switch (phase) {
    case 'loop':
      return 'aborted_in_loop';
    case 'eval':
      return 'failed_in_eval';
    case 'teardown':
      return 'failed_in_teardown';
    default:
      return 'aborted_in_init';
  }
}
