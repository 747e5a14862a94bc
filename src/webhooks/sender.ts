/**
 * Sends one webhook: POST of the frozen JSON body, signed with HMAC-SHA256. The target is checked
 * again here, at connect time, on the addresses the connection really uses (a custom DNS lookup),
 * so a host that resolved to a public address at submission and to 127.0.0.1 now (DNS rebinding)
 * is still refused. Redirects are not followed: a 3xx could point anywhere.
 */
import { createHmac } from 'node:crypto';
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { refusalFor, type TargetPolicy } from './targetPolicy.js';

export const SIGNATURE_HEADER = 'X-AIOpsLab-Signature';
export const TIMESTAMP_HEADER = 'X-AIOpsLab-Timestamp';

/** `sha256=<hex>` of `<timestamp>.<body>`: the timestamp is signed too, so a captured delivery cannot be replayed as new. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface SendResult {
  ok: boolean;
  /** HTTP status, or null when no response came (refused target, network error, timeout). */
  status: number | null;
  error: string | null;
  /** Seconds the receiver asked us to wait (Retry-After on 429/503), if it did. */
  retryAfterSeconds: number | null;
  /** True when retrying cannot help (refused target, 410 Gone). */
  permanent: boolean;
}

export interface SendOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  secret: string | null;
  policy: TargetPolicy;
  timeoutMs: number;
}

class RefusedTarget extends Error {}

function retryAfter(v: string | string[] | undefined): number | null {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return null;
  if (/^\d+$/.test(s.trim())) return Number(s.trim());
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, Math.ceil((t - Date.now()) / 1000)) : null;
}

export function sendWebhook(o: SendOptions): Promise<SendResult> {
  let url: URL;
  try { url = new URL(o.url); } catch { return Promise.resolve({ ok: false, status: null, error: 'invalid URL', retryAfterSeconds: null, permanent: true }); }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) {
    const why = refusalFor(host, host, o.policy);
    if (why) return Promise.resolve({ ok: false, status: null, error: `target refused: ${why}`, retryAfterSeconds: null, permanent: true });
  }
  const timestamp = String(Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(o.body)),
    [TIMESTAMP_HEADER]: timestamp,
    ...o.headers,
  };
  if (o.secret) headers[SIGNATURE_HEADER] = signWebhook(o.secret, timestamp, o.body);

  // Resolves, checks every address, and hands the connection only checked ones.
  const lookup = ((hostname: string, options: dns.LookupOptions, cb: (...a: unknown[]) => void) => {
    dns.lookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) return cb(err);
      for (const a of addresses) {
        const why = refusalFor(a.address, hostname, o.policy);
        if (why) return cb(new RefusedTarget(why));
      }
      if (options?.all) return cb(null, addresses);
      return cb(null, addresses[0]!.address, addresses[0]!.family);
    });
  }) as unknown as net.LookupFunction;

  return new Promise((resolve) => {
    let settled = false;
    const done = (r: SendResult) => { if (!settled) { settled = true; clearTimeout(timer); resolve(r); } };
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(url, { method: 'POST', headers, lookup, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      // The body is not used; read a little so the connection ends cleanly, then drop it.
      let seen = 0;
      res.on('data', (c: Buffer) => { seen += c.length; if (seen > 64 * 1024) res.destroy(); });
      const finish = () => {
        const ok = status >= 200 && status < 300;
        done({
          ok, status,
          error: ok ? null : status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`,
          retryAfterSeconds: status === 429 || status === 503 ? retryAfter(res.headers['retry-after']) : null,
          permanent: status === 410,
        });
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`timed out after ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    req.on('error', (e) => {
      if (e instanceof RefusedTarget) done({ ok: false, status: null, error: `target refused: ${e.message}`, retryAfterSeconds: null, permanent: true });
      else done({ ok: false, status: null, error: (e as NodeJS.ErrnoException).code ? `${(e as NodeJS.ErrnoException).code}: ${e.message}` : e.message, retryAfterSeconds: null, permanent: false });
    });
    req.end(o.body);
  });
}
