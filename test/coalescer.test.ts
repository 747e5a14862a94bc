/** Calls arriving together run together (src/store/coalescer.ts): batching, limits and keys. */
import { describe, expect, it } from 'vitest';
import { Coalescer, type CoalescerOptions } from '../src/store/coalescer.js';

interface Item { id: string; group?: string | null; keys?: string[] }

/** A coalescer whose batches finish only when the test releases them. */
function harness(o: Omit<CoalescerOptions<Item>, 'groupKey' | 'exclusiveKeys'>) {
  const batches: string[][] = [];
  const release: Array<() => void> = [];
  let running = 0;
  let maxRunning = 0;
  const c = new Coalescer<Item>(async (batch) => {
    batches.push(batch.map((i) => i.id));
    maxRunning = Math.max(maxRunning, ++running);
    await new Promise<void>((r) => release.push(r));
    running--;
  }, { ...o, groupKey: (i) => i.group ?? null, exclusiveKeys: (i) => i.keys ?? [] });
  const settle = () => new Promise((r) => setImmediate(r));
  return {
    c, batches, maxRunning: () => maxRunning,
    /** Lets the oldest running batch finish, and whatever that starts begin. */
    async next() { release.shift()?.(); await settle(); await settle(); },
  };
}

describe('coalescer', () => {
  it('runs a lone call at once, and the calls that arrive meanwhile together, in arrival order', async () => {
    const h = harness({ maxInFlight: 1, maxBatch: 10 });
    h.c.add({ id: 'a' });
    expect(h.batches).toEqual([['a']]);
    for (const id of ['b', 'c', 'd']) h.c.add({ id });
    expect(h.batches).toEqual([['a']]);
    await h.next();
    expect(h.batches).toEqual([['a'], ['b', 'c', 'd']]);
    await h.next();
    expect(h.maxRunning()).toBe(1);
  });

  it('keeps to its batch size and its number of batches in flight', async () => {
    const h = harness({ maxInFlight: 2, maxBatch: 2 });
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) h.c.add({ id });
    expect(h.batches).toEqual([['a'], ['b']]);
    await h.next();
    expect(h.batches).toEqual([['a'], ['b'], ['c', 'd']]);
    await h.next();
    await h.next();
    expect(h.batches).toEqual([['a'], ['b'], ['c', 'd'], ['e', 'f'], ['g']]);
    expect(h.maxRunning()).toBe(2);
  });

  it('never mixes groups; calls without a group join any batch', async () => {
    const h = harness({ maxInFlight: 1, maxBatch: 10 });
    h.c.add({ id: 'first' });
    h.c.add({ id: 'x1', group: 'x' });
    h.c.add({ id: 'y1', group: 'y' });
    h.c.add({ id: 'any' });
    h.c.add({ id: 'x2', group: 'x' });
    await h.next();
    expect(h.batches[1]).toEqual(['x1', 'any', 'x2']);
    await h.next();
    expect(h.batches[2]).toEqual(['y1']);
  });

  it('never puts calls sharing a key in one batch, nor in flight at the same time', async () => {
    const h = harness({ maxInFlight: 2, maxBatch: 10 });
    h.c.add({ id: 'w1-finish', keys: ['w1', 't1'] });
    h.c.add({ id: 'w1-claim', keys: ['w1'] });
    h.c.add({ id: 'w2-claim', keys: ['w2'] });
    h.c.add({ id: 't1-again', keys: ['w3', 't1'] });
    // w1-claim and t1-again wait for w1-finish, although a second slot is free.
    expect(h.batches).toEqual([['w1-finish'], ['w2-claim']]);
    await h.next();
    expect(h.batches[2]).toEqual(['w1-claim', 't1-again']);
    await h.next();
    await h.next();
    expect(h.batches).toHaveLength(3);
  });

  it('keeps calls sharing a key in order when the earlier one waits for its group', async () => {
    const h = harness({ maxInFlight: 1, maxBatch: 10 });
    h.c.add({ id: 'first', group: 'x' });
    h.c.add({ id: 'x1', group: 'x' });
    h.c.add({ id: 'y1', group: 'y', keys: ['k'] });
    h.c.add({ id: 'x2', group: 'x', keys: ['k'] });
    await h.next();
    // x2 would fit the x batch, but y1 holds key k before it.
    expect(h.batches[1]).toEqual(['x1']);
    await h.next();
    expect(h.batches[2]).toEqual(['y1']);
    await h.next();
    expect(h.batches[3]).toEqual(['x2']);
  });
});
