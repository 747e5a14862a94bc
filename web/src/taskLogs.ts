/**
 * A task's log rows kept current by fetching only what is new (`after_id`). The endpoint returns
 * the newest `limit` rows, so when more than that arrived between two fetches there is a gap:
 * the whole window is read again instead of showing a silently incomplete list.
 *
 * Row ids come from a sequence, and writers running at once (timeline, captured output) can
 * commit a lower id after a higher one was already read; so each fetch re-reads the last OVERLAP
 * rows it holds, and a row that committed late is picked up instead of skipped for good.
 */
import { useRef } from 'preact/hooks';
import { api, query } from './api';
import { useResource } from './hooks';
import { taskStream } from './live';
import type { LogEntry, LogPage } from './types';

const LIMIT = 1000;
const OVERLAP = 50;

export interface TaskLogs {
  entries: LogEntry[];
  /** Rows the task has in all; more than entries.length when older ones are not shown. */
  total: number;
}

export function useTaskLogs(taskId: string) {
  const held = useRef<{ taskId: string; logs: TaskLogs } | null>(null);
  return useResource<TaskLogs>(async (signal) => {
    const prev = held.current?.taskId === taskId ? held.current.logs : null;
    const keep = prev && prev.entries.length > OVERLAP ? prev.entries.slice(0, -OVERLAP) : [];
    const anchor = keep.at(-1)?.id;
    let next: TaskLogs;
    if (prev && anchor !== undefined) {
      const page = await api<LogPage>(`/api/v1/tasks/${taskId}/logs${query({ after_id: anchor, limit: LIMIT })}`, { signal });
      if (page.total > page.logs.length) {
        next = await full(taskId, signal);
      } else {
        const entries = keep.concat(page.logs).slice(-LIMIT * 5);
        next = { entries, total: prev.total - (prev.entries.length - keep.length) + page.logs.length };
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
