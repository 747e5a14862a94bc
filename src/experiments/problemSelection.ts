/**
 * Expands an experiment's problem selectors (ids, id globs, applications, task types) against the
 * problem catalog into the list of problem ids it runs. Every selector must match something: a
 * typo in a pattern should fail the request, not silently shrink the benchmark.
 */
import { closestMatches } from '../catalog/closestMatches.js';
import { builtinProblems, listProblems } from '../catalog/problemCatalog.js';
import { AppError } from '../errors.js';
import type { Queryable } from '../store/pool.js';
import { TASK_TYPES, type ProblemSelectors, type TaskType } from './experimentRecord.js';

/** The catalog fields selection needs (structurally the catalog's ProblemEntry). */
export interface SelectableProblem {
  id: string;
  application: string;
  task_type: string;
}

/** The catalog as stored at start; the built-in ids when it was never loaded (e.g. an API-only test server). */
export async function loadSelectableProblems(db: Queryable): Promise<SelectableProblem[]> {
  const stored = await listProblems(db);
  return stored.length ? stored : builtinProblems();
}

export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

/** Trims, drops empties and duplicates, so `a,b` and `b, a ,a` compare equal as sets. */
export function normalizeSelectors(s: Partial<ProblemSelectors>): ProblemSelectors {
  const clean = (xs: readonly string[] | undefined) => unique((xs ?? []).map((x) => x.trim()).filter(Boolean));
  return {
    problem_ids: clean(s.problem_ids),
    patterns: clean(s.patterns),
    applications: clean(s.applications),
    task_types: clean(s.task_types) as TaskType[],
  };
}

/**
 * Union of the given ids and the ids matching a pattern (all problems when neither is given),
 * then narrowed to the given applications and task types. Catalog order is kept.
 */
export function expandProblemSelectors(selectors: ProblemSelectors, catalog: readonly SelectableProblem[]): string[] {
  const s = selectors;
  if (!s.problem_ids.length && !s.patterns.length && !s.applications.length && !s.task_types.length) {
    throw new AppError('validation_failed', 'Select problems with problem_ids, patterns, applications or task_types', [
      { field: 'problems', reason: 'at least one selector is required' },
    ]);
  }
  const badTypes = s.task_types.filter((t) => !(TASK_TYPES as readonly string[]).includes(t));
  if (badTypes.length) {
    throw new AppError('validation_failed', `Unknown task type(s): ${badTypes.join(', ')}`, badTypes.map((t) => ({ field: 'problems.task_types', reason: `"${t}" must be one of: ${TASK_TYPES.join(', ')}` })));
  }
  const ids = catalog.map((p) => p.id);
  const known = new Set(ids);
  if (catalog.length === 0 && (s.patterns.length || s.applications.length || s.task_types.length)) {
    throw new AppError('validation_failed', 'The problem catalog is empty, so patterns, applications and task types cannot be expanded; give problem_ids', [
      { field: 'problems', reason: 'catalog unavailable' },
    ]);
  }

  const issues: Array<{ field: string; reason: string; closest?: string[] }> = [];
  if (catalog.length) {
    for (const id of s.problem_ids) {
      if (!known.has(id)) issues.push({ field: 'problems.problem_ids', reason: `"${id}" is not in the AIOpsLab catalog`, closest: closestMatches(id, ids) });
    }
  }
  const regexps = s.patterns.map((p) => ({ p, re: globToRegExp(p) }));
  for (const { p, re } of regexps) {
    if (!ids.some((id) => re.test(id))) issues.push({ field: 'problems.patterns', reason: `"${p}" matches no problem id` });
  }
  const apps = new Set(catalog.map((p) => p.application.toLowerCase()));
  for (const a of s.applications) {
    if (!apps.has(a.toLowerCase())) issues.push({ field: 'problems.applications', reason: `"${a}" is not an application of the catalog`, closest: closestMatches(a, [...new Set(catalog.map((p) => p.application))]) });
  }
  if (issues.length) throw new AppError('unknown_problem', issues.map((i) => i.reason).join('; '), issues);

  const wantedApps = new Set(s.applications.map((a) => a.toLowerCase()));
  const wantedTypes = new Set<string>(s.task_types);
  const narrow = (p: SelectableProblem) => (!wantedApps.size || wantedApps.has(p.application.toLowerCase())) && (!wantedTypes.size || wantedTypes.has(p.task_type));
  const explicit = new Set(s.problem_ids);
  const byIdOrPattern = !s.problem_ids.length && !s.patterns.length
    ? () => true
    : (p: SelectableProblem) => explicit.has(p.id) || regexps.some(({ re }) => re.test(p.id));
  const selected = catalog.filter((p) => byIdOrPattern(p) && narrow(p)).map((p) => p.id);
  // Without a catalog only explicit ids are possible; they are taken as given.
  if (!catalog.length) selected.push(...s.problem_ids);
  if (!selected.length) {
    throw new AppError('unknown_problem', 'The selectors match problems individually but no problem satisfies all of them (ids/patterns, applications and task types are intersected)', [
      { field: 'problems', reason: 'empty selection' },
    ]);
  }
  return selected;
}
