/** Problem selection against the catalog, the statistics of the tables, and their CSV form. */
import { describe, expect, it } from 'vitest';
import { builtinProblems } from '../src/catalog/problemCatalog.js';
import { AppError } from '../src/errors.js';
import { expandProblemSelectors, normalizeSelectors } from '../src/experiments/problemSelection.js';
import { median, mean, wilsonInterval } from '../src/experiments/resultStatistics.js';
import { toCsv } from '../src/experiments/resultsCsv.js';

const catalog = builtinProblems();
const select = (s: Parameters<typeof normalizeSelectors>[0]) => expandProblemSelectors(normalizeSelectors(s), catalog);

function rejection(fn: () => unknown): AppError {
  try { fn(); } catch (e) { if (e instanceof AppError) return e; throw e; }
  throw new Error('expected an AppError');
}

describe('expandProblemSelectors', () => {
  it('expands globs in catalog order and unions them with explicit ids', () => {
    expect(select({ patterns: ['k8s_target_port-misconfig-*'] })).toHaveLength(12);
    expect(select({ patterns: ['k8s_target_port-misconfig-mitigation-?'], problem_ids: ['noop_detection_hotel_reservation-1'] })).toEqual([
      'k8s_target_port-misconfig-mitigation-1', 'k8s_target_port-misconfig-mitigation-2', 'k8s_target_port-misconfig-mitigation-3',
      'noop_detection_hotel_reservation-1',
    ]);
    // `*-detection-*` does not match ids without a dash around the type (noop_detection_…, container_kill-detection).
    const detection = select({ patterns: ['*-detection-*'] });
    expect(detection).toContain('astronomy_shop_ad_service_failure-detection-1');
    expect(detection).not.toContain('container_kill-detection');
    expect(detection.every((id) => id.includes('-detection-'))).toBe(true);
  });

  it('narrows by application and task type, or selects by them alone', () => {
    expect(select({ patterns: ['*'], task_types: ['mitigation'], applications: ['hotel_reservation'] })).toEqual(
      catalog.filter((p) => p.task_type === 'mitigation' && p.application === 'hotel_reservation').map((p) => p.id));
    expect(select({ task_types: ['analysis'] })).toEqual(catalog.filter((p) => p.task_type === 'analysis').map((p) => p.id));
    expect(select({ applications: ['FLOWER'] })).toEqual(['flower_node_stop-detection', 'flower_model_misconfig-detection']);
  });

  it('refuses selectors that match nothing, naming each and suggesting close ids', () => {
    const e = rejection(() => select({ problem_ids: ['k8s_target_port-misconfig-detection-7'], patterns: ['nope-*'], applications: ['hotel'] }));
    expect(e.code).toBe('unknown_problem');
    expect((e.details as Array<{ field: string }>).map((d) => d.field)).toEqual(['problems.problem_ids', 'problems.patterns', 'problems.applications']);
    expect((e.details as Array<{ closest?: string[] }>)[0]!.closest).toContain('k8s_target_port-misconfig-detection-1');
    // Each matches, but nothing satisfies all of them.
    expect(rejection(() => select({ patterns: ['k8s_target_port-*'], applications: ['astronomy_shop'] })).code).toBe('unknown_problem');
    expect(rejection(() => select({})).code).toBe('validation_failed');
  });

  it('takes explicit ids as given when no catalog is known, and refuses what needs one', () => {
    expect(expandProblemSelectors(normalizeSelectors({ problem_ids: ['custom-detection-1'] }), [])).toEqual(['custom-detection-1']);
    expect(rejection(() => expandProblemSelectors(normalizeSelectors({ patterns: ['*'] }), [])).code).toBe('validation_failed');
  });
});

describe('statistics', () => {
  it('computes the Wilson score interval (95 %)', () => {
    const r4 = (x: { low: number; high: number } | null) => x && [Number(x.low.toFixed(4)), Number(x.high.toFixed(4))];
    expect(r4(wilsonInterval(2, 4))).toEqual([0.15, 0.85]);
    expect(r4(wilsonInterval(0, 10))).toEqual([0, 0.2775]);
    expect(r4(wilsonInterval(10, 10))).toEqual([0.7225, 1]);
    expect(r4(wilsonInterval(81, 263))).toEqual([0.2553, 0.3662]);
    expect(wilsonInterval(0, 0)).toBeNull();
  });

  it('takes means and medians of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
    expect(mean([1, 2, 6])).toBe(3);
  });
});

describe('toCsv', () => {
  it('quotes what needs quoting and leaves nulls empty', () => {
    expect(toCsv([{ a: 'x,y', b: 'say "hi"', c: null, d: 1.5 }], ['a', 'b', 'c', 'd'])).toBe('a,b,c,d\r\n"x,y","say ""hi""",,1.5\r\n');
    expect(toCsv([], ['only'])).toBe('only\r\n');
  });
});
