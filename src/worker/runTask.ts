/**
 * The per-task pipeline of one worker: preflight → cluster → agent + bridge run → finish.
 * Every phase is a timeline row with its duration. It never throws: whatever happens, the task
 * ends in a correct state (or is requeued when the worker is shutting down) and the worker's
 * cluster is marked dirty when AIOpsLab could not clean up after itself.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createLlmAgent, type LlmAgent } from '../agent/llmAgent.js';
import type { EpisodeAgent } from '../bridge/episodeAgent.js';
import type { EpisodeResult } from '../bridge/runEpisode.js';
import { PreparedBridge } from '../bridge/preparedBridge.js';
import { runEpisode } from '../bridge/runEpisode.js';
import type { WarmBridge } from '../bridge/warmBridge.js';
import { summarizeEpisode } from '../bridge/taskOutcome.js';
import type { ClusterHandle } from '../cluster/kindCluster.js';
import { secretValues, type Config } from '../config.js';
import { isAppError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { finishTask, recordLateResult, releaseWorker, requeueTask, type FinalStatus } from '../queue/finishTask.js';
import type { TaskRow } from '../queue/taskRecord.js';
import { setClusterDirty, updateWorkerMetadata } from '../queue/workerRegistry.js';
import { isConnectionError, type Pool } from '../store/pool.js';
import { writeTaskLog, writeTaskLogs, type LogLevel } from '../store/taskLogs.js';
import type { ClusterProvider } from './clusterProvider.js';
import { preflight, type PreflightResult } from './preflight.js';

export type StopReason = 'cancelled' | 'timeout' | 'shutdown' | 'lease_lost';

export interface PipelineDeps {
  pool: Pool;
  config: Config;
  logger: Logger;
  /** Environment the worker's child processes start from (PATH etc.); the bridge scrubs it. */
  env: NodeJS.ProcessEnv;
  clusters: ClusterProvider;
}

export interface TaskRunContext {
  workerId: string;
  clusterDirty: boolean;
  signal: AbortSignal;
  /** The worker's bridge started ahead of this task, if any (warmBridge.ts). */
  warm?: WarmBridge | null;
  /** Told when the run leaves the cluster dirty (it is then recreated before the next task). */
  onClusterDirty?(): void;
}

const MAX_LINE = 64 * 1024;

/** A run started before the cluster check ended is superseded when the check then changes the cluster. */
type RunOutcome = { superseded: false } | { superseded: true; clean: boolean };

/** Buffers captured AIOpsLab output and writes it in batches, in order. */
class OutputCapture {
  private buffer: Array<{ level: LogLevel; message: string; context: Record<string, unknown> }> = [];
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  lines = 0;

  constructor(private readonly pool: Pool, private readonly taskId: string, private readonly logger: Logger) {}

