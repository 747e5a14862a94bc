/**
 * The LLM agent that answers AIOpsLab's get_action for one task attempt, recording the whole
 * conversation as it happens.
 *
 * - init: system + instructions messages as the stock shell-only clients build them (promptBuilder).
 * - nextAction: appends the observation, sends the full history with the configured sampling
 *   parameters, records the reply with the call's real usage, cost, latency, generation id,
 *   served model and finish reason, and returns the reply text (never null: an empty reply is
 *   returned as "" so AIOpsLab fails to parse it and consumes a step).
 * - History policy: the full history is sent. Only when the catalog gives the model's context
 *   length and the next request would not fit, the oldest turns after the system prompt and the
 *   instructions are dropped (recorded on the message as `history_trimmed`). The fit check uses the
 *   previous call's real prompt tokens plus a character estimate of the new text; totals never do.
 *   An empty reply is kept in the record but left out of the history sent back to the model,
 *   since some providers reject empty assistant turns.
 * - Budget: max_total_tokens / max_cost_usd are checked after each recorded call; going past one
 *   throws budget_exceeded, which aborts the episode.
 */
import { secretValues, type Config } from '../config.js';
import type { EpisodeAgent, EpisodeContext, EpisodeStep } from '../bridge/episodeAgent.js';
import { AppError, isAppError } from '../errors.js';
import { redactSecrets, type Logger } from '../logger.js';
import type { Pool } from '../store/pool.js';
import { annotateMessage, appendMessage, createConversation, finishConversation, updateConversationInfo } from '../store/conversations.js';
import { createLlmClient, type ChatMessage, type SamplingParams } from './llmClient.js';
import type { ModelCatalogView } from './modelCatalog.js';
import type { ResolvedModel } from './modelResolution.js';
import { buildInitialPrompt, DEFAULT_PROMPT_TEMPLATE, PROMPT_TEMPLATES, type PromptTemplateName } from './promptBuilder.js';
import { normalizeReply } from './replyNormalization.js';
import { SAMPLING_DEFAULTS } from './samplingDefaults.js';
import { accountCall, addToTotals, emptyTotals, type UsageTotals } from './usageCost.js';

/** The part of a task's parameters the agent reads (the task schema has more). */
export interface AgentTaskParameters {
  max_total_tokens?: number | null | undefined;
  max_cost_usd?: number | null | undefined;
  agent_config: {
    model: string;
    temperature?: number | undefined;
    max_tokens?: number | undefined;
    top_p?: number | undefined;
    use_openrouter?: boolean | undefined;
    normalize_reply?: boolean | undefined;
    prompt_template?: string | undefined;
  };
}

export interface LlmAgentOptions {
  pool: Pool;
  config: Config;
  logger: Logger;
  task: { id: string; attempt: number; problemId: string; parameters: AgentTaskParameters };
  workerId: string;
  clusterName: string;
  model: ResolvedModel;
  catalog: ModelCatalogView | null;
  signal?: AbortSignal;
}

export interface FinishSummary {
  status: string;
  success: boolean | null;
  results: Record<string, unknown> | null;
  reward: number | null;
  outcome: string | null;
  error_type: string | null;
}

export interface LlmAgent extends EpisodeAgent {
  conversationId: string;
  totals(): UsageTotals;
  finish(summary: FinishSummary): Promise<void>;
}

/** The environment response is also in the next observation; the copy on the action is capped. */
const STEP_RESPONSE_CAP = 20_000;
/** Rough characters per token for the context-fit guard only. */
const CHARS_PER_TOKEN = 3;
/** The system prompt and the instructions are never trimmed. */
const PINNED_MESSAGES = 2;

export function taskTypeOf(problemId: string): string | null {
  const m = /(detection|localization|analysis|mitigation)(?!.*(detection|localization|analysis|mitigation))/.exec(problemId);
  return m ? m[1]! : null;
}

function safeBaseUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable base URL)';
  }
}

function estimateTokens(messages: readonly ChatMessage[]): number {
  let n = 0;
  for (const m of messages) n += Math.ceil(m.content.length / CHARS_PER_TOKEN) + 4;
  return n;
}

