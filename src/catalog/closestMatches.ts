/** "Did you mean" suggestions for unknown problem ids and model names. */

function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** Up to `limit` candidates ranked by edit distance, substring hits first; far misses dropped. */
export function closestMatches(input: string, candidates: Iterable<string>, limit = 5): string[] {
  const q = input.toLowerCase();
  const scored: Array<{ c: string; score: number }> = [];
  for (const c of candidates) {
    const lc = c.toLowerCase();
    const d = levenshtein(q, lc);
    const contains = lc.includes(q) || q.includes(lc) ? -Math.max(q.length, 4) : 0;
    const score = d + contains;
    if (d <= Math.max(3, Math.floor(Math.max(q.length, lc.length) * 0.4)) || contains < 0) scored.push({ c, score });
  }
  return scored.sort((x, y) => x.score - y.score || x.c.localeCompare(y.c)).slice(0, limit).map((s) => s.c);
}
