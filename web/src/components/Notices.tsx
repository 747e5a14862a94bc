/** Loading, empty and error states, shared so every page reports them the same way. */
import type { ComponentChildren } from 'preact';
import { ApiError } from '../api';

export function ErrorNotice({ error, what }: { error: Error | null | undefined; what?: string }) {
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  return (
    <div class="notice notice-error" role="alert">
      <strong>{what ? `Could not load ${what}` : 'Something went wrong'}:</strong> {error.message}
      {api && api.code && !api.code.startsWith('http_') && <> <code>{api.code}</code></>}
      {api?.requestId && <span class="muted"> (request {api.requestId})</span>}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return <p class="muted" role="status" aria-live="polite">{label}</p>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty muted">{children}</p>;
}
