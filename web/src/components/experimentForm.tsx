/**
 * What the experiment forms share: where a server field problem (`details[].field`, dotted paths
 * such as `models.1`, `problems.patterns`, `parameters.agent_config.temperature`,
 * `model_max_running.openai/gpt-4o`) is shown, and the error text under a field.
 */
import { Fragment } from 'preact';
import type { FieldIssue } from '../types';

export const PARAM_FIELDS = [
  { key: 'max_steps', label: 'Max steps', min: 1, max: 1000, step: 1, hint: '1–1000; default 30' },
  { key: 'timeout_minutes', label: 'Timeout (minutes)', min: 1, max: 180, step: 1, hint: '1–180; default 30' },
  { key: 'priority', label: 'Priority', min: 0, max: 10, step: 1, hint: '0–10; default 5' },
  { key: 'temperature', label: 'Temperature', min: 0, max: 2, step: 'any', hint: '0–2; model default if empty', agent: true },
  { key: 'max_tokens', label: 'Max tokens per reply', min: 1, max: 1_000_000, step: 1, hint: 'model default if empty', agent: true },
  { key: 'top_p', label: 'Top p', min: 0, max: 1, step: 'any', hint: 'above 0, at most 1', agent: true },
  { key: 'max_total_tokens', label: 'Token budget per task', min: 1, step: 1, hint: 'none if empty' },
  { key: 'max_cost_usd', label: 'Cost budget per task (USD)', min: 0, step: 'any', hint: 'none if empty' },
] as const;
export type ParamKey = (typeof PARAM_FIELDS)[number]['key'];
const PARAM_KEYS = new Set<string>(PARAM_FIELDS.map((f) => f.key));

/**
 * The form key a server field belongs to; `modelIndex` finds the row of a model named in a
 * per-model cap. null: not a field of this form (the problem is shown above the form).
 */
export function experimentFieldKey(field: string, modelIndex: (model: string) => number): string | null {
  // ajv writes JSON-pointer escapes into paths: `model_max_running.openai~1gpt-4o`.
  const f = field.replace(/^body\./, '').replace(/~1/g, '/').replace(/~0/g, '~');
  if (f === 'name' || f === 'id' || f === 'body') return 'name';
  if (f === 'description' || f === 'repeats' || f === 'spend_cap_usd' || f === 'max_running_per_model' || f === 'retry_failed') return f;
  const sel = /^(?:problems\.)?(problem_ids|patterns|applications|task_types)(?:\.\d+)?$/.exec(f);
  if (sel) return sel[1]!;
  if (f === 'problems') return 'problems';
  const model = /^models\.(\d+)$/.exec(f);
  if (model) return `models.${model[1]}`;
  if (f === 'models' || f === 'parameters.agent_config.model') return 'models';
  const cap = /^model_max_running\.(.+)$/.exec(f);
  if (cap) {
    const i = modelIndex(cap[1]!);
    return i >= 0 ? `cap.${i}` : 'models';
  }
  if (f === 'model_max_running') return 'models';
  const param = /^parameters\.(?:agent_config\.)?([a-z_]+)$/.exec(f);
  if (param && PARAM_KEYS.has(param[1]!)) return param[1]!;
  if (f === 'parameters' || f.startsWith('parameters.')) return 'parameters';
  return null;
}

export type IssueMap = Record<string, FieldIssue[]>;

/** Groups the issues by form key; the ones no field takes come back in `unplaced`. */
export function placeIssues(issues: FieldIssue[], modelIndex: (model: string) => number): { placed: IssueMap; unplaced: FieldIssue[] } {
  const placed: IssueMap = {};
  const unplaced: FieldIssue[] = [];
  for (const d of issues) {
    const k = experimentFieldKey(d.field, modelIndex);
    if (k === null) unplaced.push(d);
    else (placed[k] ??= []).push(d);
  }
  return { placed, unplaced };
}

const sentence = (s: string) => `${s.charAt(0).toUpperCase()}${s.slice(1)}${/[.?!]$/.test(s) ? '' : '.'}`;

/** The problems of one field, with "did you mean" suggestions as buttons. */
export function FieldErrors({ id, issues, onSuggest }: { id: string; issues: FieldIssue[] | undefined; onSuggest?: (issue: FieldIssue, suggestion: string) => void }) {
  if (!issues?.length) return null;
  return (
    <div class="field-error" id={id} role="alert">
      {issues.map((d, i) => (
        <div key={i}>
          {sentence(d.reason)}
          {onSuggest && d.closest && d.closest.length > 0 && (
            <span class="suggestions"> Did you mean {d.closest.map((c, j) => (
              <Fragment key={c}>{j > 0 ? ', ' : ''}<button type="button" class="btn-link suggestion" onClick={() => onSuggest(d, c)}>{c}</button></Fragment>
            ))}?</span>
          )}
        </div>
      ))}
    </div>
  );
}

/** aria-describedby for an input: its hint, and its error when it has one. */
export function describedBy(id: string, hasError: boolean, hint = true): string | undefined {
  return [hint ? `${id}-hint` : null, hasError ? `${id}-error` : null].filter(Boolean).join(' ') || undefined;
}

/** A number input's value: undefined when empty, NaN when the browser could not parse it. */
export function numberValue(input: HTMLInputElement | null, raw: string): number | undefined {
  if (input?.validity.badInput) return Number.NaN;
  const s = raw.trim();
  return s === '' ? undefined : Number(s);
}