  push(line: string, stream: 'stdout' | 'stderr') {
    this.lines++;
    const message = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)} …[${line.length - MAX_LINE} more characters]` : line;
    this.buffer.push({ level: 'info', message, context: { source: 'aiopslab', stream } });
    if (this.buffer.length >= 200) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), 250);
  }

  flush(): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    const rows = this.buffer;
    this.buffer = [];
    if (rows.length) {
      this.flushing = this.flushing.then(() => writeTaskLogs(this.pool, this.taskId, rows)).catch((e) => {
        this.logger.warn({ task_id: this.taskId, err: (e as Error).message, lines: rows.length }, 'could not store captured output');
      });
    }
    return this.flushing;
  }
}

export async function runClaimedTask(task: TaskRow, ctx: TaskRunContext, deps: PipelineDeps): Promise<void> {
  const { pool, config, logger } = deps;
  const log = logger.child({ task_id: task.id, worker_id: ctx.workerId, problem_id: task.problem_id });
  const timeline = async (level: LogLevel, message: string, context: Record<string, unknown>) => {
    try { await writeTaskLog(pool, task.id, level, message, context); } catch (e) { log.warn({ err: (e as Error).message }, 'timeline write failed'); }
  };
  const t0 = performance.now();
  const since = (t: number) => Math.round(performance.now() - t);
  // Recreated before the next task; the worker is told so that it starts no bridge ahead for it.
  const markClusterDirty = async () => {
    ctx.onClusterDirty?.();
    await setClusterDirty(pool, ctx.workerId, true).catch(() => {});
  };
  let agent: LlmAgent | null = null;

  // `requeue`: the run broke for a reason that is not the task's (the database went away); it goes
  // back to the queue instead of failing.
  const end = async (f: { status: FinalStatus; result: Record<string, unknown> | null; errorType: ErrorCode | null; errorDetails: string | null }, opts: { requeue?: string } = {}) => {
    const reason = ctx.signal.aborted ? (ctx.signal.reason as StopReason) : null;
    const result = f.result;
    const record = async () => {
      if (reason === 'shutdown' || (opts.requeue && reason !== 'cancelled' && reason !== 'lease_lost')) {
        if (!(await requeueTask(pool, task.id, ctx.workerId, opts.requeue ?? 'the worker is shutting down'))) await releaseWorker(pool, ctx.workerId, task.id);
        return;
      }
      if (reason === 'lease_lost') {
        if (result) await recordLateResult(pool, task.id, ctx.workerId, { ...result, stopped_by: 'lease_lost' });
        await releaseWorker(pool, ctx.workerId, task.id);
        return;
      }
      if (reason === 'cancelled') {
        await recordLateResult(pool, task.id, ctx.workerId, { ...(result ?? {}), stopped_by: 'cancelled' });
        await releaseWorker(pool, ctx.workerId, task.id);
        return;
      }
      const final = reason === 'timeout'
        ? { status: 'timeout' as const, result: { ...(result ?? {}), stopped_by: 'timeout' }, errorType: 'timeout' as const, errorDetails: `Task exceeded its timeout of ${task.timeout_minutes} minute(s)` }
        : f;
      const done = await finishTask(pool, { taskId: task.id, workerId: ctx.workerId, ...final });
      if (!done) {
        // Someone else ended it meanwhile (cancel, timeout sweep, lease expiry): keep our data on it.
        if (final.result) await recordLateResult(pool, task.id, ctx.workerId, final.result);
        await releaseWorker(pool, ctx.workerId, task.id);
      }
    };
    // Every step above is guarded by who holds the task, so a retry after a partial success is
    // harmless. While we retry, our heartbeat keeps the lease; once we give up it stops renewing
    // it (we no longer run the task), so lease expiry requeues the task.
    const deadline = Date.now() + 30_000;
    for (let wait = 500; ; wait = Math.min(wait * 2, 5000)) {
      try {
        await record();
        return;
      } catch (e) {
        if (!isConnectionError(e) || Date.now() + wait > deadline) {
          log.error({ err: (e as Error).message }, 'could not record the end of the task; lease expiry will resolve it');
          return;
        }
        log.warn({ err: (e as Error).message }, 'database unavailable while recording the end of the task; retrying');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  };

  const fail = async (e: unknown, phase: string) => {
    const code: ErrorCode = isAppError(e) ? e.code : isConnectionError(e) ? 'database_unavailable' : 'internal';
    const message = e instanceof Error ? e.message : String(e);
    await timeline('error', `${phase} failed: ${message}`, { phase, error_type: code, duration_ms: since(t0) });
    if (!isAppError(e)) log.error({ err: message, stack: (e as Error)?.stack, phase }, 'task pipeline fault');
    await end({ status: 'failed', result: { outcome: `failed_in_${phase}`, success: false, reward: 0 }, errorType: code, errorDetails: message },
      isConnectionError(e) ? { requeue: `the database was unavailable during ${phase}` } : {});
  };

  // 1. Preflight: milliseconds, no cluster touched.
  let pre: PreflightResult;
  const tPre = performance.now();
  try {
    pre = await preflight(task, { pool, config, backend: deps.clusters.backend, env: deps.env });
    await timeline('info', `Preflight passed: ${pre.problem.task_type} problem on ${pre.problem.application}; model ${pre.model.id} via ${pre.model.provider}`, {
      phase: 'preflight', duration_ms: since(tPre), model: pre.model.id, provider: pre.model.provider, task_type: pre.problem.task_type,
    });
  } catch (e) {
    return fail(e, 'preflight');
  }
  if (ctx.signal.aborted) return end({ status: 'failed', result: null, errorType: null, errorDetails: null });

  // 2. The worker's cluster: reused, created, or recreated when dirty. When it is expected to be
  // reused, the run starts at once on a bridge started ahead (the worker's warm one, else one
  // started alongside the check; preparedBridge.ts):
  // AIOpsLab initialises while the cluster is checked, and the agent waits for the check. Before
  // the check changes anything (a new kubeconfig, a repair) it stops that run, and the task then
  // runs afresh on the cluster as the check left it.
  const workDir = path.join(config.stateDir, 'tasks', task.id, `attempt-${task.attempt}`);
  const output = new OutputCapture(pool, task.id, log);
  const planned = ctx.clusterDirty ? null : deps.clusters.plannedHandle(ctx.workerId);
  if (!planned) void ctx.warm?.discard();
  // Where the run's bridge came from, for the timeline.
  let bridgeOrigin: 'warm' | 'alongside_check' = 'alongside_check';
  // The worker's warm bridge when it fits, else one started alongside the check.
  const preparing = planned
    ? (async () => {
      let bridge = await ctx.warm?.take({ python: pre.python, aiopslabDir: pre.aiopslabDir, cluster: planned }) ?? null;
      if (bridge) bridgeOrigin = 'warm';
      else bridge = await PreparedBridge.start({ python: pre.python, aiopslabDir: pre.aiopslabDir, workDir, cluster: planned, baseEnv: deps.env, secretValues: secretValues(config) });
      bridge?.routeOutput((line, stream) => output.push(line, stream));
      return bridge;
    })().catch((e) => {
      log.warn({ err: (e as Error).message }, 'could not start the bridge ahead of the cluster check; it starts after it');
      return null;
    })
    : Promise.resolve(null);
  // true: the check found the cluster reusable as it was; false: it is about to change it, or failed.
  let confirmedAs: boolean | null = null;
  let confirm!: (ok: boolean) => void;
  const confirmed = new Promise<boolean>((resolve) => { confirm = (ok) => { confirmedAs ??= ok; resolve(confirmedAs); }; });
  // The run started before the check's outcome; the check waits for it to stop before changing anything.
  let earlyRunStopped!: () => void;
  const earlyRunEnded = new Promise<void>((resolve) => { earlyRunStopped = resolve; });
  const checkCluster = async (dirty: boolean, beforeChange?: () => Promise<void>) => {
    const tCluster = performance.now();
    const c = await deps.clusters.ensure(ctx.workerId, dirty, { beforeChange });
    if (dirty) await setClusterDirty(pool, ctx.workerId, false);
    await updateWorkerMetadata(pool, ctx.workerId, { kind_cluster: c.handle.name, kube_context: c.handle.context });
    await timeline('info', `Cluster ${c.handle.name} ${c.action}${c.reason ? ` (${c.reason})` : ''}`, { phase: 'cluster', action: c.action, cluster: c.handle.name, duration_ms: c.durationMs ?? since(tCluster) });
    return c;
  };
  const checking = checkCluster(ctx.clusterDirty, async () => { confirm(false); await earlyRunEnded; });
  void checking.then((c) => confirm(c.action === 'reused'), () => confirm(false));
  try {
    const prepared = await preparing;
    let early: RunOutcome | null = null;
    try {
      if (prepared && planned && confirmedAs !== false && !ctx.signal.aborted) early = await runAndFinish(planned, prepared, confirmed);
    } finally {
      earlyRunStopped();
    }
    if (!early) await prepared?.discard(); // not kept idle through the run that follows
    if (early && !early.superseded) return; // the early run was the task's run, and it has ended
    if (early) await timeline('info', 'The run started alongside the cluster check was stopped before the agent was called: the check found the cluster not reusable as it was', { phase: 'cluster' });
    let c: Awaited<ReturnType<ClusterProvider['ensure']>>;
    try {
      c = await checking;
      // A stopped early run that may have left AIOpsLab's work behind on a cluster kept as it was.
      if (early?.superseded && !early.clean && c.action === 'reused') c = await checkCluster(true);
    } catch (e) {
      return await fail(e, 'cluster');
    }
    if (ctx.signal.aborted) return await end({ status: 'failed', result: null, errorType: null, errorDetails: null });
    await runAndFinish(c.handle, null);
  } finally {
    // Whatever happened; a no-op once stopped or adopted by the run.
    await (await preparing)?.discard();
    await checking.catch(() => {});
    await output.flush();
  }

  // 3. The run: a bridge process with AIOpsLab, answered by the LLM agent. With `clusterConfirmed`
  // it started before the cluster check ended: the agent (and its conversation record) is created
  // only once the check confirms the cluster, and a run the check stops is reported as superseded.
  async function runAndFinish(cluster: ClusterHandle, prepared: PreparedBridge | null, clusterConfirmed?: Promise<boolean>): Promise<RunOutcome> {
    let ep: EpisodeResult | null = null;
    const tRun = performance.now();
    let checkAlongsideMs: number | null = null;
    try {
      await mkdir(workDir, { recursive: true });
      const startAgent = async (): Promise<LlmAgent> => {
        agent = await createLlmAgent({
          pool, config, logger: log,
          task: { id: task.id, attempt: task.attempt, problemId: task.problem_id, parameters: task.parameters },
          workerId: ctx.workerId, clusterName: cluster.name, model: pre.model, catalog: pre.catalog, signal: ctx.signal,
        });
        await timeline('info', `Run started: AIOpsLab ${task.problem_id}, max_steps ${task.max_steps}`, {
          phase: 'run', work_dir: workDir, conversation_id: agent.conversationId,
          // warm: started while the worker waited; alongside_check: started with the cluster check; after_check: started now.
          bridge: prepared ? bridgeOrigin : 'after_check',
        });
        return agent;
      };
      // runEpisode calls the agent only after clusterConfirmed resolved true.
      void clusterConfirmed?.then(() => { checkAlongsideMs = since(tRun); });
      const agentStarting = clusterConfirmed ? clusterConfirmed.then((ok) => (ok ? startAgent() : null)) : startAgent();
      agentStarting.catch(() => {}); // observed below, after the episode
      const episodeAgent: EpisodeAgent = clusterConfirmed
        ? {
          init: async (c) => (await agentStarting)?.init(c),
          nextAction: async (r) => (await agentStarting)!.nextAction(r),
          onStep: async (st) => { await (await agentStarting)?.onStep?.(st); },
        }
        : (await agentStarting)!;
      const bridgeAbort = new AbortController();
      const onAbort = () => {
        const r = ctx.signal.reason as StopReason;
        bridgeAbort.abort(r === 'lease_lost' ? 'shutdown' : r);
      };
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
      ep = await runEpisode({
        python: pre.python,
        aiopslabDir: pre.aiopslabDir,
        problemId: task.problem_id,
        maxSteps: task.max_steps,
        workDir,
        cluster: { name: cluster.name, context: cluster.context, kubeconfig: cluster.kubeconfig, home: cluster.home, controlPlaneContainer: cluster.controlPlaneContainer },
        hostShellExpansion: config.hostShellExpansion,
        timeouts: { initSeconds: config.bridgeInitTimeout, stepSeconds: config.bridgeStepTimeout, teardownSeconds: config.bridgeTeardownTimeout },
        stopGraceSeconds: config.stopGraceSeconds,
        baseEnv: deps.env,
        secretValues: secretValues(config),
        prepared,
        clusterConfirmed,
        agent: episodeAgent,
        onOutput: (line, stream) => output.push(line, stream),
        onEvent: (ev) => {
          const e = ev as { type?: string; step?: number; api?: string | null; duration_ms?: number; submitted?: boolean; phase?: string };
          // The next task's bridge starts while this run tears down (warmBridge.ts): its imports are done when that task comes.
          if (e.type === 'phase' && e.phase === 'loop_done') void ctx.warm?.fill({ python: pre.python, aiopslabDir: pre.aiopslabDir, cluster });
          else if (e.type === 'initialized') void timeline('info', 'AIOpsLab initialized: app deployed, fault injected, workload started', { phase: 'init', duration_ms: since(tRun) });
          else if (e.type === 'step') void timeline('info', `Step ${e.step}: ${e.api ?? 'unparsed reply'}${e.submitted ? ' (submitted)' : ''}`, { phase: 'step', step: e.step, api: e.api ?? null, duration_ms: e.duration_ms });
        },
        signal: bridgeAbort.signal,
      });
      ctx.signal.removeEventListener('abort', onAbort);
      if (clusterConfirmed && !(await clusterConfirmed)) return { superseded: true, clean: ep.stopClean };
      agent = (await agentStarting)!;
    } catch (e) {
      await output.flush();
      if (agent) await agent.finish({ status: 'failed', success: null, results: null, reward: null, outcome: null, error_type: isAppError(e) ? e.code : 'internal' }).catch(() => {});
      await markClusterDirty();
      await fail(e, 'run');
      return { superseded: false };
    }
    await output.flush();

    // 4. Finish: AIOpsLab's results as the reward, typed errors, totals, cluster state.
    const summary = summarizeEpisode(task.problem_id, ep);
    let status = summary.status as FinalStatus;
    let errorType = summary.errorType;
    let errorDetails = summary.errorDetails;
    if (ep.agentError && isAppError(ep.agentError)) {
      status = 'failed';
      errorType = ep.agentError.code;
      errorDetails = ep.agentError.message;
    } else if (ep.agentError) {
      status = 'failed';
      errorType = 'internal';
      errorDetails = `Agent fault: ${(ep.agentError as Error)?.message ?? String(ep.agentError)}`;
    }
    const totals = agent.totals();
    const result: Record<string, unknown> = {
      ...summary.result,
      problem_id: task.problem_id,
      conversation_id: agent.conversationId,
      model: pre.model.id,
      usage: totals,
      execution_time: Math.round(since(tRun)) / 1000,
      worker_id: ctx.workerId,
      cluster: cluster.name,
      // cluster_check_alongside_run: how long the check went on after the run had started.
      phase_durations_ms: checkAlongsideMs === null ? ep.phaseDurationsMs : { ...ep.phaseDurationsMs, cluster_check_alongside_run: checkAlongsideMs },
    };
    // The runner judges cleanliness per outcome: a forced stop, a phase time limit, or a fault
    // AIOpsLab could not recover / clean up after (init, eval and teardown failures).
    const dirtyReason = ep.stopClean ? null : ep.stoppedBy ? `the run (${ep.outcome}) could not be stopped cleanly` : `AIOpsLab could not clean up after ${ep.outcome}`;
    if (dirtyReason) {
      await markClusterDirty();
      await timeline('warning', `Cluster ${cluster.name} marked dirty: ${dirtyReason}; it is recreated before the next task`, { phase: 'cleanup', cluster: cluster.name });
    }
    await timeline(status === 'completed' ? 'info' : 'warning',
      `Run finished: outcome ${ep.outcome}, ${ep.steps} step(s), success ${String(result.success)}, ${totals.total_tokens} tokens, $${totals.cost_usd.toFixed(6)}`,
      { phase: 'run_finished', outcome: ep.outcome, duration_ms: since(tRun), steps: ep.steps, stopped_by: ep.stoppedBy, exit_code: ep.exitCode, exit_signal: ep.exitSignal, output_lines: output.lines });
    await agent.finish({
      status: ctx.signal.aborted ? String(ctx.signal.reason) : status,
      success: typeof result.success === 'boolean' ? result.success : null,
      results: ep.results, reward: typeof result.reward === 'number' ? result.reward : null, outcome: ep.outcome, error_type: errorType,
    }).catch((e) => log.warn({ err: (e as Error).message }, 'could not finish the conversation record'));
    await end({ status, result, errorType, errorDetails }, isConnectionError(ep.agentError) ? { requeue: 'the database was unavailable during the run' } : {});
    return { superseded: false };
  }
}
