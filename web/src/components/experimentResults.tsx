/**
 * The results tables of an experiment as researchers publish them: per model × task type, per
 * model, and per problem × model. Numbers keep the precision the API gives (rates to 0.1 %, costs
 * to four significant digits), with the unrounded value in each cell's title.
 */
import type { ComponentChildren } from 'preact';
import { DASH, fmtInt } from '../format';
import type { ResultStats } from '../types';

/** A proportion as a percentage to 0.1, rounding halves up (0.0945 is 9.5 %, not the binary 9.4). */
function pct(r: number): string {
  const v = Number((r * 100).toPrecision(12));
  return (Math.round(v * 10) / 10).toFixed(1);
}

export function fmtRate(r: number | null | undefined): string {
  return typeof r === 'number' && Number.isFinite(r) ? `${pct(r)}%` : DASH;
}

export function fmtInterval(low: number | null | undefined, high: number | null | undefined): string {
  if (typeof low !== 'number' || typeof high !== 'number') return DASH;
  return `${pct(low)}–${pct(high)}%`;
}

/** USD to four significant digits (0.01875 stays 0.01875, 0.0113333 is 0.01133). */
export function fmtCost(v: number | null | undefined): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return DASH;
  if (v === 0) return '$0';
  if (Math.abs(v) >= 1000) return `$${Math.round(v).toLocaleString('en-US')}`;
  const s = v.toPrecision(4);
  return `$${s.includes('e') ? s : s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s}`;
}

export function fmtNumber(v: number | null | undefined, digits: number): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits }) : DASH;
}

export function fmtSeconds(v: number | null | undefined): string {
  return typeof v === 'number' && Number.isFinite(v) ? `${fmtNumber(v, 2)} s` : DASH;
}

interface Column<R> {
  key: string;
  label: ComponentChildren;
  /** data-label on phones (the column name in words). */
  text: string;
  num?: boolean;
  cell: (r: R) => ComponentChildren;
  title?: (r: R) => string | undefined;
}

type Row = ResultStats & { model: string; task_type?: string; problem_id?: string };

const tasksCell = (r: ResultStats) => (
  <>{r.tasks}{r.errored > 0 && <span class="muted small" title="failed or timed out: counted as not successful"> ({r.errored} errored)</span>}</>
);

function statsColumns<R extends Row>(opts: { ttx: boolean; compact?: boolean }): Array<Column<R>> {
  const cols: Array<Column<R>> = [
    { key: 'tasks', label: 'Tasks', text: 'Tasks', num: true, cell: tasksCell },
    { key: 'success_rate', label: 'Success', text: 'Success', num: true, cell: (r) => <><strong>{fmtRate(r.success_rate)}</strong> <span class="muted small">{r.successes}/{r.tasks}</span></> },
    { key: 'success_ci', label: <abbr title="95 % Wilson score interval of the success rate">95% CI</abbr>, text: '95% CI', num: true, cell: (r) => fmtInterval(r.success_ci_low, r.success_ci_high) },
  ];
  if (opts.ttx) {
    cols.push(
      { key: 'ttx_mean', label: <abbr title="Time to detect / localize / analyse / mitigate (TTD/TTL/TTA/TTM), evaluated tasks">TTX mean</abbr>, text: 'TTX mean', num: true,
        cell: (r) => (r.ttx_mean_s === null ? DASH : <>{r.ttx_name && <span class="muted small">{r.ttx_name} </span>}{fmtSeconds(r.ttx_mean_s)}</>) },
    );
    if (!opts.compact) cols.push({ key: 'ttx_median', label: 'TTX median', text: 'TTX median', num: true, cell: (r) => fmtSeconds(r.ttx_median_s) });
  }
  cols.push({ key: 'steps_mean', label: 'Steps mean', text: 'Steps mean', num: true, cell: (r) => fmtNumber(r.steps_mean, 2) });
  if (!opts.compact) {
    cols.push(
      { key: 'steps_median', label: 'Steps median', text: 'Steps median', num: true, cell: (r) => fmtNumber(r.steps_median, 2) },
      { key: 'input_tokens_mean', label: 'Input tok. / task', text: 'Input tokens / task', num: true, cell: (r) => fmtNumber(r.input_tokens_mean, 1), title: (r) => `${fmtInt(r.input_tokens_total)} in total` },
      { key: 'output_tokens_mean', label: 'Output tok. / task', text: 'Output tokens / task', num: true, cell: (r) => fmtNumber(r.output_tokens_mean, 1), title: (r) => `${fmtInt(r.output_tokens_total)} in total` },
    );
  }
  cols.push(
    { key: 'cost_per_task', label: 'Cost / task', text: 'Cost / task', num: true, cell: (r) => fmtCost(r.cost_per_task_usd), title: (r) => (r.cost_per_task_usd === null ? undefined : `$${r.cost_per_task_usd}`) },
    { key: 'cost_total', label: 'Total cost', text: 'Total cost', num: true, cell: (r) => fmtCost(r.cost_total_usd), title: (r) => `$${r.cost_total_usd}` },
  );
  return cols;
}

