/**
 * Bearer-token access control. Off when no API_TOKEN is configured (the service then listens on
 * loopback only, see the start command). Worker-host endpoints also accept WORKER_TOKEN, so a
 * worker host never needs a full API token. Health probes stay open.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

const OPEN_PATHS = new Set(['/health', '/ready']);
const WORKER_PATH = /^(\/api\/v1)?\/workers\/(register|heartbeat|[^/]+\/(heartbeat|claim|tasks\/[^/]+\/(complete|fail)))$/;

function matches(given: string, tokens: readonly string[]): boolean {
  const g = Buffer.from(given);
  let ok = false;
  for (const t of tokens) {
    const b = Buffer.from(t);
    if (b.length === g.length && timingSafeEqual(b, g)) ok = true;
  }
  return ok;
}

export function presentedToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (h && /^Bearer\s+/i.test(h)) return h.replace(/^Bearer\s+/i, '').trim();
  const cookie = req.headers.cookie;
  const m = cookie?.match(/(?:^|;\s*)aiopslab_token=([^;]+)/);
  return m ? decodeURIComponent(m[1]!) : null;
}

export function authHook(config: Config) {
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    if (config.apiTokens.length === 0 && config.workerTokens.length === 0) return;
    const path = req.url.split('?')[0]!;
    if (OPEN_PATHS.has(path)) return;
    const token = presentedToken(req);
    const isWorkerPath = WORKER_PATH.test(path);
    if (config.apiTokens.length === 0 && !isWorkerPath) return;
    if (token && (matches(token, config.apiTokens) || (isWorkerPath && matches(token, config.workerTokens)))) return;
    throw new AppError('unauthorized', token ? 'The bearer token is not valid for this endpoint' : 'A bearer token is required (Authorization: Bearer <token>)', null, { 'WWW-Authenticate': 'Bearer' });
  };
}
