/**
 * The REST client behind the CLI's client commands: base URL and bearer token from flags or the
 * environment, the service's error envelope turned into an error that carries its code, message
 * and field details, and an unreachable server reported as such instead of "fetch failed".
 */

/** Exit codes of the client commands (documented in docs/cli.md and in each command's --help). */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  notCompleted: 3,
  notFound: 4,
  conflict: 5,
  unreachable: 6,
  unauthorized: 7,
  interrupted: 130,
} as const;

export const DEFAULT_API_URL = 'http://127.0.0.1:8000';

/** A mistake in the command line itself (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface FieldDetail { field: string; reason: string; closest?: string[] }

/** An answer of the API with status >= 400, in the terms of its error envelope. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
    readonly requestId: string | null,
  ) {
    super(message);
  }

  /** `details` when it is the `[{field, reason}]` list validation errors carry. */
  get fields(): FieldDetail[] {
    const list = Array.isArray(this.details) ? this.details : [];
    return list.filter((d): d is FieldDetail => !!d && typeof d === 'object' && typeof (d as FieldDetail).field === 'string');
  }
}

/** The API could not be reached at all (refused, unknown host, timed out). */
export class ApiUnreachableError extends Error {
  override readonly name = 'ApiUnreachableError';
  constructor(readonly baseUrl: string, readonly reason: string) {
    super(`cannot reach the API at ${baseUrl} (${reason}); is \`aiopslab-executor start\` running? Set --api-url or API_URL if it listens elsewhere.`);
  }
}

export interface ConnectionFlags { apiUrl?: string; token?: string }
export interface Connection { baseUrl: string; token: string | null }

/** Flags win over the environment; API_TOKEN may be a comma list (the server accepts any of them). */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Connection {
  const raw = (flags.apiUrl ?? env.API_URL ?? '').trim() || DEFAULT_API_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--api-url / API_URL is not a URL: "${raw}" (expected e.g. ${DEFAULT_API_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--api-url / API_URL must be http:// or https://, got "${raw}"`);
  const token = (flags.token ?? env.API_TOKEN ?? '').split(',').map((s) => s.trim()).find(Boolean) ?? null;
  // A reverse proxy may serve the API under a path prefix, so only the trailing slash goes.
  return { baseUrl: url.toString().replace(/\/+$/, ''), token };
}

export type Query = Record<string, string | number | boolean | undefined | null>;

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT',
]);

/** The code of a network failure inside fetch's `TypeError: fetch failed` (undici nests it in `cause`). */
export function networkErrorCode(e: unknown): string | null {
  for (let cur: unknown = e, depth = 0; cur && typeof cur === 'object' && depth < 5; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    const inner = (cur as { errors?: unknown[] }).errors;
    if (Array.isArray(inner)) for (const x of inner) { const c = networkErrorCode(x); if (c) return c; }
    cur = (cur as { cause?: unknown }).cause;
  }
  return null;
}

export function isAbortError(e: unknown): boolean {
  return !!e && typeof e === 'object' && ((e as Error).name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}

/** Turns a non-2xx response into an ApiError, keeping non-envelope answers (proxies) readable. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let body: unknown = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON: a proxy or another server */ }
  const env = (body as { error?: { code?: unknown; message?: unknown; details?: unknown; request_id?: unknown }; detail?: unknown } | null);
  const requestId = res.headers.get('x-request-id');
  if (env?.error && typeof env.error.code === 'string') {
    return new ApiError(res.status, env.error.code, String(env.error.message ?? ''), env.error.details ?? null,
      typeof env.error.request_id === 'string' ? env.error.request_id : requestId);
  }
  const message = typeof env?.detail === 'string' ? env.detail : text.trim().slice(0, 300) || res.statusText || 'no body';
  return new ApiError(res.status, `http_${res.status}`, message, null, requestId);
}

export class ApiClient {
  constructor(readonly connection: Connection, private readonly fetchImpl: typeof fetch = fetch) {}

  get baseUrl(): string { return this.connection.baseUrl; }

  url(pathname: string, query: Query = {}): string {
    const u = new URL(this.baseUrl + pathname);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** Raw request: resolves with any 2xx response, throws ApiError / ApiUnreachableError otherwise. */
  async request(method: string, pathname: string, opts: { query?: Query; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (this.connection.token) headers.authorization = `Bearer ${this.connection.token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(pathname, opts.query), {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: opts.signal,
      });
    } catch (e) {
      if (isAbortError(e)) throw e;
      throw new ApiUnreachableError(this.baseUrl, networkErrorCode(e) ?? ((e as Error).cause as Error | undefined)?.message ?? (e as Error).message);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  async json<T>(method: string, pathname: string, opts: { query?: Query; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.request(method, pathname, opts);
    const text = await res.text();
    if (!text) return null as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, 'invalid_response', `${method} ${pathname} answered non-JSON: ${text.slice(0, 200)}`, null, res.headers.get('x-request-id'));
    }
  }

  get<T>(pathname: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.json<T>('GET', pathname, { query, signal });
  }

  post<T>(pathname: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    return this.json<T>('POST', pathname, { body, headers });
  }
}

/** The exit code a failure maps to (see EXIT). */
export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return EXIT.usage;
  if (e instanceof ApiUnreachableError) return EXIT.unreachable;
  if (e instanceof ApiError) {
    if (e.status === 404) return EXIT.notFound;
    if (e.status === 409) return EXIT.conflict;
    if (e.status === 401 || e.status === 403) return EXIT.unauthorized;
    // The request itself was wrong: bad field, unknown problem or model, malformed JSON.
    if (e.status === 400 && e.code !== 'workers_disabled') return EXIT.usage;
    if (e.status === 422) return EXIT.usage;
    return EXIT.error;
  }
  return EXIT.error;
}

/** `error: <code>: <message>` plus one line per field detail; never a stack trace. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) {
    const lines = [`error: ${e.code}: ${e.message}`];
    for (const f of e.fields) {
      lines.push(`  - ${f.field}: ${f.reason}${f.closest?.length ? ` (did you mean: ${f.closest.join(', ')}?)` : ''}`);
    }
    if (!e.fields.length && e.details && typeof e.details === 'object' && !Array.isArray(e.details)) {
      const closest = (e.details as { closest?: unknown }).closest;
      if (Array.isArray(closest) && closest.length) lines.push(`  did you mean: ${closest.join(', ')}?`);
    }
    if (e.status === 401) lines.push('  hint: pass --token or set API_TOKEN to one of the server\'s API tokens');
    if (e.status >= 500 && e.requestId) lines.push(`  request id: ${e.requestId} (find it in the server logs)`);
    return lines.join('\n');
  }
  if (e instanceof ApiUnreachableError || e instanceof UsageError) return `error: ${e.message}`;
  return `error: ${(e as Error)?.message ?? String(e)}`;
}
