/**
 * One chat-completions call through the official `openai` SDK, against OpenRouter, OpenAI or any
 * OpenAI-compatible server (by base URL), with our own retry loop so every attempt, wait and
 * reason can be recorded: 429, 408/409, 5xx, timeouts and connection failures retry with
 * exponential backoff and jitter (Retry-After honoured), bounded by LLM_MAX_RETRIES; 400, 401,
 * 402, 403 and unknown-model errors fail at once with a typed AppError carrying the provider's
 * message (with any secret value redacted).
 */
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import { secretValues, type Config } from '../config.js';
import { AppError, type ErrorCode } from '../errors.js';
import { redactSecrets, type Logger } from '../logger.js';
import { providerApiKey, type ResolvedModel } from './modelResolution.js';

export interface ChatMessage { role: 'system' | 'user' | 'assistant'; content: string }

/** Sampling parameters; only the ones present are sent. */
export interface SamplingParams { temperature?: number; max_tokens?: number; top_p?: number }

export interface RetryRecord {
  attempt: number;
  reason: string;
  status: number | null;
  wait_ms: number;
}

export interface ChatCompletionResult {
  /** choices[0].message.content as received (null when the provider sent none). */
  content: string | null;
  finishReason: string | null;
  generationId: string | null;
  servedModel: string | null;
  /** The raw `usage` block, or null when absent. */
  usage: unknown;
  /** Duration of the attempt that succeeded. */
  latencyMs: number;
  /** Duration of the whole call, waits and failed attempts included. */
  totalMs: number;
  attempts: number;
  retries: RetryRecord[];
}

export interface LlmClient {
  readonly provider: ResolvedModel['provider'];
  complete(req: { model: string; messages: ChatMessage[]; params: SamplingParams }, opts?: { signal?: AbortSignal }): Promise<ChatCompletionResult>;
}

const MAX_BACKOFF_MS = 30_000;
/** A provider asking for a longer pause than this is treated as unavailable rather than waited for. */
const MAX_RETRY_AFTER_MS = 120_000;

interface Classified {
  retryable: boolean;
  code: ErrorCode;
  status: number | null;
  message: string;
  retryAfterMs: number | null;
}

