/**
 * The benchmark code (bench/) on tiny sizes: each benchmark runs end to end against the test
 * server and reports well-formed figures. No timing is asserted — only that the benchmarks measure
 * what they claim (every task ran, every line was exported, the seed matches its shape).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchApi, listFilters } from '../bench/apiBench.js';
import { openBenchServer, type BenchServer } from '../bench/benchDatabase.js';
import type { BenchOptions, BenchResult } from '../bench/benchResult.js';
import { cpuReader } from '../bench/cpuTime.js';
import { benchConversationAppend, messageText, windowsFor } from '../bench/conversationAppend.js';
import { benchExecutorOverhead } from '../bench/executorOverhead.js';
import { benchExport, rssHalves, seedConversations, MESSAGES_PER_CONVERSATION } from '../bench/exportBench.js';
import { drainFloor, fillFloor } from '../bench/designFloor.js';
import { benchNoopThroughput, BULK_ROWS } from '../bench/noopThroughput.js';
import { percentile, summarize } from '../bench/stats.js';
import { benchSubmitToStart } from '../bench/submitToStart.js';
import { formatSummary } from '../bench/summary.js';
import { seedTasks, SEED_WORKERS } from '../bench/taskTableSeed.js';
import { exportConversationsJsonl } from '../src/export/conversationExport.js';
import { pgServerUrl } from './helpers/database.js';

let server: BenchServer;
const quiet: BenchOptions = { quick: true, log: () => {} };

beforeAll(async () => { server = await openBenchServer({ databaseUrl: pgServerUrl() }); });
afterAll(async () => { await server?.close(); });

function wellFormed(r: BenchResult): void {
  expect(r.goals.length).toBeGreaterThan(0);
  for (const g of r.goals) expect(typeof g.met === 'boolean' || g.met === null).toBe(true);
  expect(JSON.parse(JSON.stringify(r))).toEqual(r);
}

describe('statistics', () => {
  it('takes percentiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile([...xs].sort((a, b) => a - b), 50)).toBe(50);
    expect(percentile([...xs].sort((a, b) => a - b), 99)).toBe(99);
    expect(summarize(xs)).toMatchObject({ n: 100, min: 1, p50: 50, p99: 99, max: 100, mean: 50.5 });
    expect(summarize([7])).toMatchObject({ n: 1, p50: 7, p99: 7 });
  });
});

describe('queue benchmarks', () => {
  it('submit → start: every path starts every task through the workers it compares', async () => {
    const r = await benchSubmitToStart(server, { samples: 3, warmup: 1, workers: 2, gapMs: 5 }, quiet);
    wellFormed(r);
    for (const k of ['http_post', 'queue_call', 'graphile_add_job']) expect((r.data[k] as { n: number }).n).toBe(3);
    for (const k of ['queue_call_stages', 'http_post_stages']) {
      const stages = r.data[k] as Record<string, { n: number }>;
      expect(stages.notify_to_claimed!.n).toBe(3);
    }
  });

  it('no-op throughput: both sides drain every task', async () => {
    const r = await benchNoopThroughput(server, { tasks: 40, workers: 3, rounds: 1 }, quiet);
    wellFormed(r);
    expect(r.data.ours_tasks_per_s).toBeGreaterThan(0);
    expect(r.data.graphile_jobs_per_s).toBeGreaterThan(0);
    // The test server runs on this host, so its share is known for both sides.
    expect((r.data.design_floor as { tasks_per_s: number }).tasks_per_s).toBeGreaterThan(0);
    const cpu = r.data.cpu_ms_per_task as Record<'ours' | 'graphile' | 'design_floor', { node: number; server: number | null }>;
    for (const side of ['ours', 'graphile', 'design_floor'] as const) {
      expect(cpu[side].node, side).toBeGreaterThan(0);
      expect(cpu[side].server, side).toBeTypeOf('number');
    }
  });

  it('design floor: the task table\'s checks and indexes without its triggers; every task claimed and finished once', async () => {
    const db = await server.createProductDatabase('floor');
    try {
      await fillFloor(db, BULK_ROWS, 30);
      const shape = async (table: string) => (await db.pool.query<{ indexes: number; checks: number; triggers: number }>(
        `SELECT (SELECT count(*)::int FROM pg_index WHERE indrelid = $1::regclass) AS indexes,
                (SELECT count(*)::int FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c') AS checks,
                (SELECT count(*)::int FROM pg_trigger WHERE tgrelid = $1::regclass) AS triggers`, [table])).rows[0]!;
      const tasks = await shape('tasks');
      expect(tasks.indexes).toBeGreaterThan(10);
      expect(await shape('floor_tasks')).toEqual({ ...tasks, triggers: 0 });
      const finished = await drainFloor(db, 4);
      expect(finished.reduce((a, b) => a + b, 0)).toBe(30);
      const left = await db.pool.query(`SELECT status, count(*)::int AS n, count(DISTINCT id)::int AS ids, max(attempt) AS attempts FROM floor_tasks GROUP BY status`);
      expect(left.rows).toEqual([{ status: 'completed', n: 30, ids: 30, attempts: 1 }]);
    } finally {
      await db.drop();
    }
  });

  it('CPU time: work done by the server is counted as the server\'s, not this process\'s', async () => {
    const db = await server.createProductDatabase('cpu_reader');
    try {
      const cpu = await cpuReader(db.pool);
      const before = { node: cpu.node(), server: cpu.server()! };
      expect(before.server).toBeTypeOf('number');
      // A query that keeps one backend busy for a while and sends back one row.
      await db.pool.query('SELECT count(*) FROM generate_series(1, 3000000) AS i WHERE i % 7 = 3');
      const server = cpu.server()! - before.server;
      const node = cpu.node() - before.node;
      expect(server).toBeGreaterThan(50);
      expect(server).toBeGreaterThan(node * 5);
    } finally {
      await db.drop();
    }
  });
});

describe('conversation append', () => {
  it('writes distinct messages of the exact size and reports the windows that fit', async () => {
    expect(messageText(8192, 1)).toHaveLength(8192);
    expect(messageText(100, 1)).toBe(messageText(100, 1));
    expect(messageText(100, 1)).not.toBe(messageText(100, 2));
    expect(windowsFor(1000).map((w) => w.name)).toEqual(['at_10', 'at_100', 'at_1000']);
    const r = await benchConversationAppend(server, { conversations: 2, messages: 30, messageBytes: 512 }, quiet);
    wellFormed(r);
    expect(r.data.at_10).toMatchObject({ n: 40 });
    expect(r.data.at_100).toBeUndefined();
  });
});

describe('API and export', () => {
  it('seeds a tasks table of the requested shape', async () => {
    const db = await server.createProductDatabase('seed_test');
    try {
      await seedTasks(db.pool, { tasks: 3000, pending: 40 });
      const r = await db.pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM tasks GROUP BY status');
      const by = Object.fromEntries(r.rows.map((x) => [x.status, x.n]));
      expect(Object.values(by).reduce((a, b) => a + b, 0)).toBe(3000);
      expect(by.pending).toBe(40);
      expect(by.running).toBe(SEED_WORKERS);
      const w = await db.pool.query<{ n: number }>('SELECT count(DISTINCT worker_id)::int AS n FROM tasks');
      expect(w.rows[0]!.n).toBe(SEED_WORKERS);
      // The indexes dropped for the load are all back.
      const idx = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'tasks'`);
      const fresh = await server.createProductDatabase('seed_test_ref');
      const ref = await fresh.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'tasks'`);
      await fresh.drop();
      expect(idx.rows[0]!.n).toBe(ref.rows[0]!.n);
    } finally {
      await db.drop();
    }
  });

  it('api: lists with every filter, reads stats and submits under load', async () => {
    expect(listFilters(new Date()).length).toBeGreaterThanOrEqual(8);
    const r = await benchApi(server, { tasks: 2000, pending: 10, listSamples: 1, statsSamples: 1, postSeconds: 1, postConnections: 2, apiHost: 'in-process' }, quiet);
    wellFormed(r);
    expect(r.data.stats_total_tasks).toBe(2000);
    const list = r.data.list as Record<string, { total: number; n: number }>;
    expect(list['newest (no filter)']!.total).toBe(2000);
    expect(list['status=running']!.total).toBe(SEED_WORKERS);
    const post = r.data.post as { requests: number; non_2xx: number; errors: number };
    expect(post.requests).toBeGreaterThan(0);
    expect(post.non_2xx + post.errors).toBe(0);
  });

  it('export: seeds exportable conversations and streams one line per conversation', async () => {
    const db = await server.createProductDatabase('export_seed_test');
    try {
      await seedConversations(db.pool, 5);
      const lines: string[] = [];
      for await (const l of exportConversationsJsonl(db.pool, {})) lines.push(l);
      expect(lines).toHaveLength(5);
      const rec = JSON.parse(lines[0]!) as { messages: Array<{ role: string }>; reward: number };
      expect(rec.messages).toHaveLength(MESSAGES_PER_CONVERSATION);
      expect(rec.messages.map((m) => m.role).slice(0, 4)).toEqual(['system', 'user', 'user', 'assistant']);
      expect(rec.reward).toBe(1);
    } finally {
      await db.drop();
    }
    const r = await benchExport(server, { conversations: 30, apiHost: 'in-process' }, quiet);
    wellFormed(r);
    expect(r.data.bytes).toBeGreaterThan(30 * 1000);
    expect(rssHalves({ baseline: 0, peak: 5, samples: [[0, 1], [1, 2], [2, 5], [3, 3]] })).toEqual({ firstHalfPeak: 2, secondHalfPeak: 5 });
  });
});

describe('executor overhead', () => {
  it('runs a task through the whole service and splits its time into phases', async () => {
    const r = await benchExecutorOverhead(server, { tasks: 1, warmup: 0 }, quiet);
    wellFormed(r);
    const phases = r.data.phases as Record<string, { n: number; p50: number }>;
    expect(phases.fixture_init!.p50).toBeGreaterThan(0);
    expect(phases.agent!.p50).toBeGreaterThan(0);
    const e2e = (r.data.end_to_end_db as { p50: number }).p50;
    const fixture = (r.data.fixture_aiopslab_code as { p50: number }).p50;
    expect((r.data.overhead as { p50: number }).p50).toBeCloseTo(e2e - fixture, 0);
  }, 180_000);
});

describe('summary', () => {
  it('prints goals with their status and the figures', () => {
    const text = formatSummary({
      generated_at: '2026-01-01T00:00:00.000Z', mode: 'quick', duration_s: 1,
      machine: { nproc: 2, cpu: 'x', memory_gb: 1, node: 'v20', postgres: '15', postgres_server: 'DATABASE_URL', load_average_at_end: [0, 0, 0] },
      results: [{ id: 'b', title: 'B', measures: 'm', goals: [{ goal: 'g1', measured: '1', met: true }, { goal: 'g2', measured: '2', met: false }], data: { lat: summarize([1, 2, 3]) }, notes: ['n'] }],
      failures: [{ id: 'c', error: 'boom\nstack' }],
    });
    expect(text).toContain('✔ b: g1 — 1');
    expect(text).toContain('✖ b: g2 — 2');
    expect(text).toContain('✖ c: FAILED — boom');
    expect(text).toContain('lat: p50 2');
  });
});
