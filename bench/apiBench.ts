/**
 * 5. The API under load, served by its own process (as `serve` runs it):
 *   - GET /api/v1/tasks with the filters the dashboard and CLI use, and GET /api/v1/tasks/stats,
 *     over a tasks table of (by default) 1,000,000 rows — latency of sequential requests;
 *   - POST /api/v1/tasks at 50 concurrent connections (autocannon), into that same table.
 */
import autocannon from 'autocannon';
import { BENCH_PROBLEM, seedCatalogs, taskBody } from './apiUnderTest.js';
import { startApiInProcess, startApiProcess, type ApiProcess } from './apiServerProcess.js';
import type { BenchServer } from './benchDatabase.js';
import type { BenchOptions, BenchResult } from './benchResult.js';
import { requestJson } from './httpClient.js';
import { round, summarize } from './stats.js';
import { seedTasks } from './taskTableSeed.js';

export interface ApiOptions {
  tasks: number;
  pending: number;
  listSamples: number;
  statsSamples: number;
  postSeconds: number;
  postConnections: number;
  /** 'child': the API in its own process (the benchmark); 'in-process': for the bench tests. */
  apiHost: 'child' | 'in-process';
}

/** The list queries measured: name → query string. */
export function listFilters(now: Date): Array<[string, string]> {
  const dayAgo = new Date(now.getTime() - 86_400_000).toISOString();
  return [
    ['newest (no filter)', ''],
    ['status=completed', 'status=completed'],
    ['status=running', 'status=running'],
    ['status=pending, oldest first', 'status=pending&sort=created_at'],
    ['status=completed&problem_id', `status=completed&problem_id=${BENCH_PROBLEM}`],
    ['worker_id', 'worker_id=worker-007-internal'],
    ['status=failed,timeout by -completed_at', 'status=failed,timeout&sort=-completed_at'],
    ['problem_id, page 50', `problem_id=${BENCH_PROBLEM}&page=50&page_size=20`],
    ['q=mitigation (substring)', 'q=mitigation'],
    ['created_after 24 h', `created_after=${encodeURIComponent(dayAgo)}`],
  ];
}

export async function benchApi(server: BenchServer, o: ApiOptions, b: BenchOptions): Promise<BenchResult> {
  const db = await server.createProductDatabase('api');
  let api: ApiProcess | null = null;
  try {
    await seedCatalogs(db.pool);
    b.log(`  seeding ${o.tasks} tasks…`);
    const seed = await seedTasks(db.pool, { tasks: o.tasks, pending: o.pending });
    b.log(`  seeded in ${(seed.ms / 1000).toFixed(1)} s`);
    api = o.apiHost === 'child' ? await startApiProcess(db.url) : await startApiInProcess(db);
    const url = api.url;

    // Lists: every filter in turn, so drift in load touches all alike; the first round warms up.
    const filters = listFilters(new Date());
    const lists = new Map<string, { ms: number[]; total: number; estimate: boolean }>(filters.map(([name]) => [name, { ms: [], total: 0, estimate: false }]));
    for (let s = -1; s < o.listSamples; s++) {
      for (const [name, qs] of filters) {
        const t0 = performance.now();
        const r = await requestJson<{ tasks: unknown[]; total: number; total_is_estimate?: boolean }>(`${url}/api/v1/tasks${qs ? `?${qs}` : ''}`);
        const ms = performance.now() - t0;
        if (r.status !== 200) throw new Error(`GET /api/v1/tasks?${qs} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
        const entry = lists.get(name)!;
        if (s >= 0) entry.ms.push(ms);
        entry.total = r.body.total;
        entry.estimate = r.body.total_is_estimate === true;
      }
    }
    const stats: number[] = [];
    let statsBody: Record<string, unknown> = {};
    for (let s = -1; s < o.statsSamples; s++) {
      const t0 = performance.now();
      const r = await requestJson<Record<string, unknown>>(`${url}/api/v1/tasks/stats`);
      if (r.status !== 200) throw new Error(`GET /api/v1/tasks/stats answered ${r.status}`);
      if (s >= 0) stats.push(performance.now() - t0);
      statsBody = r.body;
    }

    b.log(`  POST /api/v1/tasks: ${o.postConnections} connections for ${o.postSeconds} s`);
    const post = await autocannon({
      url: `${url}/api/v1/tasks`,
      method: 'POST',
      connections: o.postConnections,
      duration: o.postSeconds,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(taskBody(0)),
    });

    const perFilter = Object.fromEntries([...lists].map(([name, e]) => [name, { ...summarize(e.ms), total: e.total, total_is_estimate: e.estimate }]));
    const all = summarize([...lists.values()].flatMap((e) => e.ms));
    const worst = [...lists].map(([name, e]) => ({ name, p99: summarize(e.ms).p99 })).sort((x, y) => y.p99 - x.p99)[0]!;
    const statsSummary = summarize(stats);
    const rps = round(post.requests.average, 0);
    const failed = post.non2xx + post.errors + post.timeouts;
    return {
      id: 'api',
      title: 'API: submit rate, list and stats latency',
      measures: `Sequential GET requests from this process to the API in its own process, over a tasks table of ${o.tasks.toLocaleString('en-US')} rows `
        + `(seeded: ${Math.round(seed.ms / 1000)} s); POST /api/v1/tasks with autocannon, ${o.postConnections} connections, ${o.postSeconds} s, into the same table; `
        + 'submissions are validated against the catalogs (89 problems, 350 models) as in production.',
      goals: [
        { goal: 'POST /api/v1/tasks ≥ 1,500 req/s at 50 connections', measured: `${rps} req/s, p99 ${post.latency.p99} ms${failed ? `, ${failed} failed` : ''}`, met: rps >= 1500 && failed === 0 },
        { goal: 'GET /api/v1/tasks (filters) p99 ≤ 50 ms', measured: `all filters p99 ${all.p99} ms; worst: ${worst.name} p99 ${worst.p99} ms`, met: worst.p99 <= 50 },
        { goal: 'GET /api/v1/tasks/stats p99 ≤ 200 ms', measured: `p99 ${statsSummary.p99} ms (p50 ${statsSummary.p50} ms)`, met: statsSummary.p99 <= 200 },
      ],
      data: {
        tasks_in_table: o.tasks,
        post: {
          connections: o.postConnections, seconds: o.postSeconds, requests_per_s: rps, requests: post.requests.total,
          latency_ms: { p50: post.latency.p50, p90: post.latency.p90, p99: post.latency.p99, max: post.latency.max }, non_2xx: post.non2xx, errors: post.errors, timeouts: post.timeouts,
        },
        list_all_filters: all,
        list: perFilter,
        stats: statsSummary,
        stats_total_tasks: statsBody.total_tasks ?? null,
      },
      notes: [],
    };
  } finally {
    await api?.close();
    await db.drop();
  }
}
