/**
 * An experiment's progress: its derived status as a pill, a bar of its combinations by the status
 * of their current task (with the counts written out beside it, so colour is never the only
 * carrier), and the per-model breakdown with spend, estimates and concurrency caps.
 */
import { DASH, fmtInt, fmtPercent, fmtUsd } from '../format';
import type { ExperimentCountKey, ExperimentCounts, ExperimentModelProgress, ExperimentProgress, ExperimentStatus } from '../types';

/** Bar order: ended first (left), then in progress, then not started. */
export const COUNT_KEYS: ExperimentCountKey[] = ['completed', 'failed', 'timeout', 'running', 'pending', 'cancelled', 'not_created'];

export const COUNT_LABELS: Record<ExperimentCountKey, string> = {
  completed: 'completed', failed: 'failed', timeout: 'timeout', running: 'running', pending: 'pending', cancelled: 'cancelled', not_created: 'not created',
};

const STATUS_TEXT: Record<ExperimentStatus, string> = {
  queued: 'queued', running: 'running', spend_cap_reached: 'spend cap reached', completed: 'completed', incomplete: 'incomplete', cancelled: 'cancelled',
};
/** Reuses the task badge colours: a finished experiment is green, an interrupted one amber. */
const STATUS_BADGE: Record<ExperimentStatus, string> = {
  queued: 'pending', running: 'running', spend_cap_reached: 'timeout', completed: 'completed', incomplete: 'timeout', cancelled: 'cancelled',
};

export function ExperimentStatusBadge({ status }: { status: ExperimentStatus }) {
  return <span class={`badge badge-${STATUS_BADGE[status] ?? 'neutral'}`} data-status={status}>{STATUS_TEXT[status] ?? status}</span>;
}

function describe(counts: ExperimentCounts, total: number): string {
  const parts = COUNT_KEYS.filter((k) => counts[k] > 0).map((k) => `${counts[k]} ${COUNT_LABELS[k]}`);
  return `${total} combinations: ${parts.join(', ') || 'none'}`;
}

/** The combinations by status as one bar; `compact` leaves out the legend (tables). */
export function ProgressBar({ counts, total, compact = false, label }: { counts: ExperimentCounts; total: number; compact?: boolean; label?: string }) {
  const sum = COUNT_KEYS.reduce((a, k) => a + (counts[k] ?? 0), 0);
  const denom = Math.max(total, sum, 1);
  return (
    <div class={`xp-progress ${compact ? 'xp-progress-compact' : ''}`}>
      <div class="xp-bar" role="img" aria-label={`${label ? `${label}: ` : ''}${describe(counts, total)}`}>
        {COUNT_KEYS.map((k) => (counts[k] ?? 0) > 0 && (
          <span key={k} class={`xp-seg xp-${k}`} style={{ width: `${((counts[k] ?? 0) / denom) * 100}%` }} title={`${counts[k]} ${COUNT_LABELS[k]}`} data-count={k} />
        ))}
      </div>
      {!compact && (
        <ul class="legend xp-legend" aria-label="Combinations by status">
          {COUNT_KEYS.map((k) => (
            <li key={k} data-count={k} class={(counts[k] ?? 0) === 0 ? 'xp-zero' : undefined}>
              <span class={`swatch xp-${k}`} aria-hidden="true" />
              <strong class="xp-count">{fmtInt(counts[k] ?? 0)}</strong> {COUNT_LABELS[k]}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

const BASIS: Record<ExperimentModelProgress['estimate_basis'], string> = {
  observed: 'from its ended tasks',
  prices: 'from catalog prices and the tokens of ended tasks',
  unknown: 'no task has ended yet',
};

/** A cap as it was typed: $0.50, $12, $0.125. */
export function fmtCap(v: number): string {
  return Number.isInteger(v * 100) ? `$${v.toFixed(2)}` : `$${v}`;
}

export function estimateText(v: number | null, basis?: ExperimentModelProgress['estimate_basis']): string {
  if (v === null) return basis === 'unknown' || basis === undefined ? 'unknown yet' : DASH;
  return fmtUsd(v);
}

/** Finished ÷ combinations, with the spend against its cap. */
export function progressSummary(p: ExperimentProgress): string {
  return `${p.finished} of ${p.combinations} finished (${fmtPercent(p.percent_finished / 100, p.percent_finished % 1 ? 1 : 0)})`;
}

export function ModelProgressTable({ rows, caption }: { rows: ExperimentModelProgress[]; caption: string }) {
  return (
    <div class="table-scroll">
      <table class="data-table cards-on-phone xp-model-table">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col" class="xp-col-bar">Progress</th>
            <th scope="col" class="num">Done</th>
            <th scope="col" class="num">Failed</th>
            <th scope="col" class="num">Running</th>
            <th scope="col" class="num">Waiting</th>
            <th scope="col" class="num">Spend</th>
            <th scope="col" class="num">Cost / task</th>
            <th scope="col" class="num">Est. remaining</th>
            <th scope="col" class="num">Max running</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((m) => {
            const c = m.counts;
            return (
              <tr key={m.model} data-model={m.model}>
                <th scope="row" data-label="Model" class="mono small">{m.model}</th>
                <td data-label="Progress" class="xp-col-bar"><ProgressBar counts={c} total={m.combinations} compact label={m.model} /></td>
                <td data-label="Done" class="num" data-col="done">{c.completed} / {m.combinations}</td>
                <td data-label="Failed" class="num" data-col="failed">{c.failed + c.timeout}</td>
                <td data-label="Running" class="num" data-col="running">{c.running}</td>
                <td data-label="Waiting" class="num" data-col="waiting" title="pending, cancelled and not yet created">{c.pending + c.cancelled + c.not_created}</td>
                <td data-label="Spend" class="num" data-col="spend">{fmtUsd(m.spend_usd)}</td>
                <td data-label="Cost / task" class="num" data-col="cost_per_task" title={BASIS[m.estimate_basis]}>
                  {m.cost_per_task_usd === null ? DASH : <>{fmtUsd(m.cost_per_task_usd)}{m.estimate_basis === 'prices' && <span class="muted small"> (est.)</span>}</>}
                </td>
                <td data-label="Est. remaining" class="num" data-col="remaining" title={BASIS[m.estimate_basis]}>{estimateText(m.estimated_remaining_cost_usd, m.estimate_basis)}</td>
                <td data-label="Max running" class="num" data-col="max_running">{m.max_running ?? 'no cap'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
