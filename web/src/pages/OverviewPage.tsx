/** Overview: queue counts, workers, running tasks, recent failures, today's tokens and cost by model. */
import { api, query } from '../api';
import { Empty, ErrorNotice, Loading } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { SpendTable } from '../components/SpendTable';
import { StatusBadge } from '../components/StatusBadge';
import { TaskTable } from '../components/TaskTable';
import { agoFromSeconds, fmtDuration, fmtPercent, fmtUsd, shortId, viewerTimeZone } from '../format';
import { useResource } from '../hooks';
import { GLOBAL_STREAM, type LiveEvent } from '../live';
import { href } from '../router';
import { TASK_STATUSES, type QueueStats, type Spend, type TaskPage, type Worker } from '../types';

const isTask = (e: LiveEvent) => e.type === 'task';
const isWorker = (e: LiveEvent) => e.type === 'worker';
const isMessage = (e: LiveEvent) => e.type === 'message';

export function OverviewPage() {
  const stats = useResource((signal) => api<QueueStats>('/queue/stats', { signal }), [], { stream: GLOBAL_STREAM, when: isTask });
  const running = useResource((signal) => api<TaskPage>(`/api/v1/tasks${query({ status: 'running', sort: 'started_at', page_size: 10 })}`, { signal }), [], { stream: GLOBAL_STREAM, when: isTask });
  const failures = useResource((signal) => api<TaskPage>(`/api/v1/tasks${query({ status: 'failed,timeout', sort: '-completed_at', page_size: 5 })}`, { signal }), [], { stream: GLOBAL_STREAM, when: isTask });
  const workers = useResource((signal) => api<{ workers: Worker[] }>('/api/v1/workers', { signal }), [], { stream: GLOBAL_STREAM, when: isWorker, pollMs: 10_000 });
  const spend = useResource((signal) => api<Spend>(`/api/v1/stats/spend${query({ days: 1, tz: viewerTimeZone() })}`, { signal }), [],
    { stream: GLOBAL_STREAM, when: isMessage, debounceMs: 1500, pollMs: 60_000 });

  const s = stats.data;
  const w = workers.data?.workers ?? [];
  const live = w.filter((x) => x.status !== 'offline');
  return (
    <section>
      <PageHeader title="Overview" subtitle="The queue, the workers and what they cost, as it happens." >
        <a class="btn btn-primary" href={href('/submit')}>Submit a task</a>
      </PageHeader>

      <ErrorNotice error={stats.error} what="queue statistics" />
      <ul class="tiles" aria-label="Tasks by status">
        {TASK_STATUSES.map((st) => (
          <li key={st}>
            <a class={`tile tile-${st}`} href={href('/tasks', { status: st })} data-tile={st}>
              <span class="tile-value">{s ? s[st] : '…'}</span>
              <span class="tile-label">{st}</span>
            </a>
          </li>
        ))}
      </ul>
      {s && (
        <p class="muted facts">
          {s.total} tasks in all · success rate {fmtPercent(s.success_rate)} (completed ÷ completed + failed) · average wait {fmtDuration(s.average_wait_time === null ? null : s.average_wait_time * 1000)} · average run {fmtDuration(s.average_execution_time === null ? null : s.average_execution_time * 1000)}
        </p>
      )}

      <div class="grid-2">
        <section class="card" aria-labelledby="running-h">
          <h2 id="running-h">Running now <span class="count">{running.data?.total ?? ''}</span></h2>
          <ErrorNotice error={running.error} what="running tasks" />
          {running.data ? (running.data.tasks.length
            ? <TaskTable tasks={running.data.tasks} columns={['problem', 'worker', 'duration']} caption="Running tasks" />
            : <Empty>No task is running.{s && s.pending > 0 ? ` ${s.pending} waiting.` : ''}</Empty>) : !running.error && <Loading />}
        </section>

        <section class="card" aria-labelledby="workers-h">
          <h2 id="workers-h">Workers <span class="count">{workers.data ? `${live.length} live of ${w.length}` : ''}</span></h2>
          <ErrorNotice error={workers.error} what="workers" />
          {workers.data ? (w.length ? (
            <ul class="worker-list">
              {w.map((x) => (
                <li key={x.id}>
                  <span class="mono">{x.id}</span> <StatusBadge status={x.status} />
                  <span class="muted small">
                    {x.current_task_id ? <> on <a href={href(`/tasks/${x.current_task_id}`)}>task {shortId(x.current_task_id)}</a></> : ''}
                    {' · '}heartbeat {agoFromSeconds(x.heartbeat_age_seconds)}
                  </span>
                </li>
              ))}
            </ul>
          ) : <Empty>No worker has registered.</Empty>) : !workers.error && <Loading />}
          <p><a href={href('/workers')}>Manage workers →</a></p>
        </section>
      </div>

      <section class="card" aria-labelledby="today-h">
        <h2 id="today-h">Tokens and cost today, by model {spend.data && <span class="count">{fmtUsd(spend.data.today_by_model.reduce((a, r) => a + r.cost_usd, 0))}</span>}</h2>
        <ErrorNotice error={spend.error} what="today's usage" />
        {spend.data ? (spend.data.today_by_model.length
          ? <SpendTable rows={spend.data.today_by_model} caption="Tokens and cost today by model" />
          : <Empty>No LLM calls today.</Empty>) : !spend.error && <Loading />}
        <p><a href={href('/spend')}>Models and spend over time →</a></p>
      </section>

      <section class="card" aria-labelledby="failures-h">
        <h2 id="failures-h">Recent failures</h2>
        <ErrorNotice error={failures.error} what="recent failures" />
        {failures.data ? (failures.data.tasks.length
          ? <TaskTable tasks={failures.data.tasks} columns={['problem', 'status', 'error', 'created']} caption="Recent failures" />
          : <Empty>No failed or timed-out task.</Empty>) : !failures.error && <Loading />}
        <p><a href={href('/tasks', { status: 'failed,timeout' })}>All failures →</a></p>
      </section>
    </section>
  );
}
