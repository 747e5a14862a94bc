/**
 * Workers: status, Kind cluster, heartbeat age, current task, counts; and the size of this
 * process's internal pool. Heartbeats change no status (so send no event): ages tick locally
 * from the age the server reported and the list is re-read every few seconds.
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { Empty, ErrorNotice, Loading } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { StatusBadge } from '../components/StatusBadge';
import { DASH, agoFromSeconds, shortId } from '../format';
import { useNow, useResource } from '../hooks';
import { GLOBAL_STREAM } from '../live';
import { href } from '../router';
import type { InternalWorkerStatus, Worker } from '../types';

function ScaleControl({ status, onScaled }: { status: InternalWorkerStatus; onScaled: () => void }) {
  const [n, setN] = useState(String(status.num_workers));
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => setN(String(status.num_workers)), [status.num_workers]);
  const submit = async (e: Event) => {
    e.preventDefault();
    const value = Number(n);
    if (!Number.isInteger(value) || value < 0 || value > 50) {
      setMessage({ ok: false, text: 'Enter a whole number from 0 to 50.' });
      return;
    }
    setBusy(true);
    setMessage(null);
    try {
      const r = await api<{ previous_workers: number; current_workers: number }>('/api/v1/workers/internal/scale', { method: 'POST', body: { num_workers: value } });
      setMessage({ ok: true, text: `Scaled from ${r.previous_workers} to ${r.current_workers} workers.${r.current_workers < r.previous_workers ? ' Busy workers finish their task first.' : ''}` });
      onScaled();
    } catch (err) {
      setMessage({ ok: false, text: (err as Error).message });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="scale-form" onSubmit={submit} noValidate>
      <div class="field field-narrow">
        <label for="num-workers">Internal workers</label>
        <input id="num-workers" type="number" min={0} max={50} step={1} inputMode="numeric" value={n} aria-describedby="num-workers-hint" onInput={(e) => setN(e.currentTarget.value)} />
        <span id="num-workers-hint" class="hint">0–50; each owns one Kind cluster</span>
      </div>
      <button type="submit" class="btn btn-primary" disabled={busy}>{busy ? 'Scaling…' : 'Scale'}</button>
      {message && <p class={message.ok ? 'ok' : 'field-error'} role={message.ok ? 'status' : 'alert'}>{message.text}</p>}
    </form>
  );
}

export function WorkersPage() {
  const workers = useResource((signal) => api<{ workers: Worker[]; total: number }>('/api/v1/workers', { signal }), [],
    { stream: GLOBAL_STREAM, when: (e) => e.type === 'worker', pollMs: 5000 });
  const internal = useResource((signal) => api<InternalWorkerStatus>('/api/v1/workers/internal/status', { signal }), [],
    { stream: GLOBAL_STREAM, when: (e) => e.type === 'worker', debounceMs: 500 });
  const now = useNow(1000);
  const [fetchedAt, setFetchedAt] = useState(Date.now());
  useEffect(() => setFetchedAt(Date.now()), [workers.data]);
  const list = workers.data?.workers ?? [];

  return (
    <section>
      <PageHeader title="Workers" subtitle="Each worker runs one task at a time on its own Kind cluster." />

      <section class="card" aria-labelledby="pool-h">
        <h2 id="pool-h">Internal pool</h2>
        <ErrorNotice error={internal.error} what="the internal pool" />
        {internal.data ? (internal.data.enabled
          ? <>
            <p>{internal.data.num_workers} worker{internal.data.num_workers === 1 ? '' : 's'} in this process ({internal.data.running ? 'running' : 'stopped'}).</p>
            <ScaleControl status={internal.data} onScaled={() => { internal.reload(); workers.reload(); }} />
          </>
          : <p class="muted">{internal.data.message ?? 'This process runs no internal workers'} (started with <code>serve</code>); scale the worker hosts instead.</p>)
          : !internal.error && <Loading />}
      </section>

      <ErrorNotice error={workers.error} what="workers" />
      {workers.data ? (list.length ? (
        <div class="table-scroll">
          <table class="data-table cards-on-phone">
            <caption class="visually-hidden">Workers</caption>
            <thead>
              <tr>
                <th scope="col">Worker</th><th scope="col">Status</th><th scope="col">Cluster</th><th scope="col">Host</th>
                <th scope="col">Heartbeat</th><th scope="col">Current task</th><th scope="col" class="num">Completed</th><th scope="col" class="num">Failed</th>
              </tr>
            </thead>
            <tbody>
              {list.map((w) => {
                const age = w.heartbeat_age_seconds + Math.max(0, now - fetchedAt) / 1000;
                return (
                  <tr key={w.id} data-worker-id={w.id}>
                    <th scope="row" data-label="Worker" class="mono">{w.id}<span class="muted small"> {w.backend_type}</span></th>
                    <td data-label="Status"><StatusBadge status={w.status} /></td>
                    <td data-label="Cluster">
                      <span class="mono small">{w.metadata?.kind_cluster ?? DASH}</span>
                      {w.cluster_dirty && <span class="badge badge-timeout" title="Recreated before its next task">dirty</span>}
                    </td>
                    <td data-label="Host" class="small">{w.metadata?.host ?? DASH}</td>
                    <td data-label="Heartbeat" class={age > 60 && w.status !== 'offline' ? 'bad' : undefined}>{agoFromSeconds(age)}</td>
                    <td data-label="Current task">{w.current_task_id ? <a href={href(`/tasks/${w.current_task_id}`)} class="mono">{shortId(w.current_task_id)}</a> : DASH}</td>
                    <td data-label="Completed" class="num">{w.tasks_completed}</td>
                    <td data-label="Failed" class="num">{w.tasks_failed}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : <Empty>No worker has registered yet.</Empty>) : !workers.error && <Loading />}
    </section>
  );
}
