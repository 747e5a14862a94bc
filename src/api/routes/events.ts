/**
 * Server-sent events fed by PostgreSQL LISTEN/NOTIFY (through the process's EventHub), so a
 * change made by any process or worker host reaches every open dashboard and `--wait`/`--follow`
 * client. Events carry ids, not rows: clients fetch what they show, which keeps one
 * notification from fanning out into one query per listener.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HubEvent } from '../../store/eventHub.js';
import type { AppDeps } from '../appDeps.js';

const EVENT_NAMES: Record<string, string> = {
  task_events: 'task',
  worker_events: 'worker',
  task_log_events: 'log',
  message_events: 'message',
  reconnected: 'resync',
};

export function eventRoutes(deps: AppDeps) {
  return async function (app: FastifyInstance) {
    const stream = (req: FastifyRequest, reply: FastifyReply, taskId: string | null, types: Set<string> | null) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
        'X-Request-ID': String(req.id),
      });
      // HEAD (which Fastify answers with the GET handler) gets the stream's headers and ends.
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      res.write(`retry: 2000\n: connected ${new Date().toISOString()}\n\n`);
      let seq = 0;
      const unsubscribe = deps.events.subscribe((e: HubEvent) => {
        const name = EVENT_NAMES[e.channel];
        if (!name || (types && !types.has(name) && name !== 'resync')) return;
        if (taskId && name !== 'resync') {
          const id = name === 'task' ? e.payload.id : e.payload.task_id;
          if (name === 'worker' ? e.payload.current_task_id !== taskId : id !== taskId) return;
        }
        res.write(`id: ${++seq}\nevent: ${name}\ndata: ${JSON.stringify(e.payload)}\n\n`);
      });
      const keepAlive = setInterval(() => res.write(`: keep-alive\n\n`), 15_000);
      const close = () => { clearInterval(keepAlive); unsubscribe(); };
      req.raw.on('close', close);
      res.on('error', close);
    };

    const typesSchema = { type: 'string', pattern: '^(task|worker|log|message)(,(task|worker|log|message))*$', description: 'Comma-separated event types (default: all).' };
    app.get('/events', {
      schema: {
        tags: ['events'], summary: 'Live stream (text/event-stream) of task, worker, log and message events. Optional task_id filter.',
        querystring: { type: 'object', additionalProperties: false, properties: { task_id: { type: 'string', format: 'uuid' }, types: typesSchema } },
      },
    }, async (req, reply) => {
      const q = req.query as { task_id?: string; types?: string };
      stream(req, reply, q.task_id ?? null, q.types ? new Set(q.types.split(',')) : null);
    });
    app.get('/tasks/:task_id/events', {
      schema: {
        tags: ['events'], summary: 'Live stream of one task\'s status changes, new log lines and new messages.',
        params: { type: 'object', required: ['task_id'], properties: { task_id: { type: 'string', format: 'uuid' } } },
        querystring: { type: 'object', additionalProperties: false, properties: { types: typesSchema } },
      },
    }, async (req, reply) => {
      const q = req.query as { types?: string };
      stream(req, reply, (req.params as { task_id: string }).task_id, q.types ? new Set(q.types.split(',')) : null);
    });
  };
}
