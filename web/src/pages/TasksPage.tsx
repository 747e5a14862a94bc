/** Tasks: filter by status, search by problem id, sort, paginate; filters live in the URL. */
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api';
import { Empty, ErrorNotice, Loading } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { Pagination } from '../components/Pagination';
import { TaskTable } from '../components/TaskTable';
import { useDebounced, useResource } from '../hooks';
import { GLOBAL_STREAM } from '../live';
import { href, navigate } from '../router';
import { TASK_STATUSES, type TaskPage, type TaskStatus } from '../types';

const SORTS: Array<{ value: string; label: string }> = [
  { value: '-created_at', label: 'Newest first' },
  { value: 'created_at', label: 'Oldest first' },
  { value: '-priority', label: 'Highest priority' },
  { value: 'priority', label: 'Lowest priority' },
  { value: '-started_at', label: 'Recently started' },
  { value: '-completed_at', label: 'Recently finished' },
  { value: '-updated_at', label: 'Recently updated' },
];
const PAGE_SIZES = [20, 50, 100];

export function TasksPage({ params }: { params: URLSearchParams }) {
  const statuses = (params.get('status') ?? '').split(',').filter((s): s is TaskStatus => (TASK_STATUSES as readonly string[]).includes(s));
  const q = params.get('q') ?? '';
  const sort = SORTS.some((s) => s.value === params.get('sort')) ? params.get('sort')! : '-created_at';
  const pageSize = PAGE_SIZES.includes(Number(params.get('page_size'))) ? Number(params.get('page_size')) : 20;
  const page = Math.max(1, Math.floor(Number(params.get('page')) || 1));

  const state = { status: statuses.join(',') || null, q: q || null, sort: sort === '-created_at' ? null : sort, page_size: pageSize === 20 ? null : pageSize, page: page === 1 ? null : page };
  const update = (patch: Partial<typeof state>, replace = false) => navigate('/tasks', { ...state, page: null, ...patch }, replace);

  // The search box updates the URL once typing pauses; the URL stays the source of truth.
  const [search, setSearch] = useState(q);
  useEffect(() => setSearch(q), [q]);
  const debounced = useDebounced(search, 300);
  useEffect(() => { if (debounced.trim() !== q) update({ q: debounced.trim() || null }, true); }, [debounced]);

  const list = useResource(
    (signal) => api<TaskPage>(`/api/v1/tasks${query({ status: statuses.join(',') || null, q: q || null, sort, page, page_size: pageSize })}`, { signal }),
    [statuses.join(','), q, sort, page, pageSize],
    { stream: GLOBAL_STREAM, when: (e) => e.type === 'task' },
  );

  const toggle = (s: TaskStatus) => {
    const next = statuses.includes(s) ? statuses.filter((x) => x !== s) : [...statuses, s];
    update({ status: TASK_STATUSES.filter((x) => next.includes(x)).join(',') || null });
  };

  return (
    <section>
      <PageHeader title="Tasks" subtitle={list.data ? `${list.data.total} matching` : undefined}>
        <a class="btn btn-primary" href={href('/submit')}>Submit a task</a>
      </PageHeader>

      <form class="filters card" role="search" onSubmit={(e) => { e.preventDefault(); update({ q: search.trim() || null }); }}>
        <fieldset class="status-filter">
          <legend>Status</legend>
          <div class="chips">
            {TASK_STATUSES.map((s) => (
              <label key={s} class={`chip ${statuses.includes(s) ? 'chip-on' : ''}`}>
                <input type="checkbox" name="status" value={s} checked={statuses.includes(s)} onChange={() => toggle(s)} />
                {s}
              </label>
            ))}
            {statuses.length > 0 && <button type="button" class="btn btn-link" onClick={() => update({ status: null })}>Any status</button>}
          </div>
        </fieldset>
        <div class="filter-row">
          <div class="field">
            <label for="task-search">Problem id contains</label>
            <input id="task-search" type="search" placeholder="e.g. pod_failure" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="task-sort">Sort</label>
            <select id="task-sort" value={sort} onChange={(e) => update({ sort: e.currentTarget.value === '-created_at' ? null : e.currentTarget.value })}>
              {SORTS.map((s) => <option key={s.value} value={s.value}>{s.label}</option>)}
            </select>
          </div>
          <div class="field field-narrow">
            <label for="task-page-size">Per page</label>
            <select id="task-page-size" value={String(pageSize)} onChange={(e) => update({ page_size: Number(e.currentTarget.value) === 20 ? null : Number(e.currentTarget.value) })}>
              {PAGE_SIZES.map((n) => <option key={n} value={String(n)}>{n}</option>)}
            </select>
          </div>
        </div>
      </form>

      <ErrorNotice error={list.error} what="tasks" />
      {list.data ? (
        <>
          {list.data.tasks.length
            ? <TaskTable tasks={list.data.tasks} columns={['problem', 'status', 'model', 'worker', 'priority', 'created', 'duration', 'reward', 'cost']} caption="Tasks" />
            : <Empty>No task matches these filters.</Empty>}
          <Pagination page={page} pageSize={pageSize} total={list.data.total} onPage={(p) => update({ page: p === 1 ? null : p })} />
        </>
      ) : !list.error && <Loading />}
    </section>
  );
}
