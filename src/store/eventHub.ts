/**
 * One LISTEN connection per process, fanned out to in-process subscribers (idle workers waiting
 * for work, SSE streams, cancel watchers). Events come from triggers in the database, so they
 * arrive whichever process or host made the change. The connection is re-established after a
 * database restart; subscribers get a synthetic `reconnected` event so they can re-read state.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';

export const CHANNELS = ['task_events', 'worker_events', 'task_log_events', 'message_events'] as const;
export type Channel = (typeof CHANNELS)[number] | 'reconnected';

export interface HubEvent { channel: Channel; payload: Record<string, unknown> }

export class EventHub {
  private readonly emitter = new EventEmitter();
  private client: pg.Client | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private connectedOnce = false;

  constructor(private readonly connectionString: string, private readonly onError: (e: unknown) => void = () => {}) {
    this.emitter.setMaxListeners(0);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, keepAlive: true });
    client.on('notification', (n) => {
      let payload: Record<string, unknown> = {};
      try { payload = n.payload ? JSON.parse(n.payload) : {}; } catch { /* foreign payload: ignore */ }
      this.emitter.emit('event', { channel: n.channel as Channel, payload });
    });
    client.on('error', (e) => { this.onError(e); this.scheduleReconnect(client); });
    client.on('end', () => this.scheduleReconnect(client));
    try {
      await client.connect();
      for (const c of CHANNELS) await client.query(`LISTEN ${c}`);
      this.client = client;
      if (this.connectedOnce) this.emitter.emit('event', { channel: 'reconnected', payload: {} });
      this.connectedOnce = true;
    } catch (e) {
      this.onError(e);
      client.end().catch(() => {});
      this.scheduleReconnect(client);
    }
  }

  private scheduleReconnect(client: pg.Client): void {
    if (this.stopped || this.retryTimer || (this.client && this.client !== client)) return;
    this.client = null;
    this.retryTimer = setTimeout(() => { this.retryTimer = null; void this.connect(); }, 500);
    this.retryTimer.unref();
  }

  subscribe(fn: (e: HubEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  get connected(): boolean { return this.client !== null; }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }
}
