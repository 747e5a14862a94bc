/** Tokens and cost per model, with a total row. */
import { fmtCompact, fmtInt, fmtUsd } from '../format';
import type { SpendRow } from '../types';

export function SpendTable({ rows, caption }: { rows: SpendRow[]; caption: string }) {
  const sum = (k: keyof Omit<SpendRow, 'model'>) => rows.reduce((a, r) => a + (r[k] ?? 0), 0);
  return (
    <div class="table-scroll">
      <table class="data-table cards-on-phone">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col" class="num">Runs</th>
            <th scope="col" class="num">LLM calls</th>
            <th scope="col" class="num">Prompt</th>
            <th scope="col" class="num">Completion</th>
            <th scope="col" class="num">Total tokens</th>
            <th scope="col" class="num">Cost</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.model}>
              <th scope="row" data-label="Model" class="mono small">{r.model}</th>
              <td data-label="Runs" class="num">{fmtInt(r.conversations)}</td>
              <td data-label="LLM calls" class="num">{fmtInt(r.llm_calls)}</td>
              <td data-label="Prompt" class="num" title={fmtInt(r.prompt_tokens)}>{fmtCompact(r.prompt_tokens)}</td>
              <td data-label="Completion" class="num" title={fmtInt(r.completion_tokens)}>{fmtCompact(r.completion_tokens)}</td>
              <td data-label="Total tokens" class="num" title={fmtInt(r.total_tokens)}>{fmtCompact(r.total_tokens)}</td>
              <td data-label="Cost" class="num">{fmtUsd(r.cost_usd)}</td>
            </tr>
          ))}
        </tbody>
        {rows.length > 1 && (
          <tfoot>
            <tr>
              <th scope="row" data-label="Model">All models</th>
              <td data-label="Runs" class="num">{fmtInt(sum('conversations'))}</td>
              <td data-label="LLM calls" class="num">{fmtInt(sum('llm_calls'))}</td>
              <td data-label="Prompt" class="num">{fmtCompact(sum('prompt_tokens'))}</td>
              <td data-label="Completion" class="num">{fmtCompact(sum('completion_tokens'))}</td>
              <td data-label="Total tokens" class="num">{fmtCompact(sum('total_tokens'))}</td>
              <td data-label="Cost" class="num">{fmtUsd(sum('cost_usd'))}</td>
            </tr>
          </tfoot>
        )}
      </table>
    </div>
  );
}
