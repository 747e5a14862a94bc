/**
 * The webhook delivery loop, run by every `start`/`serve`/`worker` process: wakes when a task
 * ends (NOTIFY) or every WEBHOOK_POLL_INTERVAL, claims due deliveries, sends them, records each
 * attempt and schedules retries with backoff. Never throws: a database outage is logged and
 * waited out, and a delivery whose sender died is taken over once its claim expires.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { EventHub } from '../store/eventHub.js';
import { isConnectionError, type Pool } from '../store/pool.js';
import { writeTaskLog } from '../store/taskLogs.js';
import { claimDueDeliveries, recordAttempt, retryDelaySeconds, type DeliveryRow } from './deliveries.js';
import { sendWebhook } from './sender.js';
import { targetPolicyFrom } from './targetPolicy.js';

const TERMINAL = new Set(['completed', 'failed', 'timeout', 'cancelled']);
const BATCH = 10;

export interface WebhookLoop {
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

function hostOf(url: string): string {
  try { return new URL(url).host; } catch { return '(invalid url)'; }
}

export function startWebhookLoop(deps: { pool: Pool; config: Config; logger: Logger; events?: EventHub; version: string }): WebhookLoop {
  const { pool, config, logger } = deps;
  const policy = targetPolicyFrom(config);
  const timeoutMs = config.webhookTimeout * 1000;
  // Long enough that a live sender always finishes (or gives up) before anyone else may take over.
  const lockSeconds = config.webhookTimeout + 30;
  let stopped = false;
  let running: Promise<number> | null = null;
  let again = false;

  const deliver = async (d: DeliveryRow): Promise<void> => {
    const r = await sendWebhook({
      url: d.url,
      body: JSON.stringify(d.payload),
      headers: { 'user-agent': `aiopslab-executor/${deps.version}`, 'x-aiopslab-event': d.event, 'x-aiopslab-delivery': d.id },
      secret: config.webhookSecret,
      policy,
      timeoutMs,
    });
    const giveUp = r.ok || r.permanent || d.attempts >= config.webhookMaxAttempts;
    const retryIn = giveUp ? null : retryDelaySeconds(d.attempts, config.webhookRetryBaseDelay, r.retryAfterSeconds);
    const status = await recordAttempt(pool, d, { ok: r.ok, responseCode: r.status, error: r.error, retryInSeconds: retryIn });
    const log = { event: 'webhook', delivery_id: d.id, task_id: d.task_id, host: hostOf(d.url), attempt: d.attempts, response_code: r.status, outcome: status };
    if (r.ok) logger.info(log, 'webhook delivered');
    else logger.warn({ ...log, err: r.error, retry_in_s: retryIn === null ? null : Math.round(retryIn) }, 'webhook attempt failed');
    if (status === 'delivered' || status === 'failed') {
      await writeTaskLog(pool, d.task_id, status === 'delivered' ? 'info' : 'warning',
        status === 'delivered' ? `Webhook ${d.event} delivered to ${hostOf(d.url)} (HTTP ${r.status}, attempt ${d.attempts})`
          : `Webhook ${d.event} to ${hostOf(d.url)} failed after ${d.attempts} attempt(s): ${r.error}`,
        { phase: 'webhook', delivery_id: d.id, status, response_code: r.status, attempts: d.attempts }).catch(() => {});
    }
  };

  const runOnce = async (): Promise<number> => {
    let sent = 0;
    try {
      for (;;) {
        const due = await claimDueDeliveries(pool, BATCH, lockSeconds);
        if (due.length === 0) break;
        await Promise.all(due.map((d) => deliver(d).catch((e) => logger.error({ event: 'webhook.error', delivery_id: d.id, err: (e as Error).message }, 'webhook delivery fault'))));
        sent += due.length;
        if (stopped || due.length < BATCH) break;
      }
    } catch (e) {
      logger[isConnectionError(e) ? 'warn' : 'error']({ event: 'webhook.error', err: (e as Error).message }, 'webhook pass failed');
    }
    return sent;
  };

  const kick = () => {
    if (stopped) return;
    if (running) { again = true; return; }
    running = runOnce().finally(() => {
      running = null;
      if (again) { again = false; kick(); }
    });
  };

  const timer = setInterval(kick, config.webhookPollInterval * 1000);
  timer.unref();
  const unsubscribe = deps.events?.subscribe((e) => {
    if ((e.channel === 'task_events' && TERMINAL.has(String(e.payload.status))) || e.channel === 'reconnected') kick();
  });
  kick();

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      unsubscribe?.();
      if (running) await running;
    },
  };
}
