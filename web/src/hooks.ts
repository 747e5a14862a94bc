/** Data loading that stays fresh: fetch on mount and input change, refetch on live events. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { subscribe, type LiveEvent } from './live';

export interface Resource<T> {
  data: T | undefined;
  error: Error | null;
  loading: boolean;
  /** Fetch again now (after a user action). */
  reload: () => void;
}

export interface ResourceOptions {
  /** SSE stream whose events may change what this resource shows. */
  stream?: string | null;
  /** Which events of the stream matter (a `resync` always does). */
  when?: (e: LiveEvent) => boolean;
  /** Events arrive in bursts (a step writes several rows); one refetch per burst. */
  debounceMs?: number;
  /** For values that change without an event (heartbeat ages). */
  pollMs?: number;
}

/**
 * Keeps the last good data while refetching, so live pages do not flash. At most one request is
 * in flight; an event arriving meanwhile schedules exactly one more. Results of a request made
 * for older inputs are dropped.
 */
export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], opts: ResourceOptions = {}): Resource<T> {
  const [state, setState] = useState<{ data: T | undefined; error: Error | null; loading: boolean }>({ data: undefined, error: null, loading: true });
  const loadRef = useRef(load);
  loadRef.current = load;
  const whenRef = useRef(opts.when);
  whenRef.current = opts.when;
  const debounceMs = opts.debounceMs ?? 300;
  const generation = useRef(0);
  const inflight = useRef<AbortController | null>(null);
  const again = useRef(false);
  const timer = useRef<number | undefined>(undefined);

  const fetchNow = useCallback(() => {
    if (inflight.current) { again.current = true; return; }
    const gen = generation.current;
    const ac = new AbortController();
    inflight.current = ac;
    setState((s) => (s.loading ? s : { ...s, loading: true }));
    loadRef.current(ac.signal).then(
      (data) => { if (gen === generation.current) setState({ data, error: null, loading: false }); },
      (error: Error) => {
        if (gen === generation.current && !ac.signal.aborted) setState((s) => ({ data: s.data, error, loading: false }));
      },
    ).finally(() => {
      if (inflight.current === ac) inflight.current = null;
      if (again.current && gen === generation.current) {
        again.current = false;
        schedule();
      }
    });
  }, []);

  const schedule = useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = window.setTimeout(() => { timer.current = undefined; fetchNow(); }, debounceMs);
  }, [fetchNow, debounceMs]);

  useEffect(() => {
    generation.current++;
    inflight.current?.abort();
    inflight.current = null;
    again.current = false;
    fetchNow();
    return () => {
      generation.current++;
      inflight.current?.abort();
      inflight.current = null;
      if (timer.current !== undefined) { clearTimeout(timer.current); timer.current = undefined; }
    };
  }, deps);

  useEffect(() => {
    if (!opts.stream) return undefined;
    return subscribe(opts.stream, (e) => {
      if (e.type === 'resync' || !whenRef.current || whenRef.current(e)) schedule();
    });
  }, [opts.stream, schedule]);

  useEffect(() => {
    if (!opts.pollMs) return undefined;
    const id = window.setInterval(() => { if (!document.hidden) schedule(); }, opts.pollMs);
    return () => clearInterval(id);
  }, [opts.pollMs, schedule]);

  return { ...state, reload: fetchNow };
}

/** The current time, re-rendering every `ms` (elapsed times, heartbeat ages). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

/** `value`, once it has stopped changing for `ms` (search boxes). */
export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const id = window.setTimeout(() => setV(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return v;
}

export function useDocumentTitle(title: string): void {
  useEffect(() => { document.title = `${title} · AIOpsLab Executor`; }, [title]);
}
