/**
 * 1. Submit → start latency with idle workers. One task at a time; each sample waits until the
 * task has started and ended and every worker is idle again. Three paths, interleaved sample by
 * sample so that load on the machine affects them alike:
 *   - http:     POST /api/v1/tasks to the listening API → a no-op TaskWorker's task body starts;
 *   - queue:    submitTask() on the pool → the same;
 *   - graphile: runner.addJob() → graphile-worker's task function starts.
 * Workers of both sides wait on LISTEN/NOTIFY (ours through the EventHub fan-out).
 */
import type { TaskRow } from '../src/queue/taskRecord.js';
import { submitTask } from '../src/queue/submitTask.js';
import { normalizeTaskParameters } from '../src/api/taskRequest.js';
import { startApi, seedCatalogs, taskBody, BENCH_MODEL } from './apiUnderTest.js';
import type { BenchServer } from './benchDatabase.js';
import type { BenchOptions, BenchResult } from './benchResult.js';
import { installGraphileSchema, startGraphileRunner } from './graphileSide.js';
import { requestJson } from './httpClient.js';
import { startNoopWorkers } from './noopWorkers.js';
import { round, sleep, summarize } from './stats.js';

export interface SubmitToStartOptions {
  samples: number;
  warmup: number;
  workers: number;
  /** Pause after each sample so every woken worker is back waiting. */
  gapMs: number;
}

type Path = 'http' | 'queue' | 'graphile';
/** Where a sample's time went: submit → NOTIFY received, NOTIFY → claimTask returned, → body started. */
type Stages = Record<'notify' | 'claim' | 'row_read', number[]>;

