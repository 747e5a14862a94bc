/**
 * The task's timeline (phase rows of task_logs) and how long each phase took. Phase rows are
 * written by the worker: preflight, cluster, run, init, step…, cleanup, run_finished; a failed
 * phase is an error row naming it.
 */
import { fmtDuration, fmtTime, num } from '../format';
import type { LogEntry } from '../types';
import { Empty } from './Notices';

export interface PhaseSpan { phase: string; ms: number }

/** AIOpsLab's phases as the bridge timed them (result.phase_durations_ms), in run order. */
const BRIDGE_PHASES: Array<[key: string, label: string]> = [
  ['startup', 'bridge startup'], ['init', 'deploy & inject'], ['agent', 'LLM'], ['env', 'environment'], ['eval', 'evaluation'], ['teardown', 'teardown'],
];

/**
 * Disjoint phase durations, for the bar above the timeline. Preflight and cluster come from the
 * timeline; the run, when it ended, from the bridge's own timings, which split the agent loop
 * into time waiting for the LLM and time in the environment. Without those (a run still going
 * or one that failed early) the timeline's phases are used, and run_finished — which spans the
 * whole run — only adds what init and the steps do not cover.
 */
export function phaseSpans(rows: LogEntry[], bridge?: Record<string, unknown> | null): PhaseSpan[] {
  const sums = new Map<string, number>();
  let runTotal: number | null = null;
  for (const r of rows) {
    const phase = r.context?.phase;
    const ms = num(r.context?.duration_ms);
    if (!phase || ms === null) continue;
    if (phase === 'run_finished') { runTotal = ms; continue; }
    if (r.level === 'error') continue; // a failure row carries the time since the task began
    const key = phase === 'step' ? 'agent steps' : phase;
    sums.set(key, (sums.get(key) ?? 0) + ms);
  }
  const timed = bridge ? BRIDGE_PHASES.map(([k, label]) => ({ phase: label, ms: num(bridge[k]) ?? 0 })).filter((s) => s.ms > 0) : [];
  if (timed.length) {
    return [...['preflight', 'cluster'].filter((k) => sums.has(k)).map((k) => ({ phase: k, ms: sums.get(k)! })), ...timed];
  }
  const spans = [...sums].map(([phase, ms]) => ({ phase, ms }));
  if (runTotal !== null) {
    const inside = (sums.get('init') ?? 0) + (sums.get('agent steps') ?? 0);
    if (runTotal - inside > 0) spans.push({ phase: 'LLM, evaluation & teardown', ms: runTotal - inside });
  }
  return spans;
}

export function PhaseDurations({ spans }: { spans: PhaseSpan[] }) {
  const total = spans.reduce((a, s) => a + s.ms, 0);
  if (!spans.length || total <= 0) return null;
  return (
    <div class="phase-durations">
      <svg class="phase-bar" viewBox="0 0 1000 14" preserveAspectRatio="none" role="img" aria-label={`Phase durations: ${spans.map((s) => `${s.phase} ${fmtDuration(s.ms)}`).join(', ')}`}>
        {(() => {
          let x = 0;
          return spans.map((s, i) => {
            const w = (s.ms / total) * 1000;
            const r = <rect key={s.phase} x={x} y="0" width={Math.max(w, 1)} height="14" style={{ fill: `var(--series-${i % 8})` }}><title>{`${s.phase}: ${fmtDuration(s.ms)}`}</title></rect>;
            x += w;
            return r;
          });
        })()}
      </svg>
      <ul class="legend">
        {spans.map((s, i) => (
          <li key={s.phase}><span class="swatch" style={{ background: `var(--series-${i % 8})` }} aria-hidden="true" />{s.phase} <strong>{fmtDuration(s.ms)}</strong></li>
        ))}
      </ul>
    </div>
  );
}

export function TaskTimeline({ rows, origin }: { rows: LogEntry[]; origin: string | null }) {
  if (!rows.length) return <Empty>Nothing has happened yet: the task is waiting for a worker.</Empty>;
  const t0 = origin ? Date.parse(origin) : Date.parse(rows[0]!.timestamp);
  return (
    <ol class="timeline">
      {rows.map((r) => {
        const offset = Date.parse(r.timestamp) - t0;
        const ms = num(r.context?.duration_ms);
        return (
          <li key={r.id} class={`tl-row tl-${r.level}`} data-phase={r.context?.phase ?? ''}>
            <time dateTime={r.timestamp} title={fmtTime(r.timestamp)} class="tl-time mono small">+{fmtDuration(Math.max(0, offset))}</time>
            <span class="tl-phase">{r.context?.phase ?? r.level}</span>
            <span class="tl-message">{r.message}</span>
            <span class="tl-duration small muted">{ms !== null && r.level !== 'error' ? fmtDuration(ms) : ''}</span>
          </li>
        );
      })}
    </ol>
  );
}
