/**
 * Submit a task. The server owns validation (limits, the problem catalog, model resolution): its
 * error envelope's `details[].field` (dotted, e.g. `parameters.max_steps`) is shown at the
 * matching input, with "did you mean" suggestions as buttons. Empty inputs are left out so the
 * server's defaults apply. One Idempotency-Key per filled-in form, so a double click or a retry
 * after a lost response queues one task, not two.
 */
import { Fragment } from 'preact';
import { useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { ErrorNotice } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { agoFromSeconds, fmtCompact, fmtPerMillion } from '../format';
import { useResource } from '../hooks';
import { navigate } from '../router';
import type { CatalogModel, FieldIssue, ModelCatalog, Problem, Task } from '../types';

type FieldKey = 'problem_id' | 'model' | 'max_steps' | 'timeout_minutes' | 'priority' | 'temperature' | 'max_tokens' | 'top_p' | 'max_total_tokens' | 'max_cost_usd';

interface NumberField {
  key: Exclude<FieldKey, 'problem_id' | 'model'>;
  label: string;
  min?: number;
  max?: number;
  step: number | 'any';
  hint: string;
  agent?: boolean;
}

const NUMBER_FIELDS: NumberField[] = [
  { key: 'max_steps', label: 'Max steps', min: 1, max: 1000, step: 1, hint: '1–1000 agent steps; default 30' },
  { key: 'timeout_minutes', label: 'Timeout (minutes)', min: 1, max: 180, step: 1, hint: '1–180; default 30' },
  { key: 'priority', label: 'Priority', min: 0, max: 10, step: 1, hint: '0–10, higher runs first; default 5' },
  { key: 'temperature', label: 'Temperature', min: 0, max: 2, step: 'any', hint: '0–2; model default if empty', agent: true },
  { key: 'max_tokens', label: 'Max tokens per reply', min: 1, max: 1_000_000, step: 1, hint: 'at least 1; default if empty', agent: true },
  { key: 'top_p', label: 'Top p', min: 0, max: 1, step: 'any', hint: 'above 0, at most 1', agent: true },
  { key: 'max_total_tokens', label: 'Token budget', min: 1, step: 1, hint: 'stop the run past this many tokens; none if empty' },
  { key: 'max_cost_usd', label: 'Cost budget (USD)', min: 0, step: 'any', hint: 'stop the run past this spend; none if empty' },
];

/** `parameters.agent_config.model` → `model`; `body.parameters.max_steps` → `max_steps`. */
export function fieldKeyOf(path: string): string {
  return path.replace(/^(body|query)\./, '').replace(/^parameters\./, '').replace(/^agent_config\./, '');
}

const ALL_KEYS = new Set<string>(['problem_id', 'model', ...NUMBER_FIELDS.map((f) => f.key)]);

function priceOf(m: CatalogModel | undefined): string {
  if (!m) return '';
  const p = m.pricing ?? {};
  return `${fmtPerMillion(p.prompt)} in / ${fmtPerMillion(p.completion)} out per M tokens${m.context_length ? ` · ${fmtCompact(m.context_length)} context` : ''}`;
}

function groupProblems(problems: Problem[]): Array<{ label: string; items: Problem[] }> {
  const groups = new Map<string, Problem[]>();
  for (const p of [...problems].sort((a, b) => a.application.localeCompare(b.application) || a.task_type.localeCompare(b.task_type) || a.id.localeCompare(b.id))) {
    const label = `${p.application} · ${p.task_type}`;
    groups.set(label, [...(groups.get(label) ?? []), p]);
  }
  return [...groups].map(([label, items]) => ({ label, items }));
}

export function SubmitPage({ params }: { params: URLSearchParams }) {
  const problems = useResource((signal) => api<{ problems: Problem[] }>('/api/v1/problems', { signal }), []);
  const models = useResource((signal) => api<ModelCatalog>('/api/v1/models', { signal }), []);

  const [values, setValues] = useState<Record<FieldKey, string>>(() => ({
    problem_id: params.get('problem') ?? '', model: params.get('model') ?? '', max_steps: '', timeout_minutes: '', priority: '',
    temperature: '', max_tokens: '', top_p: '', max_total_tokens: '', max_cost_usd: '',
  }));
  const [issues, setIssues] = useState<Record<string, FieldIssue>>({});
  const [general, setGeneral] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const [appFilter, setAppFilter] = useState('');
  const [typeFilter, setTypeFilter] = useState('');
  const idempotencyKey = useRef<string | null>(null);
  const form = useRef<HTMLFormElement>(null);

  const set = (k: FieldKey, v: string) => {
    setValues((s) => ({ ...s, [k]: v }));
    idempotencyKey.current = null; // a changed form is a new request
    if (issues[k]) setIssues(({ [k]: _gone, ...rest }) => rest);
  };

  const list = problems.data?.problems ?? [];
  const apps = useMemo(() => [...new Set(list.map((p) => p.application))].sort(), [list]);
  const types = useMemo(() => [...new Set(list.map((p) => p.task_type))].sort(), [list]);
  const groups = useMemo(() => groupProblems(list.filter((p) => (!appFilter || p.application === appFilter) && (!typeFilter || p.task_type === typeFilter))), [list, appFilter, typeFilter]);
  const picked = list.find((p) => p.id === values.problem_id.trim());

  const catalog = models.data;
  const byId = useMemo(() => new Map((catalog?.models ?? []).map((m) => [m.id, m])), [catalog]);
  const modelName = values.model.trim() || catalog?.default_model || '';
  const resolved = byId.get(modelName) ?? byId.get(catalog?.aliases?.[modelName.toLowerCase()] ?? '') ?? undefined;

  const submit = async (e: Event) => {
    e.preventDefault();
    const local: Record<string, FieldIssue> = {};
    const parameters: Record<string, unknown> = {};
    const agent: Record<string, unknown> = {};
    for (const f of NUMBER_FIELDS) {
      const input = form.current?.elements.namedItem(f.key) as HTMLInputElement | null;
      if (input?.validity.badInput) { local[f.key] = { field: f.key, reason: 'must be a number' }; continue; }
      const raw = values[f.key].trim();
      if (raw === '') continue;
      (f.agent ? agent : parameters)[f.key] = Number(raw);
    }
    if (!values.problem_id.trim()) local.problem_id = { field: 'problem_id', reason: 'is required: type an id or pick one from the catalog' };
    setIssues(local);
    setGeneral(null);
    if (Object.keys(local).length) { focusFirst(local); return; }
    if (values.model.trim()) agent.model = values.model.trim();
    if (Object.keys(agent).length) parameters.agent_config = agent;
    idempotencyKey.current ??= crypto.randomUUID();
    setBusy(true);
    try {
      const task = await api<Task>('/api/v1/tasks', {
        method: 'POST',
        body: { problem_id: values.problem_id.trim(), parameters },
        headers: { 'Idempotency-Key': idempotencyKey.current },
      });
      idempotencyKey.current = null;
      navigate(`/tasks/${task.id}`);
    } catch (err) {
      idempotencyKey.current = null;
      const fieldIssues = err instanceof ApiError ? err.fieldIssues : [];
      const placed: Record<string, FieldIssue> = {};
      for (const d of fieldIssues) {
        const k = fieldKeyOf(d.field);
        if (ALL_KEYS.has(k) && !placed[k]) placed[k] = d;
      }
      setIssues(placed);
      if (Object.keys(placed).length < fieldIssues.length || fieldIssues.length === 0) setGeneral(err as Error);
      focusFirst(placed);
    } finally {
      setBusy(false);
    }
  };

  const focusFirst = (found: Record<string, FieldIssue>) => {
    const order: string[] = ['problem_id', 'model', ...NUMBER_FIELDS.map((f) => f.key)];
    const first = order.find((k) => found[k]);
    if (first) requestAnimationFrame(() => document.getElementById(`f-${first}`)?.focus());
  };

  const errorFor = (k: FieldKey) => {
    const d = issues[k];
    if (!d) return null;
    return (
      <div class="field-error" id={`f-${k}-error`} role="alert">
        {d.reason.charAt(0).toUpperCase() + d.reason.slice(1)}.
        {d.closest && d.closest.length > 0 && (
          <span class="suggestions"> Did you mean {d.closest.map((c, i) => (
            <Fragment key={c}>{i > 0 ? ', ' : ''}<button type="button" class="btn-link suggestion" onClick={() => set(k, c)}>{c}</button></Fragment>
          ))}?</span>
        )}
      </div>
    );
  };
  const described = (k: FieldKey) => [`f-${k}-hint`, issues[k] ? `f-${k}-error` : null].filter(Boolean).join(' ');

  return (
    <section>
      <PageHeader title="Submit a task" subtitle="Queue an AIOpsLab problem for an LLM agent. Empty fields take the server's defaults." />
      <form ref={form} class="submit-form" onSubmit={submit} noValidate>
        {general && <ErrorNotice error={general} what={undefined} />}

        <fieldset class="card">
          <legend>Problem</legend>
          <div class={`field ${issues.problem_id ? 'has-error' : ''}`}>
            <label for="f-problem_id">Problem id</label>
            <input id="f-problem_id" name="problem_id" class="mono" autoComplete="off" spellcheck={false} required value={values.problem_id}
              aria-invalid={issues.problem_id ? 'true' : undefined} aria-describedby={described('problem_id')}
              onInput={(e) => set('problem_id', e.currentTarget.value)} />
            <span class="hint" id="f-problem_id-hint">
              {picked ? <>{picked.application} · {picked.task_type} · {picked.deployment}</> : 'Type an id or pick one below.'}
            </span>
            {errorFor('problem_id')}
          </div>
          <ErrorNotice error={problems.error} what="the problem catalog" />
          {list.length > 0 && (
            <div class="picker">
              <div class="field">
                <label for="f-app">Application</label>
                <select id="f-app" value={appFilter} onChange={(e) => setAppFilter(e.currentTarget.value)}>
                  <option value="">All ({apps.length})</option>
                  {apps.map((a) => <option key={a} value={a}>{a}</option>)}
                </select>
              </div>
              <div class="field">
                <label for="f-type">Task type</label>
                <select id="f-type" value={typeFilter} onChange={(e) => setTypeFilter(e.currentTarget.value)}>
                  <option value="">All ({types.length})</option>
                  {types.map((t) => <option key={t} value={t}>{t}</option>)}
                </select>
              </div>
              <div class="field picker-select">
                <label for="f-pick">Catalog ({groups.reduce((a, g) => a + g.items.length, 0)} problems)</label>
                <select id="f-pick" value={picked ? picked.id : ''} onChange={(e) => { if (e.currentTarget.value) set('problem_id', e.currentTarget.value); }}>
                  <option value="">Choose a problem…</option>
                  {groups.map((g) => (
                    <optgroup key={g.label} label={g.label}>
                      {g.items.map((p) => <option key={p.id} value={p.id}>{p.id}</option>)}
                    </optgroup>
                  ))}
                </select>
              </div>
            </div>
          )}
        </fieldset>

        <fieldset class="card">
          <legend>Agent model</legend>
          <div class={`field ${issues.model ? 'has-error' : ''}`}>
            <label for="f-model">Model</label>
            <input id="f-model" name="model" class="mono" list="model-options" autoComplete="off" spellcheck={false}
              placeholder={catalog?.default_model ? `${catalog.default_model} (default)` : 'server default'} value={values.model}
              aria-invalid={issues.model ? 'true' : undefined} aria-describedby={described('model')}
              onInput={(e) => set('model', e.currentTarget.value)} />
            <datalist id="model-options">
              {Object.entries(catalog?.aliases ?? {}).map(([alias, id]) => <option key={`a-${alias}`} value={alias} label={`→ ${id}`} />)}
              {(catalog?.models ?? []).map((m) => <option key={m.id} value={m.id} label={priceOf(m)} />)}
            </datalist>
            <span class="hint" id="f-model-hint">
              {resolved ? <><span class="mono">{resolved.id}</span>: {priceOf(resolved)}</>
                : catalog && catalog.total === 0 ? 'The model catalog has not been fetched; any OpenRouter id, openai:<model> or local:<model> is accepted.'
                : modelName ? 'Not in the catalog: the server checks it when you submit.' : 'OpenRouter id, short name, openai:<model> or local:<model>.'}
              {catalog?.age_seconds !== null && catalog?.age_seconds !== undefined && <> · prices fetched {agoFromSeconds(catalog.age_seconds)}{catalog.stale ? ' (stale)' : ''}</>}
            </span>
            {errorFor('model')}
          </div>
          <ErrorNotice error={models.error} what="the model catalog" />
        </fieldset>

        <fieldset class="card">
          <legend>Parameters</legend>
          <div class="param-grid">
            {NUMBER_FIELDS.map((f) => (
              <div key={f.key} class={`field ${issues[f.key] ? 'has-error' : ''}`}>
                <label for={`f-${f.key}`}>{f.label}</label>
                <input id={`f-${f.key}`} name={f.key} type="number" inputMode={f.step === 1 ? 'numeric' : 'decimal'} min={f.min} max={f.max} step={f.step}
                  value={values[f.key]} aria-invalid={issues[f.key] ? 'true' : undefined} aria-describedby={described(f.key)}
                  onInput={(e) => set(f.key, e.currentTarget.value)} />
                <span class="hint" id={`f-${f.key}-hint`}>{f.hint}</span>
                {errorFor(f.key)}
              </div>
            ))}
          </div>
        </fieldset>

        <div class="form-actions">
          <button type="submit" class="btn btn-primary btn-large" disabled={busy}>{busy ? 'Submitting…' : 'Submit task'}</button>
        </div>
      </form>
    </section>
  );
}