export async function createLlmAgent(opts: LlmAgentOptions): Promise<LlmAgent> {
  const { pool, config, model, catalog, task } = opts;
  const ac = task.parameters.agent_config;
  const sampling: Required<SamplingParams> = {
    temperature: ac.temperature ?? SAMPLING_DEFAULTS.temperature,
    max_tokens: ac.max_tokens ?? SAMPLING_DEFAULTS.max_tokens,
    top_p: ac.top_p ?? SAMPLING_DEFAULTS.top_p,
  };
  const defaultsApplied = (['temperature', 'max_tokens', 'top_p'] as const).filter((k) => ac[k] === undefined);
  const normalize = ac.normalize_reply === true;
  const templateName: PromptTemplateName = (PROMPT_TEMPLATES as readonly string[]).includes(ac.prompt_template ?? '')
    ? (ac.prompt_template as PromptTemplateName)
    : DEFAULT_PROMPT_TEMPLATE;
  const maxTokensBudget = task.parameters.max_total_tokens ?? null;
  const maxCostBudget = task.parameters.max_cost_usd ?? null;
  const taskType = await lookupTaskType(pool, task.problemId);

  const conversation = await createConversation(pool, {
    taskId: task.id,
    attempt: task.attempt,
    modelName: model.id,
    provider: model.provider,
    llmConfig: {
      requested_model: model.requested,
      model: model.id,
      provider: model.provider,
      base_url: safeBaseUrl(model.baseUrl),
      catalog_id: model.catalogId,
      in_catalog: model.inCatalog,
      ...sampling,
      defaults_applied: defaultsApplied,
      normalize_reply: normalize,
      prompt_template: templateName,
      max_total_tokens: maxTokensBudget,
      max_cost_usd: maxCostBudget,
      history_policy: 'full history; oldest turns after the system prompt and instructions dropped only when the catalog context length would be exceeded',
    },
    metadata: {
      problem_id: task.problemId,
      task_id: task.id,
      attempt: task.attempt,
      task_type: taskType,
      worker_id: opts.workerId,
      cluster_name: opts.clusterName,
      status: 'running',
    },
  });
  const conversationId = conversation.id;
  const log = opts.logger.child({ task_id: task.id, attempt: task.attempt, conversation_id: conversationId });
  const client = createLlmClient({ model, config, logger: log });
  const secrets = secretValues(config);
  const contextLength = model.catalogId && catalog ? catalog.contextLength(model.catalogId) : null;

  const totals = emptyTotals();
  let history: ChatMessage[] = [];
  let initialized = false;
  let lastPromptTokens = 0;
  let lastCompletionTokens = 0;
  let droppedTotal = 0;
  const assistantSeqByStep = new Map<number, { seq: number; sent: string }>();
  let lastAssistant: { seq: number; sent: string } | null = null;

  async function record(role: 'system' | 'user', content: string, step: number | null, metadata: Record<string, unknown>) {
    return appendMessage(pool, conversationId, { role, content, step, metadata });
  }

  /** Drops the oldest unpinned turns until the projected request fits the context window. */
  function fitHistory(newMessage: ChatMessage): Record<string, unknown> | null {
    if (!contextLength) return null;
    const project = () =>
      (lastPromptTokens > 0 ? lastPromptTokens + lastCompletionTokens + estimateTokens([newMessage]) : estimateTokens(history)) + sampling.max_tokens;
    let projected = project();
    if (projected <= contextLength) return null;
    let dropped = 0;
    while (projected > contextLength && history.length > PINNED_MESSAGES) {
      const removed = history.splice(PINNED_MESSAGES, 1);
      dropped += 1;
      projected -= estimateTokens(removed);
    }
    if (dropped === 0) return null;
    droppedTotal += dropped;
    log.warn({ dropped, context_length: contextLength }, 'history trimmed to fit the model context length');
    return { dropped_messages: dropped, dropped_total: droppedTotal, projected_prompt_tokens: projected - sampling.max_tokens, context_length: contextLength };
  }

  function checkBudget(): void {
    if (maxTokensBudget !== null && totals.total_tokens > maxTokensBudget) {
      throw new AppError('budget_exceeded', `The task used ${totals.total_tokens} tokens, more than its max_total_tokens of ${maxTokensBudget}.`, { limit: 'max_total_tokens', max: maxTokensBudget, used: totals.total_tokens });
    }
    if (maxCostBudget !== null && totals.cost_usd > maxCostBudget) {
      throw new AppError('budget_exceeded', `The task cost $${totals.cost_usd}, more than its max_cost_usd of $${maxCostBudget}.`, { limit: 'max_cost_usd', max: maxCostBudget, used: totals.cost_usd });
    }
  }

  const agent: LlmAgent = {
    conversationId,

    async init(ctx: EpisodeContext) {
      const prompt = buildInitialPrompt(ctx, templateName);
      await updateConversationInfo(pool, conversationId, {
        ...(ctx.sessionId ? { sessionId: ctx.sessionId } : {}),
        llmConfig: { template_source: prompt.templateSource, template_fallback_reason: prompt.fallbackReason },
        metadata: { aiopslab_session_id: ctx.sessionId, template_source: prompt.templateSource },
      });
      if (prompt.fallbackReason) log.info({ reason: prompt.fallbackReason }, 'using the built-in prompt template');
      await record('system', prompt.messages[0].content, null, { type: 'system_prompt', template_source: prompt.templateSource });
      await record('user', prompt.messages[1].content, null, { type: 'instructions' });
      history = [...prompt.messages];
      initialized = true;
    },

    async nextAction({ step, input }) {
      if (!initialized) throw new AppError('internal', 'nextAction was called before init.');
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new AppError('cancelled', 'The task was cancelled.');
      const userMessage: ChatMessage = { role: 'user', content: input };
      const trimmed = fitHistory(userMessage);
      history.push(userMessage);
      await record('user', input, step, { type: 'observation', ...(trimmed ? { history_trimmed: trimmed } : {}) });

      let result;
      try {
        result = await client.complete({ model: model.id, messages: history, params: sampling }, opts.signal ? { signal: opts.signal } : {});
      } catch (e) {
        const code = isAppError(e) ? e.code : 'llm_unavailable';
        const message = redactSecrets((e as Error).message ?? String(e), secrets);
        await updateConversationInfo(pool, conversationId, { metadata: { llm_error: { code, message, step } } }).catch(() => {});
        log.error({ code, step, err_message: message }, 'LLM call failed');
        throw e;
      }

      const accounting = accountCall(result.usage, model.catalogId, catalog);
      const raw = result.content ?? '';
      const normalized = normalize ? normalizeReply(raw) : null;
      const sent = normalized?.changed ? normalized.text : raw;
      const empty = raw.trim() === '';
      const metadata: Record<string, unknown> = {
        type: 'action',
        usage: accounting.usage,
        cost_usd: accounting.cost_usd,
        cost_source: accounting.cost_source,
        ...(accounting.cost_details ? { cost_details: accounting.cost_details } : {}),
        ...(accounting.usage_reported ? {} : { usage_reported: false }),
        latency_ms: result.latencyMs,
        total_ms: result.totalMs,
        generation_id: result.generationId,
        served_model: result.servedModel,
        finish_reason: result.finishReason,
        attempts: result.attempts,
        ...(result.retries.length ? { retries: result.retries } : {}),
        request: { model: model.id, provider: model.provider, ...sampling, messages: history.length },
        ...(empty ? { empty_reply: true, content_null: result.content === null } : {}),
        ...(normalized?.changed ? { normalization: { raw, sent, changes: normalized.changes } } : {}),
      };
      const saved = await appendMessage(pool, conversationId, {
        role: 'assistant',
        content: raw,
        step,
        metadata,
        call: { ...accounting.usage, cost_usd: accounting.cost_usd },
      });
      addToTotals(totals, accounting);
      lastPromptTokens = accounting.usage.prompt_tokens;
      lastCompletionTokens = accounting.usage.completion_tokens;
      if (!empty) history.push({ role: 'assistant', content: raw });
      lastAssistant = { seq: saved.seq, sent };
      assistantSeqByStep.set(step, lastAssistant);
      log.debug({ step, ...accounting.usage, cost_usd: accounting.cost_usd, cost_source: accounting.cost_source, latency_ms: result.latencyMs }, 'LLM call recorded');
      try {
        checkBudget();
      } catch (e) {
        await updateConversationInfo(pool, conversationId, { metadata: { budget_exceeded: (e as AppError).details } });
        throw e;
      }
      return sent;
    },

    async onStep(s: EpisodeStep) {
      const target = assistantSeqByStep.get(s.step) ?? lastAssistant;
      if (!target) return;
      const response = s.response ?? '';
      try {
        await annotateMessage(pool, conversationId, target.seq, {
          env_step: {
            step: s.step,
            api: s.api,
            args: s.args,
            kwargs: s.kwargs,
            response: response.length > STEP_RESPONSE_CAP ? response.slice(0, STEP_RESPONSE_CAP) : response,
            ...(response.length > STEP_RESPONSE_CAP ? { response_truncated: true, response_length: response.length } : {}),
            submitted: s.submitted,
            duration_ms: s.durationMs,
            ...(s.action !== target.sent ? { action: s.action } : {}),
          },
        });
      } catch (e) {
        // The step itself already happened; losing its annotation must not abort the episode.
        log.error({ step: s.step, err_message: (e as Error).message }, 'could not record the step on its action message');
      }
    },

    totals: () => ({ ...totals }),

    async finish(summary) {
      await finishConversation(pool, conversationId, {
        status: summary.status,
        success: summary.success,
        results: summary.results,
        reward: summary.reward,
        outcome: summary.outcome,
        error_type: summary.error_type,
        usage: { ...totals },
      });
    },
  };
  return agent;
}

async function lookupTaskType(pool: Pool, problemId: string): Promise<string | null> {
  const r = await pool.query<{ task_type: string }>('SELECT task_type FROM problems WHERE id = $1', [problemId]);
  return r.rows[0]?.task_type ?? taskTypeOf(problemId);
}
