/**
 * Server-sent events over fetch, for `submit --wait` and `logs --follow`. The server's events
 * carry ids, not rows, so callers refetch what they show; this module only delivers the events,
 * reconnects when the stream drops, and tells the caller when to re-read everything (each
 * (re)connect), since events sent while disconnected are gone.
 */
import { ApiError, isAbortError, type ApiClient, type Query } from './apiClient.js';

export interface SseEvent { event: string; data: string; id: string | null }

/** Parses an event-stream body (WHATWG rules: LF/CR/CRLF lines, `:` comments, multi-line data). */
export async function* parseEventStream(body: AsyncIterable<Uint8Array>, onRetry?: (ms: number) => void): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | null = null;
  const line = function* (l: string): Generator<SseEvent> {
    if (l === '') {
      if (data.length) yield { event: event || 'message', data: data.join('\n'), id };
      event = '';
      data = [];
      return;
    }
    if (l.startsWith(':')) return;
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry?.(Number(value));
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    // A CR at the very end may be the first half of CRLF: keep it until more arrives.
    let m: RegExpExecArray | null;
    const re = /\r\n|\n|\r(?!$)/g;
    let start = 0;
    while ((m = re.exec(buffer))) {
      yield* line(buffer.slice(start, m.index));
      start = m.index + m[0].length;
    }
    buffer = buffer.slice(start);
  }
  buffer += decoder.decode();
  if (buffer) yield* line(buffer.replace(/\r$/, ''));
}

export function parseData<T = Record<string, unknown>>(e: SseEvent): T | null {
  try { return JSON.parse(e.data) as T; } catch { return null; }
}

export interface StreamHandlers {
  /** The stream is (again) connected: re-read state, events may have been missed. */
  onOpen(): void;
  onEvent(e: SseEvent): void;
  /** The stream dropped; it is reopened after a delay. */
  onDrop?(err: unknown, attempt: number): void;
}

/**
 * Keeps one event stream open until `signal` aborts, reconnecting with backoff (the server's
 * `retry:` hint, doubling up to 15 s). API errors other than a dropped connection end it: a 404
 * or 401 will not heal by retrying.
 */
export async function followEventStream(client: ApiClient, pathname: string, query: Query, handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
  let retryMs = 2000;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const res = await client.request('GET', pathname, { query, signal, headers: { accept: 'text/event-stream' } });
      if (!res.body) throw new Error('event stream has no body');
      failures = 0;
      handlers.onOpen();
      for await (const e of parseEventStream(res.body as unknown as AsyncIterable<Uint8Array>, (ms) => { retryMs = ms; })) handlers.onEvent(e);
      if (signal.aborted) return;
      handlers.onDrop?.(new Error('the server closed the event stream'), ++failures);
    } catch (e) {
      if (signal.aborted || isAbortError(e)) return;
      if (e instanceof ApiError && e.status < 500) throw e;
      handlers.onDrop?.(e, ++failures);
    }
    await sleep(Math.min(15_000, retryMs * 2 ** Math.max(0, failures - 1)), signal);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `work` whenever triggered, never twice at once; triggers that arrive during a run cause
 * exactly one more run. A burst of events (a hundred log lines) thus costs one or two refetches.
 */
export function coalescingRunner(work: () => Promise<void>, onError: (e: unknown) => void): { trigger(): void; settled(): Promise<void> } {
  let running: Promise<void> | null = null;
  let again = false;
  const run = async () => {
    do {
      again = false;
      try { await work(); } catch (e) { onError(e); }
    } while (again);
    running = null;
  };
  return {
    trigger() {
      if (running) { again = true; return; }
      running = run();
    },
    async settled() { while (running) await running; },
  };
}
