/**
 * Events the queue's claim and finish statements announce after their commit instead of from
 * triggers.
 *
 * A transaction that calls pg_notify holds a cluster-wide lock from just before its commit until
 * its commit record is flushed to disk, so notifying transactions commit one at a time, each
 * waiting for the previous one's WAL flush (bench/RESULTS.md: no-op tasks drained at a fraction
 * of graphile-worker's rate, workers' claims and finishes queued behind each other). A statement
 * that starts with `defer_notify()` (migrations/0005) keeps the triggers silent for that statement
 * only and returns the events' payloads; they are sent here in a statement that writes no WAL, so
 * the lock is held for microseconds. Every other writer is still announced by the triggers, with
 * the same payloads (the same SQL functions build them).
 */
import pg from 'pg';
import type { Channel } from './eventHub.js';
import type { Queryable } from './pool.js';

export type DeferredEvent = [channel: Exclude<Channel, 'reconnected'>, payload: string | null | undefined];

const SEND = 'SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS e(c, p, n) ORDER BY n';

/**
 * Best effort, as NOTIFY itself is for a listener that is away: the change is committed whatever
 * happens here, so a failure is swallowed rather than reported as a failed claim or finish.
 * Listeners recover on their own (workers poll, live views re-read after a reconnect).
 */
async function send(db: Queryable, events: Array<[string, string]>): Promise<void> {
  try {
    await db.query(SEND, [events.map((e) => e[0]), events.map((e) => e[1])]);
  } catch {
    // See above: the state change stands; the announcement is lost like any missed NOTIFY.
  }
}

interface Outbox { events: Array<[string, string]>; done: Array<() => void>; sending: boolean }
const outboxes = new WeakMap<pg.Pool, Outbox>();

/**
 * What claim and finish call: on a pool, without waiting (the next step need not wait for the
 * announcement; the order is kept); on a client, the send is awaited, so the client is free again
 * when the caller gets it back.
 */
export async function announceAfterCommit(db: Queryable, events: DeferredEvent[]): Promise<void> {
  const sent = sendDeferredEvents(db, events);
  if (!(db instanceof pg.Pool)) await sent;
}

/**
 * On a pool, events are sent in the order they were handed over, those handed over while a send
 * is in flight together in the next one; the promise settles once they are sent (a caller that
 * does not need that may leave it). On a client (perhaps inside a transaction) they are sent on
 * it, so they go out with that transaction's commit.
 */
export function sendDeferredEvents(db: Queryable, events: DeferredEvent[]): Promise<void> {
  const sent = events.filter((e): e is [DeferredEvent[0], string] => typeof e[1] === 'string');
  if (sent.length === 0) return Promise.resolve();
  if (!(db instanceof pg.Pool)) return send(db, sent);
  let box = outboxes.get(db);
  if (!box) outboxes.set(db, (box = { events: [], done: [], sending: false }));
  const b = box;
  return new Promise<void>((resolve) => {
    b.events.push(...sent);
    b.done.push(resolve);
    if (b.sending) return;
    b.sending = true;
    void (async () => {
      while (b.events.length > 0) {
        const batch = b.events.splice(0);
        const waiting = b.done.splice(0);
        await send(db, batch);
        for (const w of waiting) w();
      }
      b.sending = false;
    })();
  });
}
