/** The AIOpsLab problem catalog, filterable, with how often each problem ran and a quick submit. */
import { useMemo } from 'preact/hooks';
import { api, query } from '../api';
import { Empty, ErrorNotice, Loading } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { useResource } from '../hooks';
import { GLOBAL_STREAM } from '../live';
import { href, navigate } from '../router';
import type { Problem } from '../types';

const FILTERS = ['application', 'task_type', 'deployment'] as const;

export function ProblemsPage({ params }: { params: URLSearchParams }) {
  const current = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) ?? ''])) as Record<(typeof FILTERS)[number], string>;
  const search = params.get('q') ?? '';
  // The whole catalog feeds the filter choices; the server filters only the shown list.
  const all = useResource((signal) => api<{ problems: Problem[]; total: number }>('/api/v1/problems', { signal }), []);
  const shown = useResource(
    (signal) => api<{ problems: Problem[]; total: number }>(`/api/v1/problems${query(current)}`, { signal }),
    [current.application, current.task_type, current.deployment],
  );
  const stats = useResource((signal) => api<{ tasks_by_problem?: Record<string, number> }>('/api/v1/tasks/stats', { signal }), [],
    { stream: GLOBAL_STREAM, when: (e) => e.type === 'task' && e.data.status === 'pending', debounceMs: 2000 });

  const options = useMemo(() => {
    const ps = all.data?.problems ?? [];
    return Object.fromEntries(FILTERS.map((f) => [f, [...new Set(ps.map((p) => p[f]))].sort()])) as Record<(typeof FILTERS)[number], string[]>;
  }, [all.data]);
  const update = (patch: Record<string, string | null>, replace = false) => navigate('/problems', { ...current, q: search || null, ...patch }, replace);
  const needle = search.trim().toLowerCase();
  const rows = (shown.data?.problems ?? []).filter((p) => !needle || p.id.toLowerCase().includes(needle));
  const runs = stats.data?.tasks_by_problem ?? {};

  return (
    <section>
      <PageHeader title="Problems" subtitle={all.data ? `${all.data.total} problems in the AIOpsLab catalog` : undefined} />
      <form class="filters card filter-row" role="search" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="p-search">Id contains</label>
          <input id="p-search" type="search" value={search} onInput={(e) => update({ q: e.currentTarget.value || null }, true)} />
        </div>
        {FILTERS.map((f) => (
          <div class="field" key={f}>
            <label for={`p-${f}`}>{f.replace('_', ' ')}</label>
            <select id={`p-${f}`} value={current[f]} onChange={(e) => update({ [f]: e.currentTarget.value || null })}>
              <option value="">All</option>
              {options[f].map((o) => <option key={o} value={o}>{o}</option>)}
            </select>
          </div>
        ))}
      </form>
      <ErrorNotice error={shown.error} what="the problem catalog" />
      {shown.data ? (rows.length ? (
        <div class="table-scroll">
          <table class="data-table cards-on-phone">
            <caption class="visually-hidden">Problems</caption>
            <thead>
              <tr><th scope="col">Problem</th><th scope="col">Application</th><th scope="col">Task type</th><th scope="col">Deployment</th><th scope="col" class="num">Runs</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr>
            </thead>
            <tbody>
              {rows.map((p) => (
                <tr key={p.id} data-problem-id={p.id}>
                  <th scope="row" data-label="Problem" class="mono">{p.id}</th>
                  <td data-label="Application">{p.application}</td>
                  <td data-label="Task type">{p.task_type}</td>
                  <td data-label="Deployment">{p.deployment}</td>
                  <td data-label="Runs" class="num">{runs[p.id] ? <a href={href('/tasks', { q: p.id })}>{runs[p.id]}</a> : 0}</td>
                  <td data-label="Actions"><a class="btn btn-small" href={href('/submit', { problem: p.id })}>Run<span class="visually-hidden"> {p.id}</span></a></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : <Empty>No problem matches.</Empty>) : !shown.error && <Loading />}
    </section>
  );
}