function parseRetryAfter(headers: Headers | undefined | null): number | null {
  if (!headers) return null;
  const ms = headers.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const v = headers.get('retry-after');
  if (!v) return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.max(0, Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : null;
}

function providerMessage(e: APIError): string {
  const body = e.error as { message?: unknown; metadata?: { raw?: unknown } } | undefined;
  let msg = typeof body?.message === 'string' ? body.message : e.message;
  // OpenRouter puts the upstream provider's own explanation in metadata.raw.
  if (typeof body?.metadata?.raw === 'string' && body.metadata.raw && !msg.includes(body.metadata.raw)) msg += ` (${body.metadata.raw.slice(0, 500)})`;
  return msg;
}

const MODEL_NOT_FOUND = /not a valid model|model[^.]*not (found|exist)|no such model|unknown model|does not exist|no endpoints found/i;

function classifyStatus(status: number, message: string, retryAfterMs: number | null): Classified {
  const base = { status, message, retryAfterMs };
  if (status === 429 || status === 408 || status === 409 || status >= 500) return { ...base, retryable: true, code: 'llm_unavailable' };
  if (status === 401 || status === 403) return { ...base, retryable: false, code: 'llm_auth' };
  if (status === 402) return { ...base, retryable: false, code: 'llm_credits' };
  if (status === 404 || MODEL_NOT_FOUND.test(message)) return { ...base, retryable: false, code: 'llm_model_not_found' };
  return { ...base, retryable: false, code: 'llm_bad_request' };
}

function classify(e: unknown, timedOut: boolean): Classified {
  if (timedOut) return { retryable: true, code: 'llm_unavailable', status: null, message: 'request timed out', retryAfterMs: null };
  if (e instanceof APIConnectionError) {
    const cause = (e as { cause?: { message?: string; cause?: { code?: string; message?: string } } }).cause;
    const detail = cause?.cause?.code ?? cause?.cause?.message ?? cause?.message;
    return { retryable: true, code: 'llm_unavailable', status: null, message: `connection failed${detail ? ` (${detail})` : ''}`, retryAfterMs: null };
  }
  if (e instanceof APIError && typeof e.status === 'number') {
    return classifyStatus(e.status, providerMessage(e), parseRetryAfter(e.headers));
  }
  // A body that is not JSON, a reset while reading the body, and the like.
  return { retryable: true, code: 'llm_unavailable', status: null, message: (e as Error)?.message ?? String(e), retryAfterMs: null };
}

/** OpenRouter can answer 200 with an error object instead of choices. */
function classifyBodyError(data: Record<string, unknown>): Classified | null {
  const err = data.error as { code?: unknown; message?: unknown } | undefined;
  const choices = data.choices as Array<{ error?: { code?: unknown; message?: unknown } }> | undefined;
  const inner = err ?? (Array.isArray(choices) ? choices[0]?.error : undefined);
  if (inner) {
    const status = typeof inner.code === 'number' ? inner.code : 502;
    return classifyStatus(status, typeof inner.message === 'string' ? inner.message : 'provider error', null);
  }
  if (!Array.isArray(choices) || choices.length === 0) {
    return { retryable: true, code: 'llm_unavailable', status: 200, message: 'response without choices', retryAfterMs: null };
  }
  return null;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(abortError(signal!)); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new AppError('cancelled', 'The LLM call was cancelled.');
}

export interface LlmClientOptions {
  model: ResolvedModel;
  config: Config;
  logger: Logger;
  /** For tests of the jitter; Math.random otherwise. */
  random?: () => number;
}

export function createLlmClient(opts: LlmClientOptions): LlmClient {
  const { model, config } = opts;
  const log = opts.logger;
  const random = opts.random ?? Math.random;
  const key = providerApiKey(model, config);
  const secrets = [...secretValues(config), ...(key ? [key] : [])];
  const redact = (s: string) => redactSecrets(s, secrets);
  const timeoutMs = config.llmRequestTimeout * 1000;

  const headers: Record<string, string> = {};
  if (model.provider === 'openrouter') {
    if (config.openrouterReferer) headers['HTTP-Referer'] = config.openrouterReferer;
    if (config.openrouterTitle) headers['X-Title'] = config.openrouterTitle;
  }
  const client = new OpenAI({
    // Compatible servers often take no key; the SDK insists on one, and must never fall back to OPENAI_API_KEY from the environment.
    apiKey: key ?? 'no-key',
    baseURL: model.baseUrl,
    organization: null,
    project: null,
    maxRetries: 0,
    timeout: timeoutMs + 5_000, // our own per-attempt timer below fires first and also covers reading the body
    defaultHeaders: headers,
    logLevel: 'off',
  });

  function backoffMs(retryIndex: number): number {
    const exp = Math.min(MAX_BACKOFF_MS, config.llmRetryBaseDelay * 1000 * 2 ** retryIndex);
    return Math.round(exp * (0.5 + random() * 0.5));
  }

  async function attemptOnce(body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<{ data: Record<string, unknown>; ms: number }> {
    const ctrl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; ctrl.abort(); }, timeoutMs);
    const onOuterAbort = () => ctrl.abort();
    signal?.addEventListener('abort', onOuterAbort, { once: true });
    const started = performance.now();
    try {
      const data = (await client.chat.completions.create(body as never, { signal: ctrl.signal, maxRetries: 0 })) as unknown as Record<string, unknown>;
      return { data, ms: Math.round(performance.now() - started) };
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      if (e instanceof APIUserAbortError && !timedOut) throw e;
      throw Object.assign(new Error('attempt failed'), { classified: classify(e, timedOut) });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onOuterAbort);
    }
  }

  return {
    provider: model.provider,
    async complete(req, callOpts = {}) {
      const signal = callOpts.signal;
      const body: Record<string, unknown> = { model: req.model, messages: req.messages };
      if (req.params.temperature !== undefined) body.temperature = req.params.temperature;
      if (req.params.max_tokens !== undefined) body.max_tokens = req.params.max_tokens;
      if (req.params.top_p !== undefined) body.top_p = req.params.top_p;

      const started = performance.now();
      const retries: RetryRecord[] = [];
      const maxAttempts = 1 + config.llmMaxRetries;
      for (let attempt = 1; ; attempt++) {
        let failure: Classified;
        try {
          const { data, ms } = await attemptOnce(body, signal);
          const bodyError = classifyBodyError(data);
          if (!bodyError) {
            const choice = (data.choices as Array<{ message?: { content?: unknown }; finish_reason?: unknown }>)[0];
            const content = choice?.message?.content;
            return {
              content: typeof content === 'string' ? content : null,
              finishReason: typeof choice?.finish_reason === 'string' ? choice.finish_reason : null,
              generationId: typeof data.id === 'string' ? data.id : null,
              servedModel: typeof data.model === 'string' ? data.model : null,
              usage: data.usage ?? null,
              latencyMs: ms,
              totalMs: Math.round(performance.now() - started),
              attempts: attempt,
              retries,
            };
          }
          failure = bodyError;
        } catch (e) {
          const c = (e as { classified?: Classified }).classified;
          if (!c) throw e;
          failure = c;
        }
        const message = redact(failure.message);
        const details = { provider: model.provider, model: req.model, status: failure.status, attempts: attempt, retries };
        if (!failure.retryable) {
          throw new AppError(failure.code, `LLM provider ${model.provider} refused the request for ${req.model}${failure.status ? ` (HTTP ${failure.status})` : ''}: ${message}`, details);
        }
        const tooLong = failure.retryAfterMs !== null && failure.retryAfterMs > MAX_RETRY_AFTER_MS;
        if (attempt >= maxAttempts || tooLong) {
          const why = tooLong ? `it asked to retry after ${Math.round(failure.retryAfterMs! / 1000)} s` : `${attempt} attempt(s)`;
          throw new AppError('llm_unavailable', `LLM provider ${model.provider} kept failing for ${req.model} (${why}); last error${failure.status ? ` HTTP ${failure.status}` : ''}: ${message}`, details);
        }
        const wait = failure.retryAfterMs !== null
          ? Math.round(failure.retryAfterMs + random() * Math.min(1000, config.llmRetryBaseDelay * 1000) * 0.25)
          : backoffMs(attempt - 1);
        retries.push({ attempt, reason: message, status: failure.status, wait_ms: wait });
        log.warn({ provider: model.provider, model: req.model, attempt, status: failure.status, wait_ms: wait, reason: message }, 'LLM call failed; retrying');
        await sleep(wait, signal);
      }
    },
  };
}
