/**
 * Calls to the service's own API (same origin). Errors are turned into ApiError from the one
 * error envelope `{error:{code,message,details,request_id}, detail}`, so forms can place
 * `details[].field` problems next to their inputs.
 */
import type { FieldIssue } from './types';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly details: unknown,
    readonly requestId: string | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The `[{field, reason, closest?}]` details, when the server gave them in that form. */
  get fieldIssues(): FieldIssue[] {
    if (!Array.isArray(this.details)) return [];
    return this.details.filter((d): d is FieldIssue => !!d && typeof d === 'object' && typeof (d as FieldIssue).field === 'string');
  }
}

type AuthListener = (required: boolean) => void;
const authListeners = new Set<AuthListener>();

/** The app shows a token prompt while the API answers 401 (API_TOKEN set on the server). */
export function onAuthRequired(fn: AuthListener): () => void {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

/** The server accepts the token from this cookie too, which EventSource (no headers) needs. */
export function saveToken(token: string): void {
  document.cookie = `aiopslab_token=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
  for (const fn of authListeners) fn(false);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export async function api<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
      credentials: 'same-origin',
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError('The server cannot be reached.', 0, 'network_error', null, null);
  }
  const text = await res.text();
  let json: unknown = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
  if (!res.ok) {
    if (res.status === 401) for (const fn of authListeners) fn(true);
    const env = (json as { error?: { code?: string; message?: string; details?: unknown; request_id?: string }; detail?: unknown } | null);
    const message = env?.error?.message ?? (typeof env?.detail === 'string' ? env.detail : `${res.status} ${res.statusText}`);
    throw new ApiError(message, res.status, env?.error?.code ?? `http_${res.status}`, env?.error?.details ?? null, env?.error?.request_id ?? res.headers.get('x-request-id'));
  }
  if (json === null && text) throw new ApiError('The server answered with something that is not JSON.', res.status, 'bad_response', null, res.headers.get('x-request-id'));
  return json as T;
}

/** Query string from the defined, non-empty values. */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
