/**
 * Serves the built dashboard (web/dist) from the same server: browsers asking for HTML at `/`
 * get it; assets come from /assets/. Client-side routes use the URL hash, so they never collide
 * with API paths.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';
import { WEB_DIST_DIR } from '../packagePaths.js';
import type { DashboardServer } from './appDeps.js';

export function createDashboardServer(dir = WEB_DIST_DIR): DashboardServer | null {
  const index = path.join(dir, 'index.html');
  if (!existsSync(index)) return null;
  const html = readFileSync(index, 'utf8');
  return {
    sendIndex(reply: FastifyReply) {
      return reply.header('Cache-Control', 'no-cache').type('text/html; charset=utf-8').send(html);
    },
    dir,
  };
}

export async function registerDashboardAssets(app: FastifyInstance, dashboard: DashboardServer | null | undefined): Promise<void> {
  const dir = dashboard?.dir;
  if (!dir || !existsSync(path.join(dir, 'assets'))) return;
  await app.register(fastifyStatic, { root: path.join(dir, 'assets'), prefix: '/assets/', decorateReply: false, immutable: true, maxAge: '1y' });
  for (const f of ['favicon.svg', 'favicon.ico']) {
    if (existsSync(path.join(dir, f))) app.get(`/${f}`, { schema: { hide: true } }, (_req, reply) => reply.type(f.endsWith('svg') ? 'image/svg+xml' : 'image/x-icon').send(readFileSync(path.join(dir, f))));
  }
  app.get('/dashboard', { schema: { hide: true } }, (_req, reply) => dashboard!.sendIndex(reply));
}
