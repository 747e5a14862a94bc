/**
 * 6. JSONL export of conversations through GET /api/v1/llm-conversations/export (what the CLI's
 * `export` calls), served by the API in its own process. The client reads the stream and counts
 * bytes without keeping them; the server samples its resident memory every 10 ms. Memory is flat
 * when exporting all the conversations takes no more memory than exporting a fifth of them
 * (allowing 16 MB for allocator and collector noise): it does not grow with the export's size.
 */
import http from 'node:http';
import { startApiInProcess, startApiProcess, type ApiProcess, type RssReport } from './apiServerProcess.js';
import type { BenchServer } from './benchDatabase.js';
import type { BenchOptions, BenchResult } from './benchResult.js';
import { round } from './stats.js';
import type { Pool } from '../src/store/pool.js';

export interface ExportOptions {
  conversations: number;
  apiHost: 'child' | 'in-process';
}

/** Messages per conversation: system prompt, instructions, then observation/action pairs. */
export const MESSAGES_PER_CONVERSATION = 14;

/**
 * Ended conversations of completed tasks, with messages of realistic sizes: a 2.5 KB system
 * prompt, 1 KB of instructions, 1.5 KB observations (kubectl output) and short replies.
 */
export async function seedConversations(pool: Pool, n: number): Promise<void> {
  const c = await pool.connect();
  try {
    // Triggers are skipped for the load only: they would announce rows nobody listens to.
    await c.query('SET session_replication_role = replica');
    await c.query(
      `INSERT INTO tasks (problem_id, status, parameters, worker_id, attempt, started_at, completed_at, created_at, result, request_hash)
       SELECT 'k8s_target_port-misconfig-detection-1', 'completed', '{"max_steps": 10, "agent_config": {"model": "openai/gpt-4o-mini"}}'::jsonb,
              'worker-001-internal', 1, now() - make_interval(secs => $1 - i + 60), now() - make_interval(secs => $1 - i),
              now() - make_interval(secs => $1 - i + 61), '{"success": true, "reward": 1}'::jsonb, md5(i::text)
         FROM generate_series(1, $1) AS i`, [n]);
    await c.query(
      `INSERT INTO llm_conversations (task_id, attempt, session_id, started_at, ended_at, model_name, provider, llm_config, metadata,
                                      total_messages, prompt_tokens, completion_tokens, total_tokens, cost_usd, llm_calls)
       SELECT t.id, 1, md5(t.id::text), t.started_at, t.completed_at, 'openai/gpt-4o-mini', 'openrouter',
              '{"temperature": 0.5, "max_tokens": 1024, "requested_model": "gpt-4o-mini", "template_source": "clients/utils/templates.py"}'::jsonb,
              jsonb_build_object('problem_id', t.problem_id, 'task_type', 'detection', 'worker_id', t.worker_id, 'status', 'completed',
                                 'success', true, 'reward', 1, 'outcome', 'submitted',
                                 'results', jsonb_build_object('Detection Accuracy', 'Correct', 'TTD', 41.2, 'steps', 6, 'in_tokens', 21000, 'out_tokens', 900)),
              $1, 21000, 900, 21900, 0.0036, 6
         FROM tasks t`, [MESSAGES_PER_CONVERSATION]);
    await c.query(
      `INSERT INTO llm_messages (conversation_id, seq, created_at, role, content, step, metadata)
       SELECT c.id, s, c.started_at + make_interval(secs => s),
              CASE WHEN s = 1 THEN 'system' WHEN s = 2 OR s % 2 = 1 THEN 'user' ELSE 'assistant' END,
              CASE WHEN s = 1 THEN repeat('You are an expert DevOps engineer assigned to detect anomalies in a deployed service. ', 30)
                   WHEN s = 2 THEN repeat('Respond with one of the above APIs as your next action, in a markdown code block. ', 12)
                   WHEN s % 2 = 1 THEN repeat(E'user-service-6d5f8b7c9-' || substr(md5(c.id::text || s), 1, 5) || E'   1/1   Running   0   3h\\n', 28)
                   ELSE E'Action: \`\`\`\\nexec_shell("kubectl get pods -n test-social-network -o wide")\\n\`\`\`' || repeat(' ', s % 7) END,
              CASE WHEN s <= 2 THEN NULL ELSE (s - 1) / 2 END,
              CASE WHEN s % 2 = 0 AND s > 2 THEN '{"type": "action", "latency_ms": 812, "finish_reason": "stop"}'::jsonb ELSE '{"type": "observation"}'::jsonb END
         FROM llm_conversations c, generate_series(1, $1) AS s`, [MESSAGES_PER_CONVERSATION]);
    await c.query('SET session_replication_role = DEFAULT');
    await c.query(`SELECT task_counts_rebuild() WHERE to_regproc('task_counts_rebuild') IS NOT NULL`);
    await c.query('VACUUM (ANALYZE) tasks, llm_conversations, llm_messages');
  } finally {
    c.release();
  }
}