function ResultsTable<R extends Row>({ rows, head, stats, caption, rowKey, foot }: {
  rows: R[];
  head: Array<Column<R>>;
  stats: Array<Column<R>>;
  caption: string;
  rowKey: (r: R) => string;
  foot?: ComponentChildren;
}) {
  const cols = [...head, ...stats];
  return (
    <div class="table-scroll">
      <table class="data-table cards-on-phone xp-results">
        <caption class="visually-hidden">{caption}</caption>
        <thead><tr>{cols.map((c) => <th key={c.key} scope="col" class={c.num ? 'num' : undefined}>{c.label}</th>)}</tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)} data-row={rowKey(r)}>
              {cols.map((c, i) => {
                const props = { key: c.key, 'data-label': c.text, 'data-col': c.key, class: [c.num ? 'num' : '', i === 0 ? 'mono small' : ''].filter(Boolean).join(' ') || undefined, title: c.title?.(r) };
                return i === 0 ? <th scope="row" {...props}>{c.cell(r)}</th> : <td {...props}>{c.cell(r)}</td>;
              })}
            </tr>
          ))}
        </tbody>
        {foot}
      </table>
    </div>
  );
}

const modelCol = <R extends Row>(): Column<R> => ({ key: 'model', label: 'Model', text: 'Model', cell: (r) => r.model });
const typeCol = <R extends Row>(): Column<R> => ({ key: 'task_type', label: 'Task type', text: 'Task type', cell: (r) => r.task_type ?? DASH });

export function SummaryTable({ rows }: { rows: Array<ResultStats & { model: string; task_type: string }> }) {
  return <ResultsTable rows={rows} head={[modelCol(), typeCol()]} stats={statsColumns({ ttx: true })} caption="Results per model and task type" rowKey={(r) => `${r.model}|${r.task_type}`} />;
}

export function ByModelTable({ rows }: { rows: Array<ResultStats & { model: string }> }) {
  const sum = (f: (r: ResultStats) => number) => rows.reduce((a, r) => a + f(r), 0);
  const tasks = sum((r) => r.tasks);
  const successes = sum((r) => r.successes);
  const cost = sum((r) => r.cost_total_usd);
  const stats = statsColumns<ResultStats & { model: string }>({ ttx: false });
  const foot = rows.length > 1 ? (
    <tfoot>
      <tr data-row="all">
        <th scope="row" data-label="Model">All models</th>
        {stats.map((c) => {
          const v = c.key === 'tasks' ? String(tasks)
            : c.key === 'success_rate' ? <><strong>{fmtRate(tasks ? successes / tasks : null)}</strong> <span class="muted small">{successes}/{tasks}</span></>
              : c.key === 'cost_per_task' ? fmtCost(tasks ? cost / tasks : null)
                : c.key === 'cost_total' ? fmtCost(Math.round(cost * 1e8) / 1e8) : '';
          return <td key={c.key} data-label={c.text} data-col={c.key} class="num">{v}</td>;
        })}
      </tr>
    </tfoot>
  ) : undefined;
  return <ResultsTable rows={rows} head={[modelCol()]} stats={stats} caption="Results per model" rowKey={(r) => r.model} foot={foot} />;
}

export function DetailTable({ rows }: { rows: Array<ResultStats & { model: string; task_type: string; problem_id: string }> }) {
  const head: Array<Column<(typeof rows)[number]>> = [
    // The task type is in the problem id (and in the CSV); left out here so the table fits a laptop.
    { key: 'problem_id', label: 'Problem', text: 'Problem', cell: (r) => r.problem_id, title: (r) => r.task_type },
    modelCol(),
  ];
  return <ResultsTable rows={rows} head={head} stats={statsColumns({ ttx: true, compact: true })} caption="Results per problem and model" rowKey={(r) => `${r.problem_id}|${r.model}`} />;
}
