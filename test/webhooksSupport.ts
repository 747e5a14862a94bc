/** A local webhook receiver for tests: records every request raw, answers as told. */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedHook {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body, exactly as sent (signatures are over it). */
  raw: string;
  body: any;
  at: number;
}

export interface Receiver {
  url: string;
  received: ReceivedHook[];
  /** Answer for the next requests, in order; afterwards `fallback`. */
  respondWith(...statuses: Array<number | { status: number; headers?: Record<string, string> }>): void;
  setFallback(status: number): void;
  waitFor(pred: (h: ReceivedHook[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: ReceivedHook[] = [];
  const queue: Array<{ status: number; headers?: Record<string, string> }> = [];
  let fallback = 200;
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = null;
      try { body = JSON.parse(raw); } catch { /* keep raw */ }
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, body, at: Date.now() });
      const r = queue.shift() ?? { status: fallback };
      res.writeHead(r.status, { 'content-type': 'text/plain', ...r.headers });
      res.end('ok');
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    respondWith: (...s) => { queue.push(...s.map((x) => (typeof x === 'number' ? { status: x } : x))); },
    setFallback: (s) => { fallback = s; },
    async waitFor(pred, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pred(received)) {
        if (Date.now() > deadline) throw new Error(`receiver: condition not met within ${timeoutMs} ms; received ${received.length}: ${JSON.stringify(received.map((r) => [r.path, r.body?.event]))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
