/**
 * Calls that arrive together run together: while a statement is in flight, the calls that come
 * in wait and then go as one batch (one statement, one commit). A lone call goes at once, alone,
 * so nothing waits when the system is idle; under load, batches grow by themselves. Submissions,
 * claims and finishes use it (bench/RESULTS.md: much of the server's time for each of them went
 * per statement and per commit, not per row).
 */
export interface CoalescerOptions<T> {
  /** Batches in flight at once; more calls wait for the next free slot. */
  maxInFlight: number;
  maxBatch: number;
  /** Calls with different keys never share a batch (e.g. claims with different filters); null: any batch. */
  groupKey?: (item: T) => string | null;
  /**
   * Calls sharing a key are never in one batch, nor in flight at the same time (a worker's steps,
   * a task's finishes): the later one runs after the earlier one committed.
   */
  exclusiveKeys?: (item: T) => string[];
}

export class Coalescer<T> {
  private queue: T[] = [];
  private inFlight = 0;
  private readonly busy = new Set<string>();

  /**
   * `runBatch` settles every item of its batch (each item carries its own way to answer its
   * caller); a rejection of its own is a bug, and only releases the batch's slot.
   */
  constructor(private readonly runBatch: (batch: T[]) => Promise<void>, private readonly o: CoalescerOptions<T>) {}

  add(item: T): void {
    this.queue.push(item);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.o.maxInFlight) {
      const { batch, keys } = this.take();
      if (batch.length === 0) return;
      for (const k of keys) this.busy.add(k);
      this.inFlight++;
      void this.runBatch(batch).catch(() => {}).finally(() => {
        for (const k of keys) this.busy.delete(k);
        this.inFlight--;
        this.pump();
      });
    }
  }

  /**
   * The oldest waiting call that may run now, and the calls that may run with it, in arrival order,
   * with the batch's exclusive keys. A call left waiting holds its keys back from later calls, so
   * calls sharing a key keep their order.
   */
  private take(): { batch: T[]; keys: string[] } {
    const batch: T[] = [];
    const keys: string[] = [];
    const taken = new Set<string>();
    let group: string | null = null;
    const rest: T[] = [];
    for (const item of this.queue) {
      const own = this.o.exclusiveKeys?.(item) ?? [];
      const g = this.o.groupKey?.(item) ?? null;
      const fits = batch.length < this.o.maxBatch && (g === null || group === null || g === group)
        && own.every((k) => !this.busy.has(k) && !taken.has(k));
      for (const k of own) taken.add(k);
      if (!fits) {
        rest.push(item);
        continue;
      }
      group ??= g;
      keys.push(...own);
      batch.push(item);
    }
    this.queue = rest;
    return { batch, keys };
  }
}
