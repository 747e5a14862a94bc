/**
 * One task: status and cancel, results and reward, usage, parameters and the timeline (summary
 * tab), the agent transcript, and AIOpsLab's captured output. Everything follows the task's own
 * event stream (status changes, new log rows, new messages).
 */
import { useCallback, useState } from 'preact/hooks';
import { ApiError, api, query } from '../api';
import { CapturedOutput } from '../components/CapturedOutput';
import { Empty, ErrorNotice, Loading } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { StatusBadge } from '../components/StatusBadge';
import { PhaseDurations, TaskTimeline, phaseSpans } from '../components/TaskTimeline';
import { TaskResults, UsageList } from '../components/TaskResults';
import { TranscriptView } from '../components/Transcript';
import { taskDurationMs } from '../components/TaskTable';
import { DASH, durationBetween, fmtDateTime, fmtDuration, fmtInt, fmtUsd, num } from '../format';
import { useNow, useResource } from '../hooks';
import { taskStream, type LiveEvent } from '../live';
import { href } from '../router';
import { isCapturedOutput, useTaskLogs } from '../taskLogs';
import type { Conversation, ConversationSummary, Task } from '../types';

const TABS = [
  { id: 'summary', label: 'Summary' },
  { id: 'transcript', label: 'Transcript' },
  { id: 'output', label: 'AIOpsLab output' },
] as const;
type TabId = (typeof TABS)[number]['id'];

const isActive = (t: Task | undefined) => t?.status === 'pending' || t?.status === 'running';

