/**
 * 4. Conversation append: appendMessage() of 8 KB messages, one at a time, to conversations that
 * grow to 1,000 messages, as the LLM agent appends them during a run (user observations, and
 * assistant replies with their call's usage). Several conversations are appended round-robin, so
 * the samples at message 10, 100 and 1,000 are spread over the whole run rather than taken at
 * one moment. A durable one-row INSERT on the same server is timed alongside: the commit floor
 * (WAL flush) that any durable write pays there.
 */
import type { BenchServer } from './benchDatabase.js';
import type { BenchOptions, BenchResult } from './benchResult.js';
import { appendMessage, createConversation } from '../src/store/conversations.js';
import { submitTask } from '../src/queue/submitTask.js';
import { round, summarize } from './stats.js';

export interface AppendOptions {
  conversations: number;
  messages: number;
  messageBytes: number;
}

const WORDS = ['pod', 'service', 'namespace', 'kubectl', 'get', 'describe', 'logs', 'error', 'timeout', 'connection', 'refused',
  'deployment', 'replica', 'container', 'restart', 'CrashLoopBackOff', 'Running', 'Pending', 'user-service', 'mongodb', 'port',
  '9090', 'targetPort', 'endpoint', 'latency', 'trace', 'span', 'metric', 'the', 'a', 'is', 'was', 'not', 'and', 'to', 'of'];

/** Text like an observation or a reply: words, numbers and line breaks, different for every seed. */
export function messageText(bytes: number, seed: number): string {
  let x = seed * 2654435761 >>> 0;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const r = next();
    const w = r % 11 === 0 ? String(r % 100000) : WORDS[r % WORDS.length]!;
    const sep = r % 13 === 0 ? '\n' : ' ';
    parts.push(w, sep);
    n += w.length + 1;
  }
  return parts.join('').slice(0, bytes);
}

/** Message windows reported: the 20 messages around 10, 100 and 1,000. */
export function windowsFor(messages: number): Array<{ name: string; from: number; to: number }> {
  const w = [{ name: 'at_10', from: 1, to: 20 }, { name: 'at_100', from: 91, to: 110 }, { name: 'at_1000', from: 981, to: 1000 }];
  return w.filter((x) => x.to <= messages);
}

export async function benchConversationAppend(server: BenchServer, o: AppendOptions, b: BenchOptions): Promise<BenchResult> {
  const db = await server.createProductDatabase('append');
  const latencies: number[][] = [];
  const floor: number[] = [];
  try {
    await db.pool.query('CREATE TABLE bench_commit_floor (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz DEFAULT now())');
    const { task } = await submitTask(db.pool, {
      problemId: 'k8s_target_port-misconfig-detection-1',
      parameters: { max_steps: 1000, timeout_minutes: 180, priority: 5, agent_config: { model: 'openai/gpt-4o-mini' } },
      maxAttempts: 1,
    });
    const ids: string[] = [];
    for (let c = 0; c < o.conversations; c++) {
      const conv = await createConversation(db.pool, {
        taskId: task.id, attempt: c + 1, modelName: 'openai/gpt-4o-mini', provider: 'openrouter', llmConfig: { temperature: 0.5 },
        metadata: { problem_id: task.problem_id, worker_id: 'bench-001' },
      });
      ids.push(conv.id);
      latencies.push([]);
    }
    const texts = Array.from({ length: 64 }, (_, i) => messageText(o.messageBytes, i + 1));
    for (let m = 1; m <= o.messages; m++) {
      for (let c = 0; c < ids.length; c++) {
        const assistant = m % 2 === 0;
        const t0 = performance.now();
        await appendMessage(db.pool, ids[c]!, {
          role: assistant ? 'assistant' : 'user',
          content: texts[(m * 7 + c) % texts.length]!,
          step: Math.ceil(m / 2),
          metadata: assistant ? { type: 'action', latency_ms: 812, finish_reason: 'stop', model: 'openai/gpt-4o-mini' } : { type: 'observation' },
          call: assistant ? { prompt_tokens: 2000 + m, completion_tokens: 120, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 2120 + m, cost_usd: 0.00037 } : undefined,
        });
        latencies[c]!.push(performance.now() - t0);
      }
      if (m % 5 === 0) {
        const t0 = performance.now();
        await db.pool.query('INSERT INTO bench_commit_floor DEFAULT VALUES');
        floor.push(performance.now() - t0);
      }
      if (m % 250 === 0) b.log(`  append: message ${m}/${o.messages}`);
    }
  } finally {
    await db.drop();
  }

  const windows = windowsFor(o.messages);
  const byWindow = Object.fromEntries(windows.map((w) => [w.name, summarize(latencies.flatMap((l) => l.slice(w.from - 1, w.to)))]));
  const first = summarize(latencies.flatMap((l) => l.slice(0, 100)));
  const last = summarize(latencies.flatMap((l) => l.slice(-100)));
  const slope = slopePerThousand(latencies);
  const at1000 = byWindow.at_1000 ?? last;
  const at10 = byWindow.at_10 ?? first;
  const growth = round(last.p50 / first.p50, 2);
  const floorSummary = summarize(floor);
  return {
    id: 'conversation_append',
    title: 'Conversation append cost per message',
    measures: `appendMessage() of ${o.messageBytes}-byte messages (alternating observation / assistant reply with usage), ${o.conversations} conversation(s) × ${o.messages} messages appended round-robin; `
      + 'each sample is one call: one statement (INSERT the message + UPDATE the conversation totals), committed durably. Windows: the 20 messages around 10, 100, 1,000.',
    goals: [
      { goal: 'p99 ≤ 5 ms at message 1,000', measured: `p99 ${at1000.p99} ms (p50 ${at1000.p50} ms); durable-commit floor on this server p99 ${floorSummary.p99} ms`, met: at1000.p99 <= 5 },
      { goal: 'no growth with conversation length', measured: `p50 at 10: ${at10.p50} ms, at 1,000: ${at1000.p50} ms; last 100 / first 100 p50 = ${growth}×; slope ${slope} ms per 1,000 messages`, met: growth <= 1.25 },
    ],
    data: {
      conversations: o.conversations, messages: o.messages, message_bytes: o.messageBytes,
      ...byWindow,
      first_100: first, last_100: last,
      growth_last100_over_first100_p50: growth,
      slope_ms_per_1000_messages: slope,
      durable_commit_floor: floorSummary,
    },
    notes: [],
  };
}

/** Least-squares slope of latency against message number, in ms per 1,000 messages. */
function slopePerThousand(series: number[][]): number {
  let n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const s of series) {
    s.forEach((y, i) => { const x = i + 1; n++; sx += x; sy += y; sxx += x * x; sxy += x * y; });
  }
  const d = n * sxx - sx * sx;
  return d === 0 ? 0 : round(((n * sxy - sx * sy) / d) * 1000, 3);
}
