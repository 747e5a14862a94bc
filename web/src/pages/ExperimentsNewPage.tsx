/**
 * Create an experiment, or resume one by giving its name again. Problems are chosen by id, id
 * pattern, application and task type (previewed against the catalog as you type); models are
 * rows with an optional concurrency cap each. Empty inputs are left out, so the server's defaults
 * apply and a name alone resumes. The server validates: its `details[].field` problems (including
 * a 409's differing fields) are shown at the inputs, with "did you mean" buttons.
 */
import { useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { describedBy, FieldErrors, numberValue, PARAM_FIELDS, placeIssues, type IssueMap, type ParamKey } from '../components/experimentForm';
import { ExperimentStatusBadge, progressSummary } from '../components/experimentProgress';
import { ErrorNotice } from '../components/Notices';
import { PageHeader } from '../components/PageHeader';
import { fmtCompact, fmtPerMillion, plural } from '../format';
import { useDebounced, useResource } from '../hooks';
import { href, navigate } from '../router';
import type { CatalogModel, Experiment, FieldIssue, ModelCatalog, Problem } from '../types';
import { flashExperiment, resumedText } from './ExperimentsDetailPage';

const TASK_TYPES = ['detection', 'localization', 'analysis', 'mitigation'] as const;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const tokens = (s: string) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
const unique = <T,>(xs: T[]) => [...new Set(xs)];

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

function priceOf(m: CatalogModel | undefined): string {
  if (!m) return '';
  const p = m.pricing ?? {};
  return `${fmtPerMillion(p.prompt)} in / ${fmtPerMillion(p.completion)} out per M tokens${m.context_length ? ` · ${fmtCompact(m.context_length)} context` : ''}`;
}

interface ModelRow { model: string; cap: string }

/** What the selectors pick from the catalog, as the server will expand them (for the preview). */
function preview(catalog: Problem[], ids: string[], patterns: string[], apps: Set<string>, types: Set<string>) {
  const known = new Set(catalog.map((p) => p.id));
  const res = patterns.map((p) => { try { return { p, re: globToRegExp(p) }; } catch { return { p, re: /$^/ }; } });
  const anyIdOrPattern = ids.length > 0 || patterns.length > 0;
  const selected = catalog.filter((p) => (!anyIdOrPattern || ids.includes(p.id) || res.some(({ re }) => re.test(p.id)))
    && (!apps.size || apps.has(p.application)) && (!types.size || types.has(p.task_type))).map((p) => p.id);
  return {
    selected,
    unknownIds: catalog.length ? ids.filter((id) => !known.has(id)) : [],
    deadPatterns: catalog.length ? res.filter(({ re }) => !catalog.some((p) => re.test(p.id))).map(({ p }) => p) : [],
    any: anyIdOrPattern || apps.size > 0 || types.size > 0,
  };
}

export function ExperimentsNewPage() {
  const problems = useResource((signal) => api<{ problems: Problem[] }>('/api/v1/problems', { signal }), []);
  const models = useResource((signal) => api<ModelCatalog>('/api/v1/models', { signal }), []);

  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [problemIds, setProblemIds] = useState('');
  const [patterns, setPatterns] = useState('');
  const [apps, setApps] = useState<Set<string>>(new Set());
  const [types, setTypes] = useState<Set<string>>(new Set());
  const [rows, setRows] = useState<ModelRow[]>([{ model: '', cap: '' }]);
  const [repeats, setRepeats] = useState('');
  const [params, setParams] = useState<Record<ParamKey, string>>(() => Object.fromEntries(PARAM_FIELDS.map((f) => [f.key, ''])) as Record<ParamKey, string>);
  const [spendCap, setSpendCap] = useState('');
  const [perModel, setPerModel] = useState('');
  const [retryFailed, setRetryFailed] = useState(false);
  const [issues, setIssues] = useState<IssueMap>({});
  const [general, setGeneral] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  const clear = (...keys: string[]) => {
    if (keys.some((k) => issues[k])) setIssues((s) => { const n = { ...s }; for (const k of keys) delete n[k]; return n; });
  };

  // An existing name means resume: look it up once typing pauses.
  const debouncedName = useDebounced(name.trim(), 300);
  const existing = useResource(
    (signal) => (NAME_RE.test(debouncedName)
      ? api<Experiment>(`/api/v1/experiments/${encodeURIComponent(debouncedName)}`, { signal }).catch((e) => { if (e instanceof ApiError && e.status === 404) return null; throw e; })
      : Promise.resolve(null)),
    [debouncedName],
  );
  const found = existing.data && existing.data.name === name.trim() ? existing.data : null;

  const catalog = problems.data?.problems ?? [];
  const appList = useMemo(() => unique(catalog.map((p) => p.application)).sort(), [catalog]);
  const pv = useMemo(() => preview(catalog, tokens(problemIds), tokens(patterns), apps, types), [catalog, problemIds, patterns, apps, types]);
  const modelCatalog = models.data;
  const byId = useMemo(() => new Map((modelCatalog?.models ?? []).map((m) => [m.id, m])), [modelCatalog]);
  const resolve = (name: string) => byId.get(name) ?? byId.get(modelCatalog?.aliases?.[name.toLowerCase()] ?? '');
  const modelNames = rows.map((r) => r.model.trim()).filter(Boolean);
  const repeatsN = Number(repeats.trim() || '1');
  const combos = pv.selected.length * modelNames.length * (Number.isFinite(repeatsN) ? repeatsN : 1);

  const toggle = (set: Set<string>, v: string, update: (s: Set<string>) => void, key: string) => {
    const next = new Set(set);
    if (next.has(v)) next.delete(v); else next.add(v);
    update(next);
    clear(key, 'problems');
  };

  const focusFirst = (found: IssueMap) => {
    const order = ['name', 'description', 'problem_ids', 'patterns', 'applications', 'task_types', 'problems',
      ...rows.flatMap((_, i) => [`models.${i}`, `cap.${i}`]), 'models', 'repeats', ...PARAM_FIELDS.map((f) => f.key), 'parameters', 'spend_cap_usd', 'max_running_per_model'];
    const first = order.find((k) => found[k]);
    if (!first) return;
    const target: Record<string, string> = { problems: 'x-problem_ids', parameters: `x-${PARAM_FIELDS[0].key}`, models: 'x-models-0', applications: 'x-apps', task_types: 'x-types' };
    const id = target[first] ?? `x-${first.replace('.', '-')}`;
    requestAnimationFrame(() => document.getElementById(id)?.focus());
  };

  const submit = async (ev: Event) => {
    ev.preventDefault();
    const local: IssueMap = {};
    const body: Record<string, unknown> = {};
    const n = name.trim();
    if (!n) local.name = [{ field: 'name', reason: 'is required: a new name creates an experiment, an existing one resumes it' }];
    else body.name = n;
    if (description.trim()) body.description = description.trim();
    const ids = unique(tokens(problemIds));
    const pats = unique(tokens(patterns));
    if (ids.length) body.problem_ids = ids;
    if (pats.length) body.patterns = pats;
    if (apps.size) body.applications = [...apps];
    if (types.size) body.task_types = TASK_TYPES.filter((t) => types.has(t));
    const ms = rows.map((r) => r.model.trim());
    if (ms.some(Boolean)) body.models = ms.filter(Boolean);
    const caps: Record<string, number> = {};
    rows.forEach((r, i) => {
      const v = numberValue(document.getElementById(`x-cap-${i}`) as HTMLInputElement | null, r.cap);
      if (v === undefined) return;
      if (Number.isNaN(v)) local[`cap.${i}`] = [{ field: `cap.${i}`, reason: 'must be a number' }];
      else if (!r.model.trim()) local[`cap.${i}`] = [{ field: `cap.${i}`, reason: 'needs a model' }];
      else caps[r.model.trim()] = v;
    });
    if (Object.keys(caps).length) body.model_max_running = caps;
    const numeric = (key: string, raw: string, put: (v: number) => void) => {
      const v = numberValue(form.current?.elements.namedItem(key) as HTMLInputElement | null, raw);
      if (v === undefined) return;
      if (Number.isNaN(v)) local[key] = [{ field: key, reason: 'must be a number' }];
      else put(v);
    };
    numeric('repeats', repeats, (v) => { body.repeats = v; });
    const parameters: Record<string, unknown> = {};
    const agent: Record<string, unknown> = {};
    for (const f of PARAM_FIELDS) numeric(f.key, params[f.key], (v) => { ('agent' in f ? agent : parameters)[f.key] = v; });
    if (Object.keys(agent).length) parameters.agent_config = agent;
    if (Object.keys(parameters).length) body.parameters = parameters;
    numeric('spend_cap_usd', spendCap, (v) => { body.spend_cap_usd = v; });
    numeric('max_running_per_model', perModel, (v) => { body.max_running_per_model = v; });
    if (found && retryFailed) body.retry_failed = true;

    setIssues(local);
    setGeneral(null);
    if (Object.keys(local).length) { focusFirst(local); return; }
    setBusy(true);
    try {
      const out = await api<Experiment>('/api/v1/experiments', { method: 'POST', body });
      const created = out.tasks_created ?? 0;
      flashExperiment(out.name, out.created ? `Created: ${plural(created, 'task')} queued.` : resumedText(out, body.retry_failed === true));
      navigate(`/experiments/${out.name}`);
    } catch (err) {
      const list = err instanceof ApiError ? err.fieldIssues : [];
      const { placed, unplaced } = placeIssues(list, (m) => rows.findIndex((r) => r.model.trim() === m));
      setIssues(placed);
      if (unplaced.length || !list.length || (err instanceof ApiError && err.status === 409)) setGeneral(err as Error);
      focusFirst(placed);
    } finally {
      setBusy(false);
    }
  };

  const suggestProblem = (d: FieldIssue, s: string) => {
    const bad = /^"(.+?)"/.exec(d.reason)?.[1];
    setProblemIds((v) => (bad ? v.split(/(\s+|,)/).map((t) => (t === bad ? s : t)).join('') : `${v}\n${s}`.trim()));
    clear('problem_ids');
  };
  const suggestApp = (_d: FieldIssue, s: string) => { setApps((a) => new Set([...a, s])); clear('applications'); };
  const setRow = (i: number, patch: Partial<ModelRow>) => {
    setRows((rs) => rs.map((r, j) => (j === i ? { ...r, ...patch } : r)));
    clear(`models.${i}`, `cap.${i}`, 'models');
  };

  const err = (key: string) => issues[key];
  const fieldClass = (key: string, extra = '') => `field ${extra} ${err(key) ? 'has-error' : ''}`.trim();

  return (
    <section>
      <p class="breadcrumb"><a href={href('/experiments')}>Experiments</a> /</p>
      <PageHeader title="New experiment" subtitle="One task per problem × model × repeat. Giving the name of an existing experiment resumes it." />
      <form ref={form} class="submit-form xp-form" onSubmit={submit} noValidate>
        {general && <ErrorNotice error={general} />}

        <fieldset class="card">
          <legend>Experiment</legend>
          <div class="xp-name-grid">
            <div class={fieldClass('name')}>
              <label for="x-name">Name</label>
              <input id="x-name" name="name" class="mono" autoComplete="off" spellcheck={false} required value={name}
                aria-invalid={err('name') ? 'true' : undefined} aria-describedby={describedBy('x-name', !!err('name'))}
                onInput={(e) => { setName(e.currentTarget.value); clear('name'); }} />
              <span class="hint" id="x-name-hint">
                {found ? <>Exists ({progressSummary(found.progress)}): submitting <strong>resumes</strong> it — only combinations without a task are created. Leave the definition empty or repeat it unchanged.</>
                  : 'Letters, digits, ".", "_" and "-"; e.g. gpt4o-vs-haiku-detection.'}
              </span>
              <FieldErrors id="x-name-error" issues={err('name')} />
            </div>
            <div class={fieldClass('description')}>
              <label for="x-description">Description (optional)</label>
              <input id="x-description" name="description" value={description} aria-describedby={describedBy('x-description', !!err('description'), false)}
                onInput={(e) => { setDescription(e.currentTarget.value); clear('description'); }} />
              <FieldErrors id="x-description-error" issues={err('description')} />
            </div>
          </div>
          {found && (
            <div class="xp-found" role="status">
              <a href={href(`/experiments/${found.name}`)}>{found.name}</a> <ExperimentStatusBadge status={found.progress.status} />
              <label class="check">
                <input type="checkbox" checked={retryFailed} onChange={(e) => setRetryFailed(e.currentTarget.checked)} /> also retry failed and timed-out combinations
                {found.progress.counts.failed + found.progress.counts.timeout > 0 ? ` (${found.progress.counts.failed + found.progress.counts.timeout} now)` : ''}
              </label>
            </div>
          )}
        </fieldset>

        <fieldset class="card" aria-describedby="x-selection">
          <legend>Problems</legend>
          <FieldErrors id="x-problems-error" issues={err('problems')} />
          <div class="xp-problem-grid">
            <div class={fieldClass('problem_ids')}>
              <label for="x-problem_ids">Problem ids</label>
              <textarea id="x-problem_ids" name="problem_ids" class="mono" rows={3} spellcheck={false} value={problemIds}
                aria-invalid={err('problem_ids') ? 'true' : undefined} aria-describedby={describedBy('x-problem_ids', !!err('problem_ids'))}
                onInput={(e) => { setProblemIds(e.currentTarget.value); clear('problem_ids', 'problems'); }} />
              <span class="hint" id="x-problem_ids-hint">
                One per line (or comma-separated).{pv.unknownIds.length > 0 && <span class="warn-text"> Not in the catalog: {pv.unknownIds.join(', ')}.</span>}
              </span>
              <FieldErrors id="x-problem_ids-error" issues={err('problem_ids')} onSuggest={suggestProblem} />
            </div>
            <div class={fieldClass('patterns')}>
              <label for="x-patterns">Id patterns</label>
              <input id="x-patterns" name="patterns" class="mono" autoComplete="off" spellcheck={false} value={patterns}
                aria-invalid={err('patterns') ? 'true' : undefined} aria-describedby={describedBy('x-patterns', !!err('patterns'))}
                onInput={(e) => { setPatterns(e.currentTarget.value); clear('patterns', 'problems'); }} />
              <span class="hint" id="x-patterns-hint">
                Globs with * and ?, e.g. <code>k8s_target_port-misconfig-*</code> or <code>*-detection-*</code>.
                {pv.deadPatterns.length > 0 && <span class="warn-text"> Matches nothing: {pv.deadPatterns.join(', ')}.</span>}
              </span>
              <FieldErrors id="x-patterns-error" issues={err('patterns')} />
            </div>
          </div>
          <fieldset class={`status-filter xp-chips ${err('task_types') ? 'has-error' : ''}`}>
            <legend>Task types</legend>
            <div class="chips" id="x-types">
              {TASK_TYPES.map((t) => (
                <label key={t} class={`chip ${types.has(t) ? 'chip-on' : ''}`}>
                  <input type="checkbox" name="task_types" value={t} checked={types.has(t)} onChange={() => toggle(types, t, setTypes, 'task_types')} />{t}
                </label>
              ))}
            </div>
            <FieldErrors id="x-task_types-error" issues={err('task_types')} />
          </fieldset>
          <fieldset class={`status-filter xp-chips ${err('applications') ? 'has-error' : ''}`}>
            <legend>Applications</legend>
            <div class="chips" id="x-apps">
              {appList.map((a) => (
                <label key={a} class={`chip ${apps.has(a) ? 'chip-on' : ''}`}>
                  <input type="checkbox" name="applications" value={a} checked={apps.has(a)} onChange={() => toggle(apps, a, setApps, 'applications')} />{a}
                </label>
              ))}
              {!appList.length && <span class="muted small">{problems.error ? 'The catalog could not be loaded.' : 'Loading the catalog…'}</span>}
            </div>
            <FieldErrors id="x-applications-error" issues={err('applications')} onSuggest={suggestApp} />
          </fieldset>
          <p class="muted small xp-selection" id="x-selection" aria-live="polite">
            {!pv.any ? 'Choose problems by id, pattern, task type or application; they combine: ids and patterns are joined, then narrowed to the types and applications checked.'
              : <>Selects <strong data-preview="problems">{plural(pv.selected.length, 'problem')}</strong> of {catalog.length} in the catalog.</>}
          </p>
          {pv.any && pv.selected.length > 0 && (
            <details class="io">
              <summary>Show them</summary>
              <ul class="xp-problem-list mono small">{pv.selected.slice(0, 200).map((id) => <li key={id}>{id}</li>)}</ul>
              {pv.selected.length > 200 && <p class="muted small">and {pv.selected.length - 200} more</p>}
            </details>
          )}
        </fieldset>

        <fieldset class="card">
          <legend>Models</legend>
          <FieldErrors id="x-models-error" issues={err('models')} />
          <datalist id="xp-model-options">
            {Object.entries(modelCatalog?.aliases ?? {}).map(([alias, id]) => <option key={`a-${alias}`} value={alias} label={`→ ${id}`} />)}
            {(modelCatalog?.models ?? []).map((m) => <option key={m.id} value={m.id} label={priceOf(m)} />)}
          </datalist>
          <ol class="xp-model-rows">
            {rows.map((r, i) => {
              const m = resolve(r.model.trim());
              return (
                <li key={i} class="xp-model-row">
                  <div class={fieldClass(`models.${i}`, 'xp-model-field')}>
                    <label for={`x-models-${i}`}>Model {i + 1}</label>
                    <input id={`x-models-${i}`} name={`model-${i}`} class="mono" list="xp-model-options" autoComplete="off" spellcheck={false} value={r.model}
                      placeholder={i === 0 && modelCatalog?.default_model ? `e.g. ${modelCatalog.default_model}` : 'OpenRouter id, short name, openai:… or local:…'}
                      aria-invalid={err(`models.${i}`) ? 'true' : undefined} aria-describedby={describedBy(`x-models-${i}`, !!err(`models.${i}`))}
                      onInput={(e) => setRow(i, { model: e.currentTarget.value })} />
                    <span class="hint" id={`x-models-${i}-hint`}>{m ? <><span class="mono">{m.id}</span>: {priceOf(m)}</> : r.model.trim() ? 'Checked by the server when you submit.' : ' '}</span>
                    <FieldErrors id={`x-models-${i}-error`} issues={err(`models.${i}`)} onSuggest={(_d, s) => setRow(i, { model: s })} />
                  </div>
                  <div class={fieldClass(`cap.${i}`, 'xp-cap-field')}>
                    <label for={`x-cap-${i}`}>Max running</label>
                    <input id={`x-cap-${i}`} type="number" min={1} max={1000} step={1} inputMode="numeric" value={r.cap}
                      aria-invalid={err(`cap.${i}`) ? 'true' : undefined} aria-describedby={describedBy(`x-cap-${i}`, !!err(`cap.${i}`))}
                      onInput={(e) => setRow(i, { cap: e.currentTarget.value })} />
                    <span class="hint" id={`x-cap-${i}-hint`}>optional</span>
                    <FieldErrors id={`x-cap-${i}-error`} issues={err(`cap.${i}`)} />
                  </div>
                  {rows.length > 1 && (
                    <button type="button" class="btn btn-small xp-remove" aria-label={`Remove model ${i + 1}${r.model ? ` (${r.model})` : ''}`}
                      onClick={() => { setRows((rs) => rs.filter((_, j) => j !== i)); setIssues({}); }}>Remove</button>
                  )}
                </li>
              );
            })}
          </ol>
          <button type="button" class="btn" onClick={() => { setRows((rs) => [...rs, { model: '', cap: '' }]); requestAnimationFrame(() => document.getElementById(`x-models-${rows.length}`)?.focus()); }}>
            Add model
          </button>
        </fieldset>

        <fieldset class="card">
          <legend>Runs and shared parameters</legend>
          <FieldErrors id="x-parameters-error" issues={err('parameters')} />
          <div class="param-grid">
            <div class={fieldClass('repeats')}>
              <label for="x-repeats">Repeats</label>
              <input id="x-repeats" name="repeats" type="number" min={1} max={100} step={1} inputMode="numeric" value={repeats}
                aria-invalid={err('repeats') ? 'true' : undefined} aria-describedby={describedBy('x-repeats', !!err('repeats'))}
                onInput={(e) => { setRepeats(e.currentTarget.value); clear('repeats'); }} />
              <span class="hint" id="x-repeats-hint">runs per problem × model; default 1</span>
              <FieldErrors id="x-repeats-error" issues={err('repeats')} />
            </div>
            {PARAM_FIELDS.map((f) => (
              <div key={f.key} class={fieldClass(f.key)}>
                <label for={`x-${f.key}`}>{f.label}</label>
                <input id={`x-${f.key}`} name={f.key} type="number" min={f.min} max={'max' in f ? f.max : undefined} step={f.step} inputMode={f.step === 1 ? 'numeric' : 'decimal'}
                  value={params[f.key]} aria-invalid={err(f.key) ? 'true' : undefined} aria-describedby={describedBy(`x-${f.key}`, !!err(f.key))}
                  onInput={(e) => { const v = e.currentTarget.value; setParams((p) => ({ ...p, [f.key]: v })); clear(f.key, 'parameters'); }} />
                <span class="hint" id={`x-${f.key}-hint`}>{f.hint}</span>
                <FieldErrors id={`x-${f.key}-error`} issues={err(f.key)} />
              </div>
            ))}
          </div>
        </fieldset>

        <fieldset class="card">
          <legend>Limits</legend>
          <div class="param-grid">
            <div class={fieldClass('spend_cap_usd')}>
              <label for="x-spend_cap_usd">Spend cap (USD)</label>
              <input id="x-spend_cap_usd" name="spend_cap_usd" type="number" min={0} step="any" inputMode="decimal" value={spendCap}
                aria-invalid={err('spend_cap_usd') ? 'true' : undefined} aria-describedby={describedBy('x-spend_cap_usd', !!err('spend_cap_usd'))}
                onInput={(e) => { setSpendCap(e.currentTarget.value); clear('spend_cap_usd'); }} />
              <span class="hint" id="x-spend_cap_usd-hint">no new task starts once the experiment's spend reaches it; none if empty</span>
              <FieldErrors id="x-spend_cap_usd-error" issues={err('spend_cap_usd')} />
            </div>
            <div class={fieldClass('max_running_per_model')}>
              <label for="x-max_running_per_model">Max running per model</label>
              <input id="x-max_running_per_model" name="max_running_per_model" type="number" min={1} max={1000} step={1} inputMode="numeric" value={perModel}
                aria-invalid={err('max_running_per_model') ? 'true' : undefined} aria-describedby={describedBy('x-max_running_per_model', !!err('max_running_per_model'))}
                onInput={(e) => { setPerModel(e.currentTarget.value); clear('max_running_per_model'); }} />
              <span class="hint" id="x-max_running_per_model-hint">for each model (a row's own cap wins); none if empty</span>
              <FieldErrors id="x-max_running_per_model-error" issues={err('max_running_per_model')} />
            </div>
          </div>
        </fieldset>

        <div class="form-actions xp-actions">
          <button type="submit" class="btn btn-primary btn-large" disabled={busy}>{busy ? 'Submitting…' : found ? 'Resume experiment' : 'Create experiment'}</button>
          <span class="muted small" aria-live="polite" data-preview="combinations">
            {found ? null : pv.any && pv.selected.length && modelNames.length
              ? `${plural(pv.selected.length, 'problem')} × ${plural(modelNames.length, 'model')} × ${plural(Number.isFinite(repeatsN) ? repeatsN : 1, 'repeat')} = ${plural(combos, 'task')}`
              : null}
          </span>
        </div>
      </form>
    </section>
  );
}
