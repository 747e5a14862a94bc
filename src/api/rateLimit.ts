/**
 * Rate limiting of task submission: a token bucket per client (its bearer token when it presents
 * one, else its address), refilled at SUBMIT_RATE_LIMIT per minute with bursts up to the same
 * number. Per process and in memory: enough to stop one client flooding the queue by accident
 * or on purpose; it is not a global quota across several `serve` processes.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { presentedToken } from './auth.js';

export interface TokenBucketOptions {
  /** Tokens per minute, and the bucket size. */
  perMinute: number;
  /** Most clients tracked; the least recently seen are forgotten first (a full bucket loses nothing). */
  maxClients?: number;
  now?: () => number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(private readonly o: TokenBucketOptions) {
    this.perMs = o.perMinute / 60_000;
    this.max = o.maxClients ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  /** Takes one token: null when allowed, else the seconds until one is available. */
  take(key: string): { retryAfterSeconds: number | null; remaining: number } {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.o.perMinute, at: t };
    b.tokens = Math.min(this.o.perMinute, b.tokens + (t - b.at) * this.perMs);
    b.at = t;
    // Re-insert so Map order is least recently seen first.
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size > this.max) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { retryAfterSeconds: null, remaining: Math.floor(b.tokens) };
    }
    return { retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)), remaining: 0 };
  }
}

/** Routes limited: task submission, under both prefixes, and experiments (which submit many tasks). */
const LIMITED = new Set(['POST /api/v1/tasks', 'POST /tasks', 'POST /api/v1/experiments']);

export function submitRateLimitHook(perMinute: number, now?: () => number) {
  const buckets = perMinute > 0 ? new TokenBuckets({ perMinute, now }) : null;
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (!buckets || !LIMITED.has(`${req.method} ${req.routeOptions.url ?? ''}`)) return;
    // Runs after the auth hook, so a presented token here is a valid one (or auth is off).
    const token = presentedToken(req);
    const key = token ? `token:${createHash('sha256').update(token).digest('hex').slice(0, 32)}` : `ip:${req.ip}`;
    const r = buckets.take(key);
    reply.header('X-RateLimit-Limit', String(perMinute));
    reply.header('X-RateLimit-Remaining', String(r.remaining));
    if (r.retryAfterSeconds !== null) {
      throw new AppError('rate_limited', `Too many task submissions: at most ${perMinute} per minute; retry in ${r.retryAfterSeconds} s`,
        { limit_per_minute: perMinute, retry_after_seconds: r.retryAfterSeconds }, { 'Retry-After': String(r.retryAfterSeconds) });
    }
  };
}