export async function benchSubmitToStart(server: BenchServer, o: SubmitToStartOptions, b: BenchOptions): Promise<BenchResult> {
  const ours = await server.createProductDatabase('latency');
  const theirs = await server.createEmptyDatabase('latency_graphile');
  const waiting = new Map<string, { resolve: (t: number) => void }>();
  const started = (key: string) => {
    const at = performance.now();
    const w = waiting.get(key);
    if (w) { waiting.delete(key); w.resolve(at); }
  };
  const finished = new Map<string, () => void>();
  const ended = (key: string) => { finished.get(key)?.(); finished.delete(key); };
  const keyOf = (t: TaskRow) => String((t.parameters.metadata as { bench?: unknown } | undefined)?.bench);

  // Where our time goes: NOTIFY received by the EventHub, claimTask returned, body started.
  const notifiedAt = new Map<string, number>();
  const claimedAt = new Map<string, number>();
  const stages: Record<'http' | 'queue', Stages> = {
    http: { notify: [], claim: [], row_read: [] },
    queue: { notify: [], claim: [], row_read: [] },
  };
  let sampleStart = 0;
  let measuring: 'http' | 'queue' | null = null;

  await seedCatalogs(ours.pool);
  const api = await startApi(ours);
  api.events.subscribe((e) => {
    if (e.channel === 'task_events' && e.payload.status === 'pending') notifiedAt.set(String(e.payload.id), performance.now());
  });
  const workers = await startNoopWorkers({
    pool: ours.pool, events: api.events, count: o.workers,
    onClaimed: (t) => claimedAt.set(t.id, performance.now()),
    onStart: (t) => {
      const now = performance.now();
      const n = notifiedAt.get(t.id);
      const c = claimedAt.get(t.id);
      if (measuring && n !== undefined && c !== undefined) {
        stages[measuring].notify.push(n - sampleStart);
        stages[measuring].claim.push(c - n);
        stages[measuring].row_read.push(now - c);
      }
      notifiedAt.delete(t.id);
      claimedAt.delete(t.id);
      started(keyOf(t));
    },
    onFinish: (t) => ended(keyOf(t)),
  });
  await installGraphileSchema(theirs.url);
  const graphile = await startGraphileRunner({ connectionString: theirs.url, concurrency: o.workers, onStart: (p) => started(String(p.i)) });
  graphile.runner.events.on('job:complete', ({ job }) => ended(String((job.payload as { i: number }).i)));

  const samples: Record<Path, number[]> = { http: [], queue: [], graphile: [] };
  const submitMs: Record<Path, number[]> = { http: [], queue: [], graphile: [] };
  let next = 0;
  const one = async (path: Path): Promise<{ latency: number; submit: number }> => {
    const i = next++;
    const key = String(i);
    const start = new Promise<number>((resolve) => waiting.set(key, { resolve }));
    const end = new Promise<void>((resolve) => finished.set(key, resolve));
    const t0 = performance.now();
    sampleStart = t0;
    if (path === 'http') {
      const r = await requestJson(`${api.url}/api/v1/tasks`, { body: taskBody(i) });
      if (r.status !== 201) throw new Error(`POST /api/v1/tasks answered ${r.status}: ${JSON.stringify(r.body)}`);
    } else if (path === 'queue') {
      const body = taskBody(i) as { problem_id: string; parameters: Record<string, unknown> };
      await submitTask(ours.pool, { problemId: body.problem_id, parameters: normalizeTaskParameters(body, { model: BENCH_MODEL }), maxAttempts: 2 });
    } else {
      await graphile.runner.addJob('noop', { i });
    }
    const submitted = performance.now();
    const at = await withTimeout(start, 10_000, `${path} task ${i} never started`);
    await withTimeout(end, 10_000, `${path} task ${i} never finished`);
    return { latency: at - t0, submit: submitted - t0 };
  };

  try {
    const orders: Path[][] = [['http', 'queue', 'graphile'], ['graphile', 'http', 'queue'], ['queue', 'graphile', 'http']];
    for (let s = 0; s < o.warmup + o.samples; s++) {
      for (const path of orders[s % orders.length]!) {
        measuring = s >= o.warmup && path !== 'graphile' ? path : null;
        const r = await one(path);
        if (s >= o.warmup) { samples[path].push(r.latency); submitMs[path].push(r.submit); }
        await sleep(o.gapMs);
      }
      if ((s + 1) % 100 === 0) b.log(`  submit→start: ${s + 1}/${o.warmup + o.samples}`);
    }
  } finally {
    await workers.stop();
    await graphile.stop();
    await api.close();
    await ours.drop();
    await theirs.drop();
  }

  const http = summarize(samples.http);
  const queue = summarize(samples.queue);
  const gw = summarize(samples.graphile);
  const ratioQueue = round(queue.p50 / gw.p50, 2);
  const ratioHttp = round(http.p50 / gw.p50, 2);
  return {
    id: 'submit_to_start',
    title: 'Submit → start latency, idle workers',
    measures: `From just before the submit call until the task body starts (same process clock), one task at a time, ${o.workers} idle workers per side waiting on LISTEN/NOTIFY. `
      + 'Ours: real TaskWorker loop and EventHub wake-up, claimTask, then a no-op body (finishTask). graphile-worker 0.17 defaults (unbatched), addJob → task function.',
    goals: [
      { goal: 'queue-call p50 ≤ 1.5× graphile-worker addJob p50', measured: `${queue.p50} ms vs ${gw.p50} ms (${ratioQueue}×)`, met: ratioQueue <= 1.5 },
      { goal: 'POST /api/v1/tasks p50 ≤ 1.5× graphile-worker addJob p50', measured: `${http.p50} ms vs ${gw.p50} ms (${ratioHttp}×)`, met: ratioHttp <= 1.5 },
    ],
    data: {
      workers: o.workers, samples: o.samples, warmup: o.warmup,
      http_post: http, queue_call: queue, graphile_add_job: gw,
      submit_call_only: { http_post: summarize(submitMs.http), queue_call: summarize(submitMs.queue), graphile_add_job: summarize(submitMs.graphile) },
      queue_call_stages: stagesOf(stages.queue),
      http_post_stages: stagesOf(stages.http),
      ratio_p50_queue_vs_graphile: ratioQueue, ratio_p50_http_vs_graphile: ratioHttp,
    },
    notes: [],
  };
}

function stagesOf(s: Stages) {
  return { submit_to_notify_received: summarize(s.notify), notify_to_claimed: summarize(s.claim), claimed_to_body_start: summarize(s.row_read) };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); })]).finally(() => clearTimeout(timer));
}
