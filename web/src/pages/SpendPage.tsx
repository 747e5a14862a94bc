/**
 * Models and spend: cost and tokens per day and model, success rate per task type and per model
 * (charts), totals by model, and the model catalog with prices.
 */
import { useMemo, useState } from 'preact/hooks';
import { api, query } from '../api';
import { RateBars, StackedBars } from '../components/charts';
import { Empty, ErrorNotice, Loading } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { SpendTable } from '../components/SpendTable';
import { agoFromSeconds, fmtCompact, fmtInt, fmtPerMillion, fmtUsd, viewerTimeZone } from '../format';
import { useResource } from '../hooks';
import { GLOBAL_STREAM } from '../live';
import { navigate } from '../router';
import type { ModelCatalog, Spend, SuccessRow } from '../types';

const RANGES = [7, 30, 90];

/** Every calendar day from `since` to `today` (days without calls still get a slot). */
export function dayRange(today: string, days: number): string[] {
  const end = Date.parse(`${today}T00:00:00Z`);
  return Array.from({ length: days }, (_, i) => new Date(end - (days - 1 - i) * 86_400_000).toISOString().slice(0, 10));
}

function fmtDay(d: string): string {
  const dt = new Date(`${d}T00:00:00Z`);
  return dt.toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
}

function rateRows(rows: SuccessRow[]) {
  return rows.map((r) => ({
    key: r.key,
    rate: r.success_rate,
    note: <>{r.succeeded}/{r.ended} runs{r.avg_reward !== null ? ` · avg reward ${r.avg_reward.toFixed(2)}` : ''}</>,
  }));
}

