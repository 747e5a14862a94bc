/**
 * Experiments: each with its status, a progress bar of its combinations by status, spend against
 * its cap and the estimated cost still to come. Filter and page live in the URL; the list follows
 * the experiments' task events (and their LLM calls while any of them runs).
 */
import { api, query } from '../api';
import { ExperimentStatusBadge, ProgressBar, estimateText, fmtCap, progressSummary } from '../components/experimentProgress';
import { Empty, ErrorNotice, Loading } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { Pagination } from '../components/Pagination';
import { fmtAgo, fmtUsd, plural } from '../format';
import { useNow, useResource, type Resource } from '../hooks';
import { GLOBAL_STREAM, type LiveEvent } from '../live';
import { href, navigate } from '../router';
import type { Experiment, ExperimentPage } from '../types';

const FILTERS = [
  { value: '', label: 'All' },
  { value: 'active', label: 'Active' },
  { value: 'cancelled', label: 'Cancelled' },
] as const;
const PAGE_SIZE = 20;

function SpendCell({ e }: { e: Experiment }) {
  const p = e.progress;
  return (
    <>
      {fmtUsd(p.spend_usd)}
      {p.spend_cap_usd !== null && <span class={`small ${p.spend_cap_reached ? 'bad' : 'muted'}`}> of {fmtCap(p.spend_cap_usd)}{p.spend_cap_reached ? ' (cap reached)' : ''}</span>}
    </>
  );
}

export function ExperimentsPage({ params }: { params: URLSearchParams }) {
  const status = FILTERS.some((f) => f.value === params.get('status')) ? params.get('status')! : '';
  const page = Math.max(1, Math.floor(Number(params.get('page')) || 1));
  const now = useNow(30_000);

  const list: Resource<ExperimentPage> = useResource(
    (signal) => api<ExperimentPage>(`/api/v1/experiments${query({ status: status || null, page, page_size: PAGE_SIZE })}`, { signal }),
    [status, page],
    {
      stream: GLOBAL_STREAM,
      // Task events name their experiment; spend grows with each LLM call of a running task.
      when: (e: LiveEvent): boolean => (e.type === 'task' && !!e.data.experiment_id)
        || (e.type === 'message' && (list.data?.experiments ?? []).some((x) => x.progress.counts.running > 0)),
      debounceMs: 800,
    },
  );
  const d = list.data;

  return (
    <section>
      <PageHeader title="Experiments" subtitle="Problems × models × repeats, run as tasks and compared in the tables researchers publish.">
        <a class="btn btn-primary" href={href('/experiments/new')}>New experiment</a>
      </PageHeader>

      <div class="xp-toolbar">
        <div class="segmented" role="group" aria-label="Show">
          {FILTERS.map((f) => (
            <button key={f.value} type="button" class="btn" aria-pressed={f.value === status} onClick={() => navigate('/experiments', { status: f.value || null })}>{f.label}</button>
          ))}
        </div>
        {d && <span class="muted small" aria-live="polite">{plural(d.total, 'experiment')}</span>}
      </div>

      <ErrorNotice error={list.error} what="experiments" />
      {d ? (
        <>
          {d.experiments.length ? (
            <div class="table-scroll">
              <table class="data-table cards-on-phone xp-list">
                <caption class="visually-hidden">Experiments</caption>
                <thead>
                  <tr>
                    <th scope="col">Experiment</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="xp-col-progress">Progress</th>
                    <th scope="col">Models</th>
                    <th scope="col" class="num">Spend</th>
                    <th scope="col" class="num">Est. remaining</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {d.experiments.map((e) => (
                    <tr key={e.id} data-experiment={e.name} data-status={e.progress.status}>
                      <th scope="row" data-label="Experiment">
                        <a class="task-link" href={href(`/experiments/${encodeURIComponent(e.name)}`)}><span class="mono">{e.name}</span></a>
                        {e.description && <div class="muted small clamp">{e.description}</div>}
                      </th>
                      <td data-label="Status"><ExperimentStatusBadge status={e.progress.status} /></td>
                      <td data-label="Progress" class="xp-col-progress cell-block">
                        <ProgressBar counts={e.progress.counts} total={e.progress.combinations} compact label={e.name} />
                        <span class="small muted xp-progress-text">{progressSummary(e.progress)}</span>
                      </td>
                      <td data-label="Models" class="small">
                        <span title={e.models.join(', ')}>{plural(e.models.length, 'model')}</span>
                        <span class="muted"> · {plural(e.problem_ids.length, 'problem')} · {plural(e.repeats, 'repeat')}</span>
                      </td>
                      <td data-label="Spend" class="num" data-col="spend"><SpendCell e={e} /></td>
                      <td data-label="Est. remaining" class="num" data-col="remaining">{estimateText(e.progress.estimated_remaining_cost_usd)}</td>
                      <td data-label="Created"><time dateTime={e.created_at} title={new Date(e.created_at).toLocaleString()}>{fmtAgo(e.created_at, now)}</time></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <Empty>{status ? `No ${status} experiment.` : <>No experiment yet. <a href={href('/experiments/new')}>Create one</a> to run problems against several models.</>}</Empty>
          )}
          <Pagination page={page} pageSize={PAGE_SIZE} total={d.total} onPage={(p) => navigate('/experiments', { status: status || null, page: p === 1 ? null : p })} />
        </>
      ) : !list.error && <Loading />}
    </section>
  );
}
