/**
 * Bearer-token access control. Off when no API_TOKEN is configured (the service then listens on
 * loopback only, see the start command). Worker-host endpoints also accept WORKER_TOKEN, so a
 * worker host never needs a full API token. Health probes stay open, and so does the dashboard's
 * static shell (HTML, scripts, icons: no data), so it can ask for a token; every request for
 * data needs one.
 *
 * Browsers: open the dashboard once as `/?token=<token>`; the token is moved into an HttpOnly,
 * SameSite=Strict cookie `aiopslab_token` and the address is redirected without it. Requests
 * and EventSource streams of the dashboard then carry the cookie (EventSource cannot send headers).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

export const TOKEN_COOKIE = 'aiopslab_token';

const OPEN_ROUTES = new Set(['/health', '/ready', '/dashboard', '/assets/*', '/favicon.svg', '/favicon.ico']);
/** Worker-host protocol routes (both prefixes), matched on the route pattern Fastify resolved, never on the raw URL. */
const WORKER_ROUTES = new Set(['/workers/register', '/workers/heartbeat', '/workers/:worker_id/heartbeat', '/workers/:worker_id/claim',
  '/workers/:worker_id/tasks/:task_id/complete', '/workers/:worker_id/tasks/:task_id/fail'].flatMap((p) => [p, `/api/v1${p}`]));

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time over the token's content and length (digests have one length), checking every token. */
function matches(given: string, tokens: readonly string[]): boolean {
  const g = digest(given);
  let ok = false;
  for (const t of tokens) if (timingSafeEqual(digest(t), g)) ok = true;
  return ok;
}

function cookieToken(req: FastifyRequest): string | null {
  const m = req.headers.cookie?.match(/(?:^|;\s*)aiopslab_token=([^;]*)/);
  if (!m || !m[1]) return null;
  try { return decodeURIComponent(m[1]); } catch { return null; }
}

export function presentedToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (h && /^Bearer\s+/i.test(h)) return h.replace(/^Bearer\s+/i, '').trim();
  return cookieToken(req);
}

function wantsHtml(req: FastifyRequest): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

function cookie(req: FastifyRequest, value: string, maxAge: number | null): string {
  return [`${TOKEN_COOKIE}=${encodeURIComponent(value)}`, 'Path=/', 'HttpOnly', 'SameSite=Strict',
    ...(req.protocol === 'https' ? ['Secure'] : []), ...(maxAge === null ? [] : [`Max-Age=${maxAge}`])].join('; ');
}

/** The request URL without its `token` query parameter. */
function withoutToken(url: string): string {
  const u = new URL(url, 'http://x');
  u.searchParams.delete('token');
  return `${u.pathname}${u.search}`;
}

export function authHook(config: Config) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (config.apiTokens.length === 0 && config.workerTokens.length === 0) return;
    const route = req.routeOptions.url ?? null;
    const isWorkerRoute = route !== null && WORKER_ROUTES.has(route);
    if (config.apiTokens.length === 0 && !isWorkerRoute) return;

    // `?token=` on a page the browser navigates to: move it into the cookie and drop it from the address.
    const queryToken = wantsHtml(req) ? new URL(req.url, 'http://x').searchParams.get('token') : null;
    if (queryToken !== null) {
      if (!matches(queryToken, config.apiTokens)) {
        reply.header('Set-Cookie', cookie(req, '', 0));
        throw new AppError('unauthorized', 'The token in the address is not valid', null, { 'WWW-Authenticate': 'Bearer' });
      }
      reply.header('Set-Cookie', cookie(req, queryToken, null)).header('Cache-Control', 'no-store').redirect(withoutToken(req.url), 303);
      return reply;
    }

    if (route !== null && (OPEN_ROUTES.has(route) || (route === '/' && wantsHtml(req)))) return;
    const token = presentedToken(req);
    if (token && (matches(token, config.apiTokens) || (isWorkerRoute && matches(token, config.workerTokens)))) return;
    if (token && matches(token, config.workerTokens)) {
      throw new AppError('forbidden', 'A worker token is only valid for the worker-host endpoints (register, heartbeat, claim, complete, fail)');
    }
    // A stale cookie would otherwise keep failing: clear it so the dashboard can ask again.
    if (token && token === cookieToken(req)) reply.header('Set-Cookie', cookie(req, '', 0));
    throw new AppError('unauthorized', token ? 'The bearer token is not valid for this endpoint' : 'A bearer token is required (Authorization: Bearer <token>)', null, { 'WWW-Authenticate': 'Bearer' });
  };
}
