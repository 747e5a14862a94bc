/**
 * One experiment: progress by status and by model with spend and estimates, its definition and
 * limits (editable), resume and cancel (progress tab); the results tables with charts and
 * downloads (results tab); and its tasks (tasks tab). Everything follows the experiment's task
 * events, and its LLM calls while a task runs.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api, query } from '../api';
import { GroupedBars } from '../components/experimentCharts';
import { describedBy, FieldErrors, placeIssues, type IssueMap } from '../components/experimentForm';
import { ExperimentStatusBadge, ModelProgressTable, ProgressBar, estimateText, fmtCap, progressSummary } from '../components/experimentProgress';
import { ByModelTable, DetailTable, SummaryTable, fmtCost, fmtRate } from '../components/experimentResults';
import { Empty, ErrorNotice, Loading } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { Pagination } from '../components/Pagination';
import { TaskTable } from '../components/TaskTable';
import { DASH, fmtDateTime, fmtInt, fmtUsd, plural } from '../format';
import { useResource, type Resource } from '../hooks';
import { GLOBAL_STREAM, type LiveEvent } from '../live';
import { href, navigate } from '../router';
import { TASK_STATUSES, type Experiment, type ExperimentResults, type TaskPage, type TaskStatus } from '../types';

const TABS = [
  { id: 'progress', label: 'Progress' },
  { id: 'results', label: 'Results' },
  { id: 'tasks', label: 'Tasks' },
] as const;
type TabId = (typeof TABS)[number]['id'];

/** A message for the next render of an experiment's page (after creating or resuming it elsewhere). */
let flash: { ref: string; text: string } | null = null;
export function flashExperiment(ref: string, text: string): void {
  flash = { ref, text };
}

const TYPE_ORDER = ['detection', 'localization', 'analysis', 'mitigation'];
const typeRank = (t: string) => { const i = TYPE_ORDER.indexOf(t); return i < 0 ? TYPE_ORDER.length : i; };

export function resumedText(e: Experiment, retried: boolean): string {
  const n = e.tasks_created ?? 0;
  if (n) return `Resumed: ${plural(n, 'task')} created.`;
  return retried ? 'Resumed: no task created — every combination has a pending, running or completed task.'
    : 'Resumed: no task created — every combination has a task; failed and timed-out ones are rerun only with “retry failed”.';
}