function CancelButton({ task, onDone }: { task: Task; onDone: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  if (!isActive(task)) return null;
  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/v1/tasks/${task.id}/cancel`, { method: 'POST' });
      setConfirming(false);
      onDone();
    } catch (e) {
      setError(e as Error);
      if (e instanceof ApiError && e.code === 'task_terminal') onDone();
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="cancel">
      {confirming ? (
        <div class="confirm" role="group" aria-label="Confirm cancellation">
          <span>{task.status === 'running' ? 'Stop this run? AIOpsLab will recover its fault first.' : 'Remove this task from the queue?'}</span>
          <button type="button" class="btn btn-danger" disabled={busy} onClick={cancel}>{busy ? 'Cancelling…' : 'Yes, cancel'}</button>
          <button type="button" class="btn" disabled={busy} onClick={() => setConfirming(false)}>Keep it</button>
        </div>
      ) : (
        <button type="button" class="btn btn-danger-outline" onClick={() => setConfirming(true)}>Cancel task</button>
      )}
      {error && <p class="field-error" role="alert">{error.message}</p>}
    </div>
  );
}

function ParameterList({ task }: { task: Task }) {
  const p = task.parameters ?? {};
  const ac = p.agent_config ?? {};
  const known = new Set(['max_steps', 'timeout_minutes', 'priority', 'agent_config', 'max_total_tokens', 'max_cost_usd']);
  const extra = Object.entries(p).filter(([k, v]) => !known.has(k) && v !== undefined);
  const extraAgent = Object.entries(ac).filter(([k, v]) => !['model', 'temperature', 'max_tokens', 'top_p'].includes(k) && v !== undefined);
  return (
    <dl class="kv kv-compact">
      <div><dt>Model</dt><dd class="mono">{ac.model ?? DASH}</dd></div>
      <div><dt>Max steps</dt><dd>{p.max_steps ?? DASH}</dd></div>
      <div><dt>Timeout</dt><dd>{p.timeout_minutes !== undefined ? `${p.timeout_minutes} min` : DASH}</dd></div>
      <div><dt>Priority</dt><dd>{p.priority ?? task.priority}</dd></div>
      <div><dt>Temperature</dt><dd>{ac.temperature ?? 'default'}</dd></div>
      <div><dt>Max tokens / call</dt><dd>{ac.max_tokens ?? 'default'}</dd></div>
      <div><dt>Top p</dt><dd>{ac.top_p ?? 'default'}</dd></div>
      <div><dt>Token budget</dt><dd>{p.max_total_tokens !== undefined ? fmtInt(p.max_total_tokens) : 'none'}</dd></div>
      <div><dt>Cost budget</dt><dd>{p.max_cost_usd !== undefined ? fmtUsd(p.max_cost_usd) : 'none'}</dd></div>
      {[...extraAgent, ...extra].map(([k, v]) => <div key={k}><dt>{k}</dt><dd class="mono">{typeof v === 'string' ? v : JSON.stringify(v)}</dd></div>)}
    </dl>
  );
}

function Transcripts({ task, attemptParam }: { task: Task; attemptParam: string | null }) {
  const forTask = useCallback((e: LiveEvent) => e.type === 'message' || e.type === 'task', []);
  const list = useResource(
    (signal) => api<{ conversations: ConversationSummary[] }>(`/api/v1/llm-conversations${query({ task_id: task.id, page_size: 100 })}`, { signal }),
    [task.id], { stream: taskStream(task.id), when: forTask, debounceMs: 800 },
  );
  const convs = [...(list.data?.conversations ?? [])].sort((a, b) => (a.attempt ?? 0) - (b.attempt ?? 0) || a.started_at.localeCompare(b.started_at));
  const chosen = convs.find((c) => String(c.attempt) === attemptParam) ?? convs.at(-1) ?? null;
  const chosenId = chosen?.id ?? null;
  const conv = useResource(
    (signal) => (chosenId ? api<Conversation>(`/api/v1/llm-conversations/${chosenId}`, { signal }) : Promise.resolve(null)),
    [chosenId], { stream: chosenId ? taskStream(task.id) : null, when: (e) => e.type === 'message' && e.data.conversation_id === chosenId, debounceMs: 600 },
  );

  if (list.error) return <ErrorNotice error={list.error} what="the conversations" />;
  if (!list.data) return <Loading />;
  if (!convs.length) return <Empty>{isActive(task) ? 'The agent has not started yet.' : 'No LLM conversation was recorded for this task.'}</Empty>;
  const c = conv.data;
  return (
    <div>
      {convs.length > 1 && (
        <nav class="attempts" aria-label="Attempts">
          {convs.map((x) => (
            <a key={x.id} href={href(`/tasks/${task.id}`, { tab: 'transcript', attempt: x.attempt ?? null })} aria-current={x.id === chosenId ? 'page' : undefined} class="chip">
              Attempt {x.attempt ?? '?'}
            </a>
          ))}
        </nav>
      )}
      <ErrorNotice error={conv.error} what="the transcript" />
      {c ? (
        <>
          <dl class="kv kv-compact conv-facts">
            <div><dt>Model</dt><dd class="mono">{c.model_name}</dd></div>
            <div><dt>Messages</dt><dd>{fmtInt(c.total_messages)}</dd></div>
            <div><dt>Tokens</dt><dd>{fmtInt(c.usage?.total_tokens ?? c.total_tokens)}</dd></div>
            <div><dt>Cost</dt><dd>{fmtUsd(num(c.usage?.cost_usd ?? c.total_cost?.total_cost ?? c.cost_usd))}</dd></div>
            <div><dt>Started</dt><dd>{fmtDateTime(c.started_at)}</dd></div>
            <div><dt>Length</dt><dd>{fmtDuration(durationBetween(c.started_at, c.ended_at ?? (isActive(task) ? Date.now() : null)))}</dd></div>
          </dl>
          <p class="small"><a href={`/api/v1/llm-conversations/${c.id}`} target="_blank" rel="noopener">Conversation JSON</a></p>
          <TranscriptView conversation={c} active={task.status === 'running'} />
        </>
      ) : !conv.error && <Loading />}
    </div>
  );
}

export function TaskDetailPage({ id, params }: { id: string; params: URLSearchParams }) {
  const tab: TabId = TABS.some((t) => t.id === params.get('tab')) ? (params.get('tab') as TabId) : 'summary';
  const onTaskEvent = useCallback((e: LiveEvent) => e.type === 'task', []);
  const task = useResource((signal) => api<Task>(`/api/v1/tasks/${encodeURIComponent(id)}`, { signal }), [id], { stream: taskStream(id), when: onTaskEvent, debounceMs: 150 });
  const logs = useTaskLogs(id);
  const now = useNow(1000);
  const t = task.data?.id === id ? task.data : undefined;
  // Until the run ends (and its totals land in the result), show the conversation's running totals.
  const ended = Boolean(t?.result?.usage);
  const sofar = useResource(
    (signal) => (ended ? Promise.resolve(null) : api<{ conversations: ConversationSummary[] }>(`/api/v1/llm-conversations${query({ task_id: id, page_size: 1 })}`, { signal }).then((r) => r.conversations[0] ?? null)),
    [id, ended], { stream: ended ? null : taskStream(id), when: (e) => e.type === 'message', debounceMs: 1000 },
  );

  if (task.error && !t) {
    const missing = task.error instanceof ApiError && task.error.status === 404;
    return (
      <section>
        <PageHeader title={missing ? 'Task not found' : 'Task'} />
        {missing ? <p>No task has the id <code>{id}</code>. <a href={href('/tasks')}>All tasks</a></p> : <ErrorNotice error={task.error} what="the task" />}
      </section>
    );
  }
  if (!t) return <section><PageHeader title="Task" /><Loading /></section>;

  const entries = logs.data?.entries ?? [];
  const timeline = entries.filter((l) => !isCapturedOutput(l));
  const output = entries.filter(isCapturedOutput);
  const truncated = (logs.data?.total ?? 0) > entries.length;
  const usage = t.result?.usage;
  const runMs = taskDurationMs(t, now);
  const waitMs = durationBetween(t.created_at, t.started_at ?? (t.status === 'pending' ? now : null));

  return (
    <section>
      <p class="breadcrumb"><a href={href('/tasks')}>Tasks</a> /</p>
      <PageHeader title={t.problem_id} subtitle={<span class="mono small">{t.id}</span>}>
        <StatusBadge status={t.status} />
        <a class="btn" href={`/api/v1/tasks/${t.id}`} target="_blank" rel="noopener">Raw JSON</a>
        <a class="btn" href={href('/submit', { problem: t.problem_id, model: t.parameters?.agent_config?.model ?? null })}>Run again</a>
        <CancelButton task={t} onDone={task.reload} />
      </PageHeader>

      {t.error_type && (
        <div class={`notice ${t.status === 'cancelled' ? 'notice-warning' : 'notice-error'}`} role="status">
          <strong><code>{t.error_type}</code></strong>{t.error_details ? `: ${t.error_details}` : ''}
        </div>
      )}

      <nav class="tabs" aria-label="Task sections">
        {TABS.map((x) => (
          <a key={x.id} href={href(`/tasks/${t.id}`, { tab: x.id === 'summary' ? null : x.id })} aria-current={tab === x.id ? 'page' : undefined}>
            {x.id === 'output' ? <><span class="tab-prefix">AIOpsLab </span>output</> : x.label}
            {x.id === 'output' && output.length > 0 && <span class="count">{output.length}</span>}
          </a>
        ))}
      </nav>

      {tab === 'summary' && (
        <div class="detail-grid">
          <section class="card" aria-labelledby="status-h">
            <h2 id="status-h">Status</h2>
            <dl class="kv kv-compact">
              <div><dt>Status</dt><dd><StatusBadge status={t.status} /></dd></div>
              <div><dt>Worker</dt><dd class="mono">{t.worker_id ?? DASH}</dd></div>
              <div><dt>Attempt</dt><dd>{t.attempt}{t.max_attempts ? ` of ${t.max_attempts}` : ''}</dd></div>
              <div><dt>Created</dt><dd>{fmtDateTime(t.created_at)}</dd></div>
              <div><dt>Started</dt><dd>{fmtDateTime(t.started_at)}</dd></div>
              <div><dt>Finished</dt><dd>{fmtDateTime(t.completed_at)}</dd></div>
              <div><dt>Waited</dt><dd>{fmtDuration(waitMs)}</dd></div>
              <div><dt>Ran</dt><dd>{fmtDuration(runMs)}</dd></div>
            </dl>
          </section>
          <section class="card" aria-labelledby="results-h">
            <h2 id="results-h">Results and reward</h2>
            <TaskResults task={t} />
          </section>
          <section class="card" aria-labelledby="usage-h">
            <h2 id="usage-h">Tokens and cost</h2>
            <UsageList usage={usage} sofar={sofar.data} />
          </section>
          <section class="card" aria-labelledby="params-h">
            <h2 id="params-h">Parameters</h2>
            <ParameterList task={t} />
          </section>
          <section class="card span-all" aria-labelledby="timeline-h">
            <h2 id="timeline-h">Timeline</h2>
            <ErrorNotice error={logs.error} what="the timeline" />
            <PhaseDurations spans={phaseSpans(timeline, t.result?.phase_durations_ms)} />
            {logs.data ? <TaskTimeline rows={timeline} origin={t.created_at} /> : !logs.error && <Loading />}
          </section>
        </div>
      )}

      {tab === 'transcript' && (
        <section class="card" aria-label="Transcript">
          <Transcripts task={t} attemptParam={params.get('attempt')} />
        </section>
      )}

      {tab === 'output' && (
        <section class="card" aria-label="AIOpsLab output">
          <ErrorNotice error={logs.error} what="the output" />
          {logs.data ? <CapturedOutput lines={output} truncated={truncated} active={isActive(t)} /> : !logs.error && <Loading />}
        </section>
      )}
    </section>
  );
}
