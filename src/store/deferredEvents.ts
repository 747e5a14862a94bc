/**
 * Events the queue's hot statements announce after their commit instead of from triggers.
 *
 * A transaction that calls pg_notify holds a cluster-wide lock from just before its commit until
 * its commit record is flushed to disk, so notifying transactions commit one at a time, each
 * waiting for the previous one's WAL flush (bench/RESULTS.md: 5,000 no-op tasks drained at a
 * fraction of graphile-worker's rate, POST /tasks capped by the disk's fsync rate). A statement
 * that starts with `defer_notify()` (migrations/0005) keeps the triggers silent for that statement
 * only and returns the events' payloads; `sendDeferredEvents` then sends them in a statement that
 * writes no WAL, so the lock is held for microseconds. Every other writer is still announced by
 * the triggers, with the same payloads (the same SQL functions build them).
 */
import type { Channel } from './eventHub.js';
import type { Queryable } from './pool.js';

export type DeferredEvent = [channel: Exclude<Channel, 'reconnected'>, payload: string | null | undefined];

/**
 * Best effort, as NOTIFY itself is for a listener that is away: the change is committed whatever
 * happens here, so a failure is swallowed rather than reported as a failed claim or finish.
 * Listeners recover on their own (workers poll, live views re-read after a reconnect).
 */
export async function sendDeferredEvents(db: Queryable, events: DeferredEvent[]): Promise<void> {
  const sent = events.filter((e): e is [DeferredEvent[0], string] => typeof e[1] === 'string');
  if (sent.length === 0) return;
  try {
    await db.query('SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS e(c, p, n) ORDER BY n',
      [sent.map((e) => e[0]), sent.map((e) => e[1])]);
  } catch {
    // See above: the state change stands; the announcement is lost like any missed NOTIFY.
  }
}