function ResumeControl({ e, onDone }: { e: Experiment; onDone: (text: string) => void }) {
  const c = e.progress.counts;
  const retryable = c.failed + c.timeout;
  const missing = c.not_created + c.cancelled;
  const [retry, setRetry] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  if (e.status === 'active' && missing === 0 && retryable === 0) return null;
  // (A cancelled combination whose earlier task failed is only recreated with retry_failed.)
  const resume = async () => {
    setBusy(true);
    setError(null);
    try {
      const out = await api<Experiment>(`/api/v1/experiments/${e.id}/resume`, { method: 'POST', body: retry ? { retry_failed: true } : {} });
      onDone(resumedText(out, retry));
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="xp-resume" role="group" aria-label="Resume">
      <label class="check" title="Also rerun combinations whose task failed or timed out">
        <input type="checkbox" checked={retry} onChange={(ev) => setRetry(ev.currentTarget.checked)} /> retry failed{retryable > 0 ? ` (${retryable})` : ''}
      </label>
      <button type="button" class="btn" disabled={busy} onClick={resume} title="Create the combinations that have no pending, running or completed task">
        {busy ? 'Resuming…' : 'Resume'}
      </button>
      {error && <p class="field-error" role="alert">{error.message}</p>}
    </div>
  );
}

function CancelControl({ e, onDone }: { e: Experiment; onDone: (text: string) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  // Keyboard users land on the safe choice when asked to confirm.
  const keep = useRef<HTMLButtonElement>(null);
  useEffect(() => { if (confirming) keep.current?.focus(); }, [confirming]);
  if (e.status !== 'active') return null;
  const { pending, running } = e.progress.counts;
  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      const out = await api<Experiment>(`/api/v1/experiments/${e.id}/cancel`, { method: 'POST' });
      setConfirming(false);
      onDone(`Cancelled: ${plural(out.cancelled_tasks ?? 0, 'task')} stopped. Resume to create the missing combinations again.`);
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="cancel">
      {confirming ? (
        <div class="confirm" role="group" aria-label="Confirm cancellation">
          <span>
            {pending + running > 0
              ? `Cancel ${[pending ? `${pending} pending` : '', running ? `${running} running` : ''].filter(Boolean).join(' and ')} ${pending + running === 1 ? 'task' : 'tasks'}?${running ? ' Running ones are stopped by their workers.' : ''}`
              : 'Mark this experiment cancelled? No task is waiting or running.'}
          </span>
          <button type="button" class="btn btn-danger" disabled={busy} onClick={cancel}>{busy ? 'Cancelling…' : 'Yes, cancel experiment'}</button>
          <button type="button" class="btn" disabled={busy} ref={keep} onClick={() => setConfirming(false)}>Keep it</button>
        </div>
      ) : (
        <button type="button" class="btn btn-danger-outline" onClick={() => setConfirming(true)}>Cancel experiment</button>
      )}
      {error && <p class="field-error" role="alert">{error.message}</p>}
    </div>
  );
}

function Definition({ e }: { e: Experiment }) {
  const s = e.problem_selectors;
  const p = e.parameters ?? {};
  const ac = p.agent_config ?? {};
  const shown: Array<[string, string]> = [
    ['Max steps', String(p.max_steps ?? DASH)],
    ['Timeout', p.timeout_minutes !== undefined ? `${p.timeout_minutes} min` : DASH],
    ['Priority', String(p.priority ?? DASH)],
    ['Temperature', ac.temperature !== undefined ? String(ac.temperature) : 'default'],
    ['Max tokens / reply', ac.max_tokens !== undefined ? fmtInt(ac.max_tokens) : 'default'],
    ['Top p', ac.top_p !== undefined ? String(ac.top_p) : 'default'],
    ['Token budget / task', p.max_total_tokens !== undefined ? fmtInt(p.max_total_tokens) : 'none'],
    ['Cost budget / task', p.max_cost_usd !== undefined ? fmtUsd(p.max_cost_usd) : 'none'],
  ];
  const selectors: Array<[string, string[]]> = [['Problem ids', s.problem_ids], ['Patterns', s.patterns], ['Applications', s.applications], ['Task types', s.task_types]];
  return (
    <>
      <dl class="kv kv-compact">
        <div class="xp-wide"><dt>Combinations</dt><dd>{e.problem_ids.length} problems × {e.models.length} models × {e.repeats} {e.repeats === 1 ? 'repeat' : 'repeats'} = {e.combinations}</dd></div>
        {selectors.filter(([, v]) => v.length).map(([k, v]) => <div key={k} class="xp-wide"><dt>{k} (as given)</dt><dd class="mono small">{v.join(', ')}</dd></div>)}
        <div class="xp-wide"><dt>Models</dt><dd class="mono small">{e.models.join(', ')}</dd></div>
        {shown.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}
        <div><dt>Created</dt><dd>{fmtDateTime(e.created_at)}</dd></div>
      </dl>
      <details class="io">
        <summary>The {plural(e.problem_ids.length, 'problem')}</summary>
        <ul class="xp-problem-list mono small">{e.problem_ids.map((id) => <li key={id}>{id}</li>)}</ul>
      </details>
    </>
  );
}

/** Spend cap and concurrency caps, changed with PATCH (empty clears a cap). */
function LimitsForm({ e, onSaved }: { e: Experiment; onSaved: (text: string) => void }) {
  const initial = () => ({
    spend: e.limits.spend_cap_usd === null ? '' : String(e.limits.spend_cap_usd),
    perModel: e.limits.max_running_per_model === null ? '' : String(e.limits.max_running_per_model),
    caps: e.models.map((m) => (e.limits.model_max_running[m] === undefined ? '' : String(e.limits.model_max_running[m]))),
  });
  const [v, setV] = useState(initial);
  const [issues, setIssues] = useState<IssueMap>({});
  const [general, setGeneral] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const modelIndex = (m: string) => e.models.indexOf(m);

  const save = async (ev: Event) => {
    ev.preventDefault();
    const num = (s: string) => (s.trim() === '' ? null : Number(s));
    const caps: Record<string, number> = {};
    e.models.forEach((m, i) => { const n = num(v.caps[i] ?? ''); if (n !== null) caps[m] = n; });
    setBusy(true);
    setGeneral(null);
    try {
      await api<Experiment>(`/api/v1/experiments/${e.id}`, {
        method: 'PATCH', body: { spend_cap_usd: num(v.spend), max_running_per_model: num(v.perModel), model_max_running: caps },
      });
      setIssues({});
      onSaved('Limits saved; they apply from the next claim.');
    } catch (err) {
      const { placed, unplaced } = placeIssues(err instanceof ApiError ? err.fieldIssues : [], modelIndex);
      const shown = Object.fromEntries(Object.entries(placed).filter(([k]) => k === 'spend_cap_usd' || k === 'max_running_per_model' || k.startsWith('cap.')));
      setIssues(shown);
      if (unplaced.length || Object.keys(shown).length < Object.keys(placed).length || !Object.keys(shown).length) setGeneral(err as Error);
    } finally {
      setBusy(false);
    }
  };
  const field = (key: string, id: string, label: string, value: string, onInput: (s: string) => void, hint: string, step: string) => (
    <div class={`field ${issues[key] ? 'has-error' : ''}`}>
      <label for={id}>{label}</label>
      <input id={id} type="number" min={step === '1' ? 1 : 0} step={step} inputMode={step === '1' ? 'numeric' : 'decimal'} value={value}
        aria-invalid={issues[key] ? 'true' : undefined} aria-describedby={describedBy(id, !!issues[key])}
        onInput={(x) => { onInput(x.currentTarget.value); if (issues[key]) setIssues(({ [key]: _gone, ...rest }) => rest); }} />
      <span class="hint" id={`${id}-hint`}>{hint}</span>
      <FieldErrors id={`${id}-error`} issues={issues[key]} />
    </div>
  );
  return (
    <form class="xp-limits" onSubmit={save} noValidate>
      {general && <ErrorNotice error={general} />}
      <div class="param-grid">
        {field('spend_cap_usd', 'l-spend', 'Spend cap (USD)', v.spend, (s) => setV({ ...v, spend: s }), 'no new task starts once spend reaches it; empty: no cap', 'any')}
        {field('max_running_per_model', 'l-per-model', 'Running per model', v.perModel, (s) => setV({ ...v, perModel: s }), 'for every model; empty: no cap', '1')}
        {e.models.map((m, i) => field(`cap.${i}`, `l-cap-${i}`, `Running: ${m}`, v.caps[i] ?? '', (s) => setV({ ...v, caps: v.caps.map((c, j) => (j === i ? s : c)) }), 'overrides the per-model cap', '1'))}
      </div>
      <div class="form-actions">
        <button type="submit" class="btn" disabled={busy}>{busy ? 'Saving…' : 'Save limits'}</button>
      </div>
    </form>
  );
}

function ProgressTab({ e, onChanged }: { e: Experiment; onChanged: (text: string) => void }) {
  const p = e.progress;
  return (
    <>
      <section class="card" aria-labelledby="xp-progress-h">
        <h2 id="xp-progress-h">Progress <span class="count">{progressSummary(p)}</span></h2>
        <ProgressBar counts={p.counts} total={p.combinations} label="All models" />
        <dl class="kv kv-compact xp-facts">
          <div><dt>Finished</dt><dd data-fact="finished">{p.finished} of {p.combinations}</dd></div>
          <div><dt>Tasks created</dt><dd data-fact="tasks_total" title="retries included">{p.tasks_total}</dd></div>
          <div><dt>Spend so far</dt><dd data-fact="spend">{fmtUsd(p.spend_usd)}</dd></div>
          <div>
            <dt>Spend cap</dt>
            <dd data-fact="cap" class={p.spend_cap_reached ? 'bad' : undefined}>{p.spend_cap_usd === null ? 'none' : `${fmtCap(p.spend_cap_usd)}${p.spend_cap_reached ? ' — reached' : ''}`}</dd>
          </div>
          <div><dt>Estimated remaining</dt><dd data-fact="remaining">{estimateText(p.estimated_remaining_cost_usd)}</dd></div>
        </dl>
        {p.spend_cap_reached && e.status === 'active' && (
          <p class="notice notice-warning small">The spend cap is reached: no new task of this experiment starts. Raise the cap below to continue.</p>
        )}
      </section>
      <section class="card" aria-labelledby="xp-models-h">
        <h2 id="xp-models-h">By model</h2>
        <ModelProgressTable rows={p.by_model} caption="Progress by model" />
        <p class="muted small">Cost per task is observed from a model's ended tasks, or estimated (est.) from catalog prices and the tokens other models' tasks used. Estimated remaining covers tasks not yet started and what running ones are still expected to spend.</p>
      </section>
      <div class="grid-2">
        <section class="card" aria-labelledby="xp-def-h">
          <h2 id="xp-def-h">Definition</h2>
          <Definition e={e} />
        </section>
        <section class="card" aria-labelledby="xp-limits-h">
          <h2 id="xp-limits-h">Limits</h2>
          {/* Remounted when the stored limits change (saved here, or elsewhere), so it shows them. */}
          <LimitsForm key={JSON.stringify(e.limits)} e={e} onSaved={onChanged} />
        </section>
      </div>
    </>
  );
}

function Downloads({ e }: { e: Experiment }) {
  const base = `/api/v1/experiments/${e.id}/results`;
  const tables: Array<[string, string]> = [['summary', 'model × task type'], ['by_model', 'per model'], ['detail', 'problem × model'], ['tasks', 'per task']];
  return (
    <nav class="xp-downloads" aria-label="Downloads">
      <span class="muted small">Download:</span>
      {tables.map(([t, label]) => (
        <a key={t} class="btn btn-small" href={`${base}${query({ format: 'csv', table: t })}`} download={`${e.name}-${t}.csv`} data-download={t}>CSV {label}</a>
      ))}
      <a class="btn btn-small" href={`${base}?download=true`} download={`${e.name}-results.json`} data-download="json">JSON, all tables</a>
    </nav>
  );
}

function ResultsTab({ e }: { e: Experiment }) {
  const results = useResource(
    (signal) => api<ExperimentResults>(`/api/v1/experiments/${e.id}/results`, { signal }),
    [e.id],
    { stream: GLOBAL_STREAM, when: (ev: LiveEvent) => ev.type === 'task' && ev.data.experiment_id === e.id && ev.data.status !== 'pending' && ev.data.status !== 'running', debounceMs: 800 },
  );
  const [filter, setFilter] = useState('');
  const r = results.data;
  const types = useMemo(() => [...new Set((r?.summary ?? []).map((x) => x.task_type))].sort((a, b) => typeRank(a) - typeRank(b) || a.localeCompare(b)), [r]);
  const cell = useMemo(() => new Map((r?.summary ?? []).map((x) => [`${x.task_type}|${x.model}`, x])), [r]);
  const all = useMemo(() => new Map((r?.by_model ?? []).map((x) => [x.model, x])), [r]);
  const ALL = 'all types';
  const stat = (c: string, m: string) => (c === ALL ? all.get(m) : cell.get(`${c}|${m}`));
  const needle = filter.trim().toLowerCase();
  const detail = (r?.detail ?? []).filter((d) => !needle || d.problem_id.toLowerCase().includes(needle) || d.model.toLowerCase().includes(needle));

  if (results.error && !r) return <ErrorNotice error={results.error} what="the results" />;
  if (!r) return <Loading />;
  const categories = types.length > 1 ? [...types, ALL] : types;
  return (
    <>
      <ErrorNotice error={results.error} what="the latest results" />
      <Downloads e={e} />
      {r.summary.length === 0 ? (
        <section class="card"><Empty>No task of this experiment has ended yet; the tables fill in as tasks finish.</Empty></section>
      ) : (
        <>
          <div class="grid-2">
            <section class="card" aria-labelledby="xp-rate-h">
              <h2 id="xp-rate-h">Success rate per model and task type</h2>
              <GroupedBars label="Success rate per task type and model, with 95 % confidence intervals" categories={categories} series={e.models} categoryHeading="Task type" intervalHeading="95% CI"
                max={1} format={(n) => fmtRate(n).replace('.0%', '%')}
                value={(c, m) => { const s = stat(c, m); return s && s.success_rate !== null ? { value: s.success_rate, low: s.success_ci_low, high: s.success_ci_high, note: `${s.successes}/${s.tasks}` } : null; }} />
            </section>
            <section class="card" aria-labelledby="xp-cost-h">
              <h2 id="xp-cost-h">Cost per task</h2>
              <GroupedBars label="Mean cost per task by task type and model" categories={categories} series={e.models} categoryHeading="Task type"
                format={fmtCost}
                value={(c, m) => { const s = stat(c, m); return s && s.cost_per_task_usd !== null ? { value: s.cost_per_task_usd, note: `${plural(s.tasks, 'task')}, ${fmtCost(s.cost_total_usd)} in total` } : null; }} />
            </section>
          </div>
          <section class="card" aria-labelledby="xp-summary-h">
            <h2 id="xp-summary-h">Per model and task type</h2>
            <SummaryTable rows={r.summary} />
          </section>
          <section class="card" aria-labelledby="xp-bymodel-h">
            <h2 id="xp-bymodel-h">Per model</h2>
            <ByModelTable rows={r.by_model} />
          </section>
          <section class="card" aria-labelledby="xp-detail-h">
            <h2 id="xp-detail-h">Per problem and model <span class="count">{r.detail.length}</span></h2>
            {r.detail.length > 8 && (
              <div class="field xp-filter">
                <label for="xp-detail-filter">Filter by problem or model</label>
                <input id="xp-detail-filter" type="search" value={filter} onInput={(x) => setFilter(x.currentTarget.value)} />
              </div>
            )}
            <div class="table-tall">
              {detail.length ? <DetailTable rows={detail} /> : <Empty>No row matches.</Empty>}
            </div>
          </section>
          <details class="card xp-definitions">
            <summary>How these numbers are computed</summary>
            <dl class="kv">
              {Object.entries(r.definitions).map(([k, v]) => <div key={k}><dt class="mono">{k}</dt><dd>{v}</dd></div>)}
            </dl>
          </details>
        </>
      )}
    </>
  );
}

function TasksTab({ e, params }: { e: Experiment; params: URLSearchParams }) {
  const statuses = (params.get('status') ?? '').split(',').filter((s): s is TaskStatus => (TASK_STATUSES as readonly string[]).includes(s));
  const page = Math.max(1, Math.floor(Number(params.get('page')) || 1));
  const go = (patch: Record<string, string | number | null>) => navigate(`/experiments/${e.name}`, { tab: 'tasks', status: statuses.join(',') || null, page: null, ...patch });
  const list = useResource(
    (signal) => api<TaskPage>(`/api/v1/tasks${query({ experiment_id: e.id, status: statuses.join(',') || null, sort: '-created_at', page, page_size: 50 })}`, { signal }),
    [e.id, statuses.join(','), page],
    { stream: GLOBAL_STREAM, when: (ev: LiveEvent) => ev.type === 'task' && ev.data.experiment_id === e.id },
  );
  const toggle = (s: TaskStatus) => {
    const next = statuses.includes(s) ? statuses.filter((x) => x !== s) : [...statuses, s];
    go({ status: TASK_STATUSES.filter((x) => next.includes(x)).join(',') || null });
  };
  return (
    <section class="card" aria-label="Tasks of this experiment">
      <fieldset class="status-filter">
        <legend>Status</legend>
        <div class="chips">
          {TASK_STATUSES.map((s) => (
            <label key={s} class={`chip ${statuses.includes(s) ? 'chip-on' : ''}`}>
              <input type="checkbox" name="status" value={s} checked={statuses.includes(s)} onChange={() => toggle(s)} />
              {s}
            </label>
          ))}
        </div>
      </fieldset>
      <ErrorNotice error={list.error} what="the tasks" />
      {list.data ? (
        <>
          {list.data.tasks.length
            ? <TaskTable tasks={list.data.tasks} columns={['problem', 'status', 'model', 'worker', 'duration', 'reward', 'cost']} caption="Tasks of this experiment" />
            : <Empty>No task matches.</Empty>}
          <Pagination page={page} pageSize={50} total={list.data.total} onPage={(p) => go({ page: p === 1 ? null : p })} />
        </>
      ) : !list.error && <Loading />}
    </section>
  );
}

export function ExperimentsDetailPage({ reference, params }: { reference: string; params: URLSearchParams }) {
  const tab: TabId = TABS.some((t) => t.id === params.get('tab')) ? (params.get('tab') as TabId) : 'progress';
  const [notice, setNotice] = useState<string | null>(() => {
    if (flash?.ref !== reference) return null;
    const text = flash.text;
    flash = null;
    return text;
  });
  const exp: Resource<Experiment> = useResource(
    (signal) => api<Experiment>(`/api/v1/experiments/${encodeURIComponent(reference)}`, { signal }),
    [reference],
    {
      stream: GLOBAL_STREAM,
      when: (ev: LiveEvent): boolean => {
        const e = exp.data;
        if (!e) return false;
        return (ev.type === 'task' && ev.data.experiment_id === e.id) || (ev.type === 'message' && e.progress.counts.running > 0);
      },
      debounceMs: 500,
    },
  );
  const e = exp.data && (exp.data.name === reference || exp.data.id === reference) ? exp.data : undefined;

  if (exp.error && !e) {
    const missing = exp.error instanceof ApiError && exp.error.status === 404;
    return (
      <section>
        <p class="breadcrumb"><a href={href('/experiments')}>Experiments</a> /</p>
        <PageHeader title={missing ? 'Experiment not found' : 'Experiment'} />
        {missing ? <p>No experiment has the name or id <code>{reference}</code>. <a href={href('/experiments')}>All experiments</a></p> : <ErrorNotice error={exp.error} what="the experiment" />}
      </section>
    );
  }
  if (!e) return <section><p class="breadcrumb"><a href={href('/experiments')}>Experiments</a> /</p><PageHeader title={reference} /><Loading /></section>;

  const changed = (text: string) => { setNotice(text); exp.reload(); };
  return (
    <section>
      <p class="breadcrumb"><a href={href('/experiments')}>Experiments</a> /</p>
      <PageHeader title={e.name} subtitle={e.description ?? <span class="mono small">{e.id}</span>}>
        <ExperimentStatusBadge status={e.progress.status} />
        <ResumeControl e={e} onDone={changed} />
        <CancelControl e={e} onDone={changed} />
      </PageHeader>
      {notice && (
        <div class="notice notice-info" role="status">
          {notice} <button type="button" class="btn-link" onClick={() => setNotice(null)}>Dismiss</button>
        </div>
      )}
      <nav class="tabs" aria-label="Experiment sections">
        {TABS.map((x) => (
          <a key={x.id} href={href(`/experiments/${e.name}`, { tab: x.id === 'progress' ? null : x.id })} aria-current={tab === x.id ? 'page' : undefined}>
            {x.label}
            {x.id === 'tasks' && <span class="count">{e.progress.tasks_total}</span>}
          </a>
        ))}
      </nav>
      {tab === 'progress' && <ProgressTab e={e} onChanged={changed} />}
      {tab === 'results' && <ResultsTab e={e} />}
      {tab === 'tasks' && <TasksTab e={e} params={params} />}
    </section>
  );
}
