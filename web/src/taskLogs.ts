/**
 * A task's log rows kept current by fetching only what is new (`after_id`). The endpoint returns
 * the newest `limit` rows, so when more than that arrived between two fetches there is a gap:
 * the whole window is read again instead of showing a silently incomplete list.
 */
import { useRef } from 'preact/hooks';
import { api, query } from './api';
import { useResource } from './hooks';
import { taskStream } from './live';
import type { LogEntry, LogPage } from './types';

const LIMIT = 1000;

export interface TaskLogs {
  entries: LogEntry[];
  /** Rows the task has in all; more than entries.length when older ones are not shown. */
  total: number;
}

export function useTaskLogs(taskId: string) {
  const held = useRef<{ taskId: string; logs: TaskLogs } | null>(null);
  return useResource<TaskLogs>(async (signal) => {
    const prev = held.current?.taskId === taskId ? held.current.logs : null;
    const lastId = prev?.entries.at(-1)?.id;
    let next: TaskLogs;
    if (prev && lastId !== undefined) {
      const page = await api<LogPage>(`/api/v1/tasks/${taskId}/logs${query({ after_id: lastId, limit: LIMIT })}`, { signal });
      if (page.total > page.logs.length) {
        next = await full(taskId, signal);
      } else {
        const entries = prev.entries.concat(page.logs).slice(-LIMIT * 5);
        next = { entries, total: prev.total + page.logs.length };
      }
    } else {
      next = await full(taskId, signal);
    }
    held.current = { taskId, logs: next };
    return next;
  }, [taskId], { stream: taskStream(taskId), when: (e) => e.type === 'log', debounceMs: 400 });
}

async function full(taskId: string, signal: AbortSignal): Promise<TaskLogs> {
  const page = await api<LogPage>(`/api/v1/tasks/${taskId}/logs${query({ limit: LIMIT })}`, { signal });
  return { entries: page.logs, total: page.total };
}

export const isCapturedOutput = (l: LogEntry) => l.context?.source === 'aiopslab';
