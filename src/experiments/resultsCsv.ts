/** CSV (RFC 4180) of one results table: a header of the JSON field names, then one line per row. */
import type { ExperimentResults } from './experimentResults.js';

export const RESULT_TABLES = ['summary', 'by_model', 'detail', 'tasks'] as const;
export type ResultTable = (typeof RESULT_TABLES)[number];

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: ReadonlyArray<Record<string, unknown>>, columns?: string[]): string {
  const cols = columns ?? (rows[0] ? Object.keys(rows[0]) : []);
  const lines = [cols.map(cell).join(',')];
  for (const r of rows) lines.push(cols.map((c) => cell(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Column order is fixed per table, so an empty table still has its header. */
export const TABLE_COLUMNS: Record<ResultTable, string[]> = (() => {
  const stats = ['tasks', 'evaluated', 'errored', 'successes', 'success_rate', 'success_ci_low', 'success_ci_high', 'ttx_name', 'ttx_mean_s', 'ttx_median_s',
    'steps_mean', 'steps_median', 'input_tokens_mean', 'output_tokens_mean', 'input_tokens_total', 'output_tokens_total', 'cost_per_task_usd', 'cost_total_usd'];
  return {
    summary: ['model', 'task_type', ...stats],
    by_model: ['model', ...stats],
    detail: ['problem_id', 'task_type', 'model', ...stats],
    tasks: ['task_id', 'problem_id', 'model', 'repeat', 'status', 'task_type', 'success', 'ttx_name', 'ttx_seconds', 'steps', 'input_tokens', 'output_tokens', 'cost_usd'],
  };
})();

export function resultsTableCsv(results: ExperimentResults, table: ResultTable): string {
  return toCsv(results[table] as unknown as ReadonlyArray<Record<string, unknown>>, TABLE_COLUMNS[table]);
}