function ModelCatalogTable() {
  const catalog = useResource((signal) => api<ModelCatalog>('/api/v1/models', { signal }), []);
  const [search, setSearch] = useState('');
  const needle = search.trim().toLowerCase();
  const rows = (catalog.data?.models ?? []).filter((m) => !needle || m.id.toLowerCase().includes(needle) || (m.name ?? '').toLowerCase().includes(needle));
  const aliasesOf = useMemo(() => {
    const out = new Map<string, string[]>();
    for (const [a, id] of Object.entries(catalog.data?.aliases ?? {})) out.set(id, [...(out.get(id) ?? []), a]);
    return out;
  }, [catalog.data]);
  const c = catalog.data;
  return (
    <section class="card" aria-labelledby="catalog-h">
      <h2 id="catalog-h">Model catalog {c && <span class="count">{c.total}</span>}</h2>
      <ErrorNotice error={catalog.error} what="the model catalog" />
      {c && (
        <p class="muted small">
          {c.fetched_at ? <>Prices from OpenRouter, fetched {agoFromSeconds(c.age_seconds ?? 0)}{c.stale ? ' — stale, refreshed on the next run' : ''}.</> : 'The catalog has not been fetched yet.'}
          {c.default_model && <> Default model: <span class="mono">{c.default_model}</span>.</>}
        </p>
      )}
      {c && c.models.length > 0 && (
        <>
          <div class="field">
            <label for="catalog-search">Find a model</label>
            <input id="catalog-search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="e.g. gpt-4o" />
          </div>
          <div class="table-scroll table-tall">
            <table class="data-table cards-on-phone">
              <caption class="visually-hidden">Model catalog</caption>
              <thead><tr><th scope="col">Model</th><th scope="col" class="num">Context</th><th scope="col" class="num">Input / M</th><th scope="col" class="num">Output / M</th></tr></thead>
              <tbody>
                {rows.slice(0, 300).map((m) => (
                  <tr key={m.id}>
                    <th scope="row" data-label="Model"><span class="mono small">{m.id}</span>{aliasesOf.get(m.id) && <span class="muted small"> ({aliasesOf.get(m.id)!.join(', ')})</span>}</th>
                    <td data-label="Context" class="num">{fmtCompact(m.context_length)}</td>
                    <td data-label="Input / M" class="num">{fmtPerMillion(m.pricing?.prompt)}</td>
                    <td data-label="Output / M" class="num">{fmtPerMillion(m.pricing?.completion)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {rows.length > 300 && <p class="muted small">Showing 300 of {rows.length}; narrow the search.</p>}
        </>
      )}
      {!c && !catalog.error && <Loading />}
    </section>
  );
}

export function SpendPage({ params }: { params: URLSearchParams }) {
  const days = RANGES.includes(Number(params.get('days'))) ? Number(params.get('days')) : 30;
  const spend = useResource((signal) => api<Spend>(`/api/v1/stats/spend${query({ days, tz: viewerTimeZone() })}`, { signal }), [days],
    { stream: GLOBAL_STREAM, when: (e) => e.type === 'message' || (e.type === 'task' && ['completed', 'failed', 'timeout'].includes(String(e.data.status))), debounceMs: 2000 });
  const s = spend.data;
  const categories = s ? dayRange(s.today, s.days) : [];
  // Sorted by name, so a model keeps its colour whatever its rank.
  const series = s ? s.totals_by_model.map((r) => r.model).sort() : [];
  const cell = useMemo(() => {
    const m = new Map<string, { cost: number; tokens: number }>();
    for (const r of s?.daily ?? []) m.set(`${r.day}|${r.model}`, { cost: r.cost_usd, tokens: r.total_tokens });
    return m;
  }, [s]);
  const total = s ? s.totals_by_model.reduce((a, r) => ({ cost: a.cost + r.cost_usd, tokens: a.tokens + r.total_tokens }), { cost: 0, tokens: 0 }) : null;

  return (
    <section>
      <PageHeader title="Models and spend" subtitle={total ? `${fmtUsd(total.cost)} and ${fmtCompact(total.tokens)} tokens in the last ${days} days` : undefined}>
        <div class="segmented" role="group" aria-label="Period">
          {RANGES.map((d) => (
            <button key={d} type="button" class="btn" aria-pressed={d === days} onClick={() => navigate('/spend', { days: d === 30 ? null : d })}>{d} days</button>
          ))}
        </div>
      </PageHeader>
      <ErrorNotice error={spend.error} what="spend statistics" />
      {!s && !spend.error && <Loading />}
      {s && (
        <>
          <div class="grid-2">
            <section class="card" aria-labelledby="cost-h">
              <h2 id="cost-h">Cost per day</h2>
              {series.length ? <StackedBars label="Cost per day by model" categories={categories} series={series} value={(d, m) => cell.get(`${d}|${m}`)?.cost ?? 0} format={fmtUsd} formatCategory={fmtDay} />
                : <Empty>No LLM calls in this period.</Empty>}
            </section>
            <section class="card" aria-labelledby="tokens-h">
              <h2 id="tokens-h">Tokens per day</h2>
              {series.length ? <StackedBars label="Tokens per day by model" categories={categories} series={series} value={(d, m) => cell.get(`${d}|${m}`)?.tokens ?? 0} format={fmtCompact} formatCategory={fmtDay} />
                : <Empty>No LLM calls in this period.</Empty>}
            </section>
            <section class="card" aria-labelledby="type-h">
              <h2 id="type-h">Success rate per task type</h2>
              {s.success_by_task_type.length ? <RateBars label="Success rate per task type" rows={rateRows(s.success_by_task_type)} /> : <Empty>No task ended in this period.</Empty>}
            </section>
            <section class="card" aria-labelledby="model-rate-h">
              <h2 id="model-rate-h">Success rate per model</h2>
              {s.success_by_model.length ? <RateBars label="Success rate per model" rows={rateRows(s.success_by_model)} /> : <Empty>No task ended in this period.</Empty>}
            </section>
          </div>
          <section class="card" aria-labelledby="totals-h">
            <h2 id="totals-h">Totals by model, last {days} days</h2>
            {s.totals_by_model.length ? <SpendTable rows={s.totals_by_model} caption={`Totals by model over ${days} days`} /> : <Empty>No LLM calls in this period.</Empty>}
            <p class="muted small">Days are calendar days in {s.tz}; a run counts on the day it started. {fmtInt(s.totals_by_model.reduce((a, r) => a + r.llm_calls, 0))} LLM calls.</p>
          </section>
        </>
      )}
      <ModelCatalogTable />
    </section>
  );
}