/** Streams the export, counting bytes and lines without keeping them. */
export function streamExport(url: string, query = ''): Promise<{ bytes: number; lines: number; firstByteMs: number; status: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get(`${url}/api/v1/llm-conversations/export${query}`, (res) => {
      let bytes = 0;
      let lines = 0;
      let firstByteMs = -1;
      res.on('data', (chunk: Buffer) => {
        if (firstByteMs < 0) firstByteMs = performance.now() - t0;
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      });
      res.on('end', () => resolve({ bytes, lines, firstByteMs, status: res.statusCode ?? 0 }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Peak resident memory in the first and the second half of the samples. */
export function rssHalves(rss: RssReport): { firstHalfPeak: number; secondHalfPeak: number } {
  const s = rss.samples;
  const mid = Math.floor(s.length / 2);
  const peak = (a: Array<[number, number]>) => a.reduce((m, [, v]) => Math.max(m, v), 0);
  return { firstHalfPeak: peak(s.slice(0, mid)), secondHalfPeak: peak(s.slice(mid)) };
}

const MB = 1024 * 1024;

export async function benchExport(server: BenchServer, o: ExportOptions, b: BenchOptions): Promise<BenchResult> {
  const db = await server.createProductDatabase('export');
  let api: ApiProcess | null = null;
  try {
    b.log(`  seeding ${o.conversations} conversations…`);
    await seedConversations(db.pool, o.conversations);
    api = o.apiHost === 'child' ? await startApiProcess(db.url) : await startApiInProcess(db);
    const url = api.url;
    // A fifth of the conversations (the newest), for the memory comparison; also warms the server up.
    const since = (await db.pool.query<{ at: Date }>('SELECT started_at AS at FROM llm_conversations ORDER BY started_at OFFSET $1 LIMIT 1', [Math.floor(o.conversations * 0.8)])).rows[0]!.at;
    const small = await api.sampleRss(() => streamExport(url, `?since=${encodeURIComponent(since.toISOString())}`));
    const t0 = performance.now();
    const { value: got, rss } = await api.sampleRss(() => streamExport(url));
    const seconds = (performance.now() - t0) / 1000;
    if (got.status !== 200) throw new Error(`export answered ${got.status}`);
    if (got.lines !== o.conversations) throw new Error(`export wrote ${got.lines} lines for ${o.conversations} conversations`);
    const mbPerS = round(got.bytes / MB / seconds, 1);
    const halves = rssHalves(rss);
    const growthMb = round((rss.peak - small.rss.peak) / MB, 1);
    const flat = growthMb <= 16;
    return {
      id: 'export',
      title: 'JSONL export of conversations',
      measures: `GET /api/v1/llm-conversations/export of ${o.conversations.toLocaleString('en-US')} ended conversations (${MESSAGES_PER_CONVERSATION} messages each, ~${Math.round(got.bytes / o.conversations / 1024)} KB per line), `
        + 'streamed over HTTP from the API process and read without being kept; resident memory of the API process sampled every 10 ms.',
      goals: [
        { goal: '≥ 50 MB/s', measured: `${mbPerS} MB/s (${round(got.bytes / MB, 1)} MB in ${round(seconds, 2)} s)`, met: mbPerS >= 50 },
        { goal: 'flat memory', measured: `RSS peak ${round(rss.peak / MB, 1)} MB exporting all, ${round(small.rss.peak / MB, 1)} MB exporting a fifth (${small.value.lines} conversations): ${growthMb >= 0 ? '+' : ''}${growthMb} MB`, met: flat },
      ],
      data: {
        conversations: o.conversations, bytes: got.bytes, seconds: round(seconds, 3), mb_per_s: mbPerS, first_byte_ms: round(got.firstByteMs, 1),
        rss_mb: {
          baseline: round(rss.baseline / MB, 1), peak: round(rss.peak / MB, 1), peak_over_baseline: round((rss.peak - rss.baseline) / MB, 1),
          first_half_peak: round(halves.firstHalfPeak / MB, 1), second_half_peak: round(halves.secondHalfPeak / MB, 1),
          fifth_export_peak: round(small.rss.peak / MB, 1), fifth_export_conversations: small.value.lines,
        },
      },
      notes: [],
    };
  } finally {
    await api?.close();
    await db.drop();
  }
}
