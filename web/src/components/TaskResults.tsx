/**
 * What AIOpsLab scored (its results dict: Detection Accuracy, TTD/TTL/TTA/TTM, success …), the
 * uniform success flag and reward, and the run's token usage and cost.
 */
import { DASH, fmtDuration, fmtInt, fmtUsd, num } from '../format';
import type { ConversationSummary, Task, Usage } from '../types';
import { Empty } from './Notices';
import { SuccessBadge } from './StatusBadge';

/** Keys of `result` the executor adds around AIOpsLab's own results. */
const EXECUTOR_KEYS = new Set(['success', 'reward', 'steps', 'ttx', 'outcome', 'usage', 'conversation_id', 'model', 'results', 'problem_id',
  'execution_time', 'worker_id', 'cluster', 'phase_durations_ms', 'stopped_by', 'task_type', 'session_id']);

function show(v: unknown): string {
  if (v === null || v === undefined) return DASH;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/\.?0+$/, '');
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** AIOpsLab's results dict: `result.results` when nested, else the keys the executor did not add. */
export function aiopslabResults(result: Record<string, unknown> | null): Record<string, unknown> | null {
  if (!result) return null;
  if (result.results && typeof result.results === 'object' && !Array.isArray(result.results)) return result.results as Record<string, unknown>;
  const own = Object.entries(result).filter(([k]) => !EXECUTOR_KEYS.has(k));
  return own.length ? Object.fromEntries(own) : null;
}

/** The run's totals once it ended; while it runs, the conversation's running totals. */
export function UsageList({ usage, sofar }: { usage: Usage | undefined; sofar?: ConversationSummary | null }) {
  if (!usage && sofar) {
    return (
      <dl class="kv kv-compact" aria-label="Usage so far">
        <div><dt>LLM calls so far</dt><dd>{fmtInt(sofar.llm_calls)}</dd></div>
        <div><dt>Tokens so far</dt><dd>{fmtInt(sofar.total_tokens)}</dd></div>
        <div><dt>Cost so far</dt><dd><strong>{fmtUsd(num(sofar.cost_usd))}</strong></dd></div>
      </dl>
    );
  }
  if (!usage) return <Empty>No LLM usage recorded.</Empty>;
  return (
    <dl class="kv kv-compact">
      <div><dt>LLM calls</dt><dd>{fmtInt(usage.llm_calls)}</dd></div>
      <div><dt>Prompt tokens</dt><dd>{fmtInt(usage.prompt_tokens)}</dd></div>
      <div><dt>Completion tokens</dt><dd>{fmtInt(usage.completion_tokens)}</dd></div>
      <div><dt>Cached tokens</dt><dd>{fmtInt(usage.cached_tokens)}</dd></div>
      <div><dt>Reasoning tokens</dt><dd>{fmtInt(usage.reasoning_tokens)}</dd></div>
      <div><dt>Total tokens</dt><dd>{fmtInt(usage.total_tokens)}</dd></div>
      <div><dt>Cost</dt><dd><strong>{fmtUsd(num(usage.cost_usd))}</strong></dd></div>
    </dl>
  );
}

export function TaskResults({ task }: { task: Task }) {
  const r = task.result;
  if (!r) return <Empty>{task.status === 'pending' || task.status === 'running' ? 'Results appear when the run ends.' : 'This task has no result.'}</Empty>;
  const reward = num(r.reward);
  const own = aiopslabResults(r);
  const ttx = typeof r.ttx === 'object' && r.ttx !== null ? { name: r.ttx.name ?? 'time', seconds: num(r.ttx.seconds) } : { name: 'time', seconds: num(r.ttx) };
  return (
    <div class="results">
      <div class="reward-line">
        <SuccessBadge success={typeof r.success === 'boolean' ? r.success : null} />
        <span class="reward" data-reward={reward ?? ''}>reward <strong>{reward === null ? DASH : reward.toFixed(2)}</strong></span>
        {r.outcome && <span class="muted">outcome <code>{String(r.outcome)}</code></span>}
        {num(r.steps) !== null && <span class="muted">{num(r.steps)} steps</span>}
        {ttx.seconds !== null && <span class="muted">{ttx.name} {fmtDuration(ttx.seconds * 1000)}</span>}
        {r.task_type ? <span class="muted">{String(r.task_type)}</span> : null}
      </div>
      {own ? (
        <dl class="kv" aria-label="AIOpsLab results">
          {Object.entries(own).map(([k, v]) => <div key={k}><dt>{k}</dt><dd class="mono">{show(v)}</dd></div>)}
        </dl>
      ) : <p class="muted">AIOpsLab returned no evaluation results.</p>}
    </div>
  );
}
