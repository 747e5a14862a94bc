/**
 * Live updates over server-sent events. Events carry ids, not rows, so a page subscribes with a
 * predicate and refetches what it shows. One EventSource per URL is shared by every subscriber
 * and closed when the last one leaves. After a reconnect (or a server `resync`) events may have
 * been missed, so subscribers get a synthetic `resync` and refetch everything.
 */
import { useEffect, useState } from 'preact/hooks';

export type LiveEventType = 'task' | 'worker' | 'log' | 'message' | 'resync';
export interface LiveEvent { type: LiveEventType; data: Record<string, unknown> }
export type LiveState = 'connecting' | 'open' | 'reconnecting';

const EVENT_TYPES: LiveEventType[] = ['task', 'worker', 'log', 'message', 'resync'];

/** The app-wide stream: everything but captured output lines, which only a task page wants. */
export const GLOBAL_STREAM = '/api/v1/events?types=task,worker,message';
export const taskStream = (taskId: string) => `/api/v1/tasks/${encodeURIComponent(taskId)}/events`;

interface Connection {
  source: EventSource;
  listeners: Set<(e: LiveEvent) => void>;
  state: LiveState;
  stateListeners: Set<(s: LiveState) => void>;
}

const connections = new Map<string, Connection>();

function connect(url: string): Connection {
  const existing = connections.get(url);
  if (existing) return existing;
  const source = new EventSource(url, { withCredentials: true });
  const conn: Connection = { source, listeners: new Set(), state: 'connecting', stateListeners: new Set() };
  const emit = (e: LiveEvent) => { for (const fn of [...conn.listeners]) fn(e); };
  const setState = (s: LiveState) => {
    conn.state = s;
    for (const fn of [...conn.stateListeners]) fn(s);
  };
  let hadError = false;
  source.addEventListener('open', () => {
    setState('open');
    if (hadError) emit({ type: 'resync', data: {} });
    hadError = false;
  });
  source.addEventListener('error', () => {
    hadError = true;
    setState('reconnecting');
  });
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (ev) => {
      let data: Record<string, unknown> = {};
      try { data = JSON.parse((ev as MessageEvent<string>).data) as Record<string, unknown>; } catch { /* keep {} */ }
      emit({ type, data });
    });
  }
  connections.set(url, conn);
  return conn;
}

function release(url: string, conn: Connection): void {
  if (conn.listeners.size === 0 && conn.stateListeners.size === 0) {
    conn.source.close();
    connections.delete(url);
  }
}

export function subscribe(url: string, fn: (e: LiveEvent) => void): () => void {
  const conn = connect(url);
  conn.listeners.add(fn);
  return () => { conn.listeners.delete(fn); release(url, conn); };
}

/** Calls `fn` for each event of the stream while the component is mounted. */
export function useLive(url: string | null, fn: (e: LiveEvent) => void): void {
  useEffect(() => (url ? subscribe(url, (e) => fn(e)) : undefined), [url, fn]);
}

export function useLiveState(url: string): LiveState {
  const [state, setState] = useState<LiveState>(() => connections.get(url)?.state ?? 'connecting');
  useEffect(() => {
    const conn = connect(url);
    conn.stateListeners.add(setState);
    setState(conn.state);
    return () => { conn.stateListeners.delete(setState); release(url, conn); };
  }, [url]);
  return state;
}
