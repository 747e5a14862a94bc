/**
 * AIOpsLab's own stdout/stderr as the worker captured it, line by line, in a terminal-like
 * view that follows new lines while the run is going (unless the reader scrolled up).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogEntry } from '../types';
import { Empty } from './Notices';

/** `truncated`: the task has older log rows than the ones loaded. */
export function CapturedOutput({ lines, truncated, active }: { lines: LogEntry[]; truncated: boolean; active: boolean }) {
  const [filter, setFilter] = useState('');
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLPreElement>(null);
  const needle = filter.trim().toLowerCase();
  const shown = needle ? lines.filter((l) => l.message.toLowerCase().includes(needle)) : lines;

  useEffect(() => {
    const el = box.current;
    if (el && follow && active) el.scrollTop = el.scrollHeight;
  }, [shown.length, follow, active]);

  if (!lines.length) return <Empty>{active ? 'No output from AIOpsLab yet.' : 'AIOpsLab printed nothing for this task.'}</Empty>;
  return (
    <div class="output">
      <div class="output-tools">
        <div class="field">
          <label for="output-filter">Show lines containing</label>
          <input id="output-filter" type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </div>
        {active && (
          <label class="check">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow new lines
          </label>
        )}
        <span class="muted small" aria-live="polite">
          {shown.length} of {lines.length} lines{truncated ? ' (older lines not loaded)' : ''}
        </span>
      </div>
      <pre ref={box} class="pre terminal" tabIndex={0} aria-label="AIOpsLab output">
        {shown.map((l) => (
          <span key={l.id} class={l.context?.stream === 'stderr' ? 'stderr' : undefined}>{l.message}{'\n'}</span>
        ))}
      </pre>
    </div>
  );
}
