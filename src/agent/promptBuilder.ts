/**
 * The first request of an episode, built the way AIOpsLab's stock shell-only clients build it
 * (INTERFACE.md §2.2): a system message from the checkout's DOCS_SHELL_ONLY template filled with
 * the task description, the `exec_shell` entry and the `submit` entry of the actions dict, then
 * the instructions verbatim as a user message. Every later turn is the observation AIOpsLab sends.
 *
 * When the checkout's templates are not available, a built-in template with the same layout and
 * the same two formatting rules is used instead; which one was used is recorded on the conversation.
 */
import type { EpisodeContext } from '../bridge/episodeAgent.js';
import type { ChatMessage } from './llmClient.js';

/** Templates an `agent_config.prompt_template` may name. */
export const PROMPT_TEMPLATES = ['DOCS_SHELL_ONLY', 'DOCS'] as const;
export type PromptTemplateName = (typeof PROMPT_TEMPLATES)[number];
export const DEFAULT_PROMPT_TEMPLATE: PromptTemplateName = 'DOCS_SHELL_ONLY';

/** APIs that the shell-only template leaves out but DOCS lists as telemetry. */
const TELEMETRY_APIS = ['get_logs', 'get_metrics', 'get_traces', 'read_metrics', 'read_traces'];

/**
 * Our own wording of the shell-only layout: task description; the terminal API; the submit API;
 * the two rules AIOpsLab's parser enforces; the required answer shape. Placeholders use Python
 * `str.format` syntax so the same filler handles it and the checkout's templates.
 */
export const BUILTIN_SHELL_ONLY_TEMPLATE = `{prob_desc}

You can run commands in the service's environment through this terminal API:

{shell_api}

When you are done, report your answer through this submission API:

{submit_api}

IMPORTANT:
1. Call submit() exactly as its signature above specifies.
2. Put your single API call inside a markdown code block (three backticks, no language tag).

At each turn respond with:
Action: <your action>`;

export class TemplateFormatError extends Error {}

/** Python `str.format` with named fields only: `{name}` is replaced, `{{` and `}}` are literal braces. */
export function formatPythonTemplate(template: string, values: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if (ch === '{') {
      if (template[i + 1] === '{') { out += '{'; i++; continue; }
      const end = template.indexOf('}', i);
      if (end < 0) throw new TemplateFormatError("Single '{' encountered in format string");
      const field = template.slice(i + 1, end);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(field)) throw new TemplateFormatError(`unsupported replacement field {${field}}`);
      if (!(field in values)) throw new TemplateFormatError(`no value for field {${field}}`);
      out += values[field];
      i = end;
    } else if (ch === '}') {
      if (template[i + 1] === '}') { out += '}'; i++; continue; }
      throw new TemplateFormatError("Single '}' encountered in format string");
    } else {
      out += ch;
    }
  }
  return out;
}

/** Each API as its name on one line and its docstring below; entries separated by a blank line. */
export function renderApiEntries(actions: Record<string, string>, names: readonly string[]): string {
  return names.filter((n) => n in actions).map((n) => `${n}\n${actions[n]}`).join('\n\n');
}

export interface InitialPrompt {
  messages: [ChatMessage, ChatMessage];
  /** `checkout:<NAME>` when the user's AIOpsLab template was used, `builtin:DOCS_SHELL_ONLY` otherwise. */
  templateSource: string;
  /** Why the checkout template was not used, when it was not. */
  fallbackReason: string | null;
}

export function buildInitialPrompt(ctx: EpisodeContext, templateName: PromptTemplateName = DEFAULT_PROMPT_TEMPLATE): InitialPrompt {
  const values: Record<string, string> = {
    prob_desc: ctx.taskDescription,
    shell_api: renderApiEntries(ctx.actions, ['exec_shell']),
    submit_api: renderApiEntries(ctx.actions, ['submit']),
    telemetry_apis: renderApiEntries(ctx.actions, TELEMETRY_APIS),
  };
  const user: ChatMessage = { role: 'user', content: ctx.instructions };
  const checkout = ctx.templates?.[templateName];
  let fallbackReason: string | null = null;
  if (typeof checkout === 'string' && checkout.length > 0) {
    try {
      return { messages: [{ role: 'system', content: formatPythonTemplate(checkout, values) }, user], templateSource: `checkout:${templateName}`, fallbackReason: null };
    } catch (e) {
      fallbackReason = `the checkout's ${templateName} could not be filled: ${(e as Error).message}`;
    }
  } else {
    fallbackReason = `the checkout provided no ${templateName} template`;
  }
  return {
    messages: [{ role: 'system', content: formatPythonTemplate(BUILTIN_SHELL_ONLY_TEMPLATE, values) }, user],
    templateSource: 'builtin:DOCS_SHELL_ONLY',
    fallbackReason,
  };
}
