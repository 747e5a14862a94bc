import { describe, expect, it } from 'vitest';
import { buildInitialPrompt, formatPythonTemplate, renderApiEntries, TemplateFormatError } from '../src/agent/promptBuilder.js';
import { normalizeReply } from '../src/agent/replyNormalization.js';
import { accountCall, addToTotals, emptyTotals } from '../src/agent/usageCost.js';
import { createCatalogView } from '../src/agent/modelCatalog.js';

describe('formatPythonTemplate', () => {
  it('fills named fields and turns doubled braces into literal ones, like str.format', () => {
    expect(formatPythonTemplate('{a} and {{b}} and {{ {a} }}', { a: 'X' })).toBe('X and {b} and { X }');
  });
  it('refuses what str.format would refuse', () => {
    expect(() => formatPythonTemplate('{missing}', {})).toThrow(TemplateFormatError);
    expect(() => formatPythonTemplate('a } b', {})).toThrow(/Single '}'/);
    expect(() => formatPythonTemplate('a { b', {})).toThrow(TemplateFormatError);
    expect(() => formatPythonTemplate('{0}', { 0: 'x' })).toThrow(/unsupported/);
  });
  it('does not re-interpret braces inside substituted values', () => {
    expect(formatPythonTemplate('{a}', { a: 'submit({"k": "{v}"})' })).toBe('submit({"k": "{v}"})');
  });
});

describe('renderApiEntries', () => {
  it('renders each API as its name line and docstring, separated by a blank line, in the order asked', () => {
    const actions = { exec_shell: 'doc one\n    more', get_logs: 'doc two', submit: 'doc three' };
    expect(renderApiEntries(actions, ['exec_shell'])).toBe('exec_shell\ndoc one\n    more');
    expect(renderApiEntries(actions, ['submit', 'exec_shell', 'absent'])).toBe('submit\ndoc three\n\nexec_shell\ndoc one\n    more');
  });
});

describe('buildInitialPrompt', () => {
  const ctx = { problemId: 'p', taskDescription: 'DESC', instructions: '  INSTR  ', actions: { exec_shell: 'E', get_logs: 'L', submit: 'S' }, templates: { DOCS_SHELL_ONLY: '{prob_desc}|{shell_api}|{submit_api}', DOCS: '{prob_desc}|{telemetry_apis}|{shell_api}|{submit_api}' }, sessionId: null };
  it('uses the checkout template by name', () => {
    expect(buildInitialPrompt(ctx)).toEqual({ messages: [{ role: 'system', content: 'DESC|exec_shell\nE|submit\nS' }, { role: 'user', content: '  INSTR  ' }], templateSource: 'checkout:DOCS_SHELL_ONLY', fallbackReason: null });
    expect(buildInitialPrompt(ctx, 'DOCS').messages[0].content).toBe('DESC|get_logs\nL|exec_shell\nE|submit\nS');
  });
});

describe('normalizeReply', () => {
  it('strips the language tag of opening fences only', () => {
    expect(normalizeReply('```python\nsubmit("Yes")\n```')).toEqual({ text: '```\nsubmit("Yes")\n```', changed: true, changes: ['removed language tag "python" from a code fence'] });
    expect(normalizeReply('Action: ```bash \r\nexec_shell("ls")\r\n```').text).toBe('Action: ```\r\nexec_shell("ls")\r\n```');
  });
  it('leaves correct replies and closing fences alone', () => {
    for (const ok of ['```\nexec_shell("ls")\n```', '```\nsubmit()\n```\nthen ```done', 'no fence at all', '']) {
      expect(normalizeReply(ok)).toEqual({ text: ok, changed: false, changes: [] });
    }
  });
  it('handles several blocks (AIOpsLab will still reject two, which is its rule to apply)', () => {
    expect(normalizeReply('```sh\na\n```\n```bash\nb\n```').text).toBe('```\na\n```\n```\nb\n```');
  });
});

describe('accountCall', () => {
  const catalog = createCatalogView([{ id: 'v/m', name: 'M', context_length: 1000, prompt_price: 0.000001, completion_price: 0.000003 }]);
  it("reads OpenRouter's usage-with-cost shape", () => {
    const a = accountCall({ prompt_tokens: 194, completion_tokens: 2, total_tokens: 196, cost: 0.95, cost_details: { upstream_inference_cost: 19 }, prompt_tokens_details: { cached_tokens: 7 }, completion_tokens_details: { reasoning_tokens: 1 } }, 'v/m', catalog);
    expect(a).toEqual({ usage: { prompt_tokens: 194, completion_tokens: 2, cached_tokens: 7, reasoning_tokens: 1, total_tokens: 196 }, usage_reported: true, cost_usd: 0.95, cost_source: 'provider', cost_details: { upstream_inference_cost: 19 } });
  });
  it('prices from the catalog without a provider cost, and knows nothing without either', () => {
    expect(accountCall({ prompt_tokens: 1000, completion_tokens: 100 }, 'v/m', catalog)).toMatchObject({ cost_usd: 0.0013, cost_source: 'catalog', usage: { total_tokens: 1100 } });
    expect(accountCall({ prompt_tokens: 1000, completion_tokens: 100 }, 'other/x', catalog)).toMatchObject({ cost_usd: 0, cost_source: 'unknown' });
    expect(accountCall(undefined, 'v/m', catalog)).toMatchObject({ cost_usd: 0, cost_source: 'unknown', usage_reported: false, usage: { total_tokens: 0 } });
  });
  it('sums totals exactly at 8 decimals', () => {
    const t = emptyTotals();
    for (let i = 0; i < 10; i++) addToTotals(t, accountCall({ prompt_tokens: 1, completion_tokens: 1, cost: 0.00000001 }, null, null));
    expect(t).toEqual({ prompt_tokens: 10, completion_tokens: 10, cached_tokens: 0, reasoning_tokens: 0, total_tokens: 20, cost_usd: 0.0000001, llm_calls: 10 });
  });
});
