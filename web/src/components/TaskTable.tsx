/**
 * Tasks as a table on wide screens and as stacked cards on phones (CSS uses each cell's
 * data-label). Elapsed time of running tasks ticks without refetching.
 */
import { DASH, durationBetween, fmtAgo, fmtDuration, fmtUsd, num, shortId } from '../format';
import { useNow } from '../hooks';
import { href } from '../router';
import type { Task } from '../types';
import { StatusBadge } from './StatusBadge';

export type TaskColumn = 'problem' | 'status' | 'model' | 'worker' | 'priority' | 'created' | 'duration' | 'reward' | 'cost' | 'error';

const HEADERS: Record<TaskColumn, string> = {
  problem: 'Problem', status: 'Status', model: 'Model', worker: 'Worker', priority: 'Priority', created: 'Created',
  duration: 'Duration', reward: 'Reward', cost: 'Cost', error: 'Error',
};
const NUMERIC = new Set<TaskColumn>(['priority', 'duration', 'reward', 'cost']);
/** Long text: on phones it goes under its label instead of beside it. */
const BLOCK = new Set<TaskColumn>(['error']);

export function taskDurationMs(t: Task, now: number): number | null {
  if (!t.started_at) return null;
  return durationBetween(t.started_at, t.completed_at ?? (t.status === 'running' ? now : null));
}

function cell(t: Task, c: TaskColumn, now: number) {
  switch (c) {
    case 'problem':
      return <a href={href(`/tasks/${t.id}`)} class="task-link"><span class="mono">{t.problem_id}</span><span class="muted small"> #{shortId(t.id)}</span></a>;
    case 'status': return <StatusBadge status={t.status} />;
    case 'model': return <span class="mono small">{String(t.result?.model ?? t.parameters?.agent_config?.model ?? DASH)}</span>;
    case 'worker': return t.worker_id ? <span class="mono small nowrap">{t.worker_id}</span> : DASH;
    case 'priority': return t.priority;
    case 'created': return <time dateTime={t.created_at} title={new Date(t.created_at).toLocaleString()}>{fmtAgo(t.created_at, now)}</time>;
    case 'duration': return fmtDuration(taskDurationMs(t, now));
    case 'reward': {
      const r = num(t.result?.reward);
      const s = t.result?.success;
      return r === null && typeof s !== 'boolean' ? DASH : <span class={s === true ? 'ok' : s === false ? 'bad' : ''}>{r === null ? (s ? '✓' : '✗') : r.toFixed(2)}</span>;
    }
    case 'cost': return fmtUsd(num(t.result?.usage?.cost_usd));
    case 'error': return t.error_type ? <div title={t.error_details ?? undefined}><code>{t.error_type}</code> <span class="muted small clamp">{t.error_details}</span></div> : DASH;
  }
}

export function TaskTable({ tasks, columns, caption }: { tasks: Task[]; columns: TaskColumn[]; caption: string }) {
  const now = useNow(1000);
  return (
    <div class="table-scroll">
      <table class="data-table cards-on-phone">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>{columns.map((c) => <th key={c} scope="col" class={NUMERIC.has(c) ? 'num' : undefined}>{HEADERS[c]}</th>)}</tr>
        </thead>
        <tbody>
          {tasks.map((t) => (
            <tr key={t.id} data-task-id={t.id} data-status={t.status}>
              {columns.map((c) => <td key={c} data-label={HEADERS[c]} class={NUMERIC.has(c) ? 'num' : BLOCK.has(c) ? 'cell-block' : undefined}>{cell(t, c, now)}</td>)}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
