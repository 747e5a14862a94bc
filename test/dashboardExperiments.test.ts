/**
 * The dashboard's experiment pages in a real browser (Debian chromium via playwright-core)
 * against the real API server and database. An experiment is created from the form (after the
 * server's validation errors are shown at their fields and fixed with their suggestions), its
 * tasks are driven through the real queue with scripted outcomes while the page follows the
 * progress live, it is resumed with retry_failed and cancelled from the page, and the results
 * tables must show exactly the numbers worked out by hand (the same scenario as
 * experimentsResults.test.ts). Screenshots of list, detail, results and form go to
 * test-artifacts/screenshots at laptop and phone width, light and dark.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../src/api/server.js';
import type { AppDeps } from '../src/api/appDeps.js';
import { createDashboardServer } from '../src/api/dashboard.js';
import { createSubmitValidator } from '../src/api/submitValidation.js';
import { builtinProblems, syncProblemCatalog } from '../src/catalog/problemCatalog.js';
import type { TaskRow } from '../src/queue/taskRecord.js';
import { EventHub } from '../src/store/eventHub.js';
import { testConfig } from './helpers/apiHarness.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { ensureDashboardBuilt, launchBrowser, openPage, screenshot, type DashboardPage } from './helpers/browser.js';
import { addWorker, claimNext, comboOf, finishWith, type Outcome } from './experimentsSupport.js';

let db: TestDatabase;
let events: EventHub;
let app: FastifyInstance;
let base: string;
let browser: Browser;

const D1 = 'k8s_target_port-misconfig-detection-1';
const D2 = 'k8s_target_port-misconfig-detection-2';
const L1 = 'k8s_target_port-misconfig-localization-1';
const A = 'openai/gpt-4o-mini';
const B = 'anthropic/claude-3-haiku';
const NAME = 'dash-results';

const ok = (success: boolean, ttx: number, steps: number, prompt: number, completion: number, cost: number): Outcome =>
  ({ status: 'completed', success, ttx, steps, prompt, completion, cost });

// As in experimentsResults.test.ts: beta's L1 repeat 2 fails first and succeeds when retried.
const FIRST: Record<string, Outcome> = {
  [`${D1}|${A}|1`]: ok(true, 10, 4, 1000, 100, 0.01),
  [`${D1}|${A}|2`]: ok(true, 20, 6, 2000, 200, 0.02),
  [`${D2}|${A}|1`]: ok(false, 30, 8, 3000, 300, 0.03),
  [`${D2}|${A}|2`]: { status: 'failed', prompt: 500, completion: 50, cost: 0.005 },
  [`${L1}|${A}|1`]: ok(true, 12.5, 3, 1500, 150, 0.015),
  [`${L1}|${A}|2`]: { status: 'timeout', prompt: 4000, completion: 400, cost: 0.04 },
  [`${D1}|${B}|1`]: ok(true, 5, 2, 800, 80, 0.002),
  [`${D1}|${B}|2`]: ok(true, 7, 3, 800, 80, 0.002),
  [`${D2}|${B}|1`]: ok(true, 9, 4, 800, 80, 0.002),
  [`${D2}|${B}|2`]: ok(true, 11, 5, 800, 80, 0.002),
  [`${L1}|${B}|1`]: ok(false, 40, 10, 5000, 500, 0.05),
  [`${L1}|${B}|2`]: { status: 'failed', prompt: 1000, completion: 100, cost: 0.01 },
};
const RETRY: Outcome = ok(true, 20, 5, 1000, 100, 0.01);

const MODELS = [
  ['openai/gpt-4o-mini', 'OpenAI: GPT-4o-mini', 128000, 0.00000015, 0.0000006],
  ['openai/gpt-4o', 'OpenAI: GPT-4o', 128000, 0.0000025, 0.00001],
  ['anthropic/claude-3-haiku', 'Anthropic: Claude 3 Haiku', 200000, 0.00000025, 0.00000125],
] as const;

beforeAll(async () => {
  ensureDashboardBuilt();
  db = await createTestDatabase();
  events = new EventHub(db.url);
  await events.start();
  const config = testConfig({}, db.url);
  const deps: AppDeps = {
    pool: db.pool, config, logger: pino({ level: 'silent' }), events, workers: null, version: 'test',
    dashboard: createDashboardServer(), submitValidator: createSubmitValidator(db.pool, config, 0),
  };
  expect(deps.dashboard, 'web/dist must hold a build').toBeTruthy();
  app = await buildServer(deps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  await syncProblemCatalog(db.pool, builtinProblems());
  for (const [id, name, ctx, p, c] of MODELS) {
    await db.pool.query('INSERT INTO models (id, name, context_length, prompt_price, completion_price) VALUES ($1, $2, $3, $4, $5)', [id, name, ctx, p, c]);
  }
  for (const w of ['w-1', 'w-2', 'w-3']) await addWorker(db.pool, w);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await events?.stop();
  await db?.drop();
});

const BROWSER_TEST_MS = 240_000;
const poll = <T>(fn: () => Promise<T> | T, opts: { timeout?: number } = {}) => expect.poll(fn, { timeout: 20_000, interval: 100, ...opts });

async function load(page: Page, hash: string): Promise<void> {
  await page.goto(`/${hash}`);
  const route = hash.replace(/^#\/?/, '').split('?')[0]!;
  await page.locator(`main[data-route="${route}"] h1`).first().waitFor();
  await page.waitForFunction(() => !document.querySelector('main [role="status"].muted'), null, { timeout: 20_000 });
}

/** Claims the next task with `worker` and ends it with its scripted outcome. */
async function runNext(worker: string, outcomes: Record<string, Outcome>): Promise<TaskRow> {
  const t = await claimNext(db.pool, worker);
  if (!t) throw new Error('nothing to claim');
  const o = outcomes[comboOf(t)];
  if (!o) throw new Error(`no scripted outcome for ${comboOf(t)}`);
  await finishWith(db.pool, t, worker, o);
  return t;
}

/** The legend's count for each status of the progress card. */
async function legendCounts(page: Page): Promise<Record<string, number>> {
  const items = page.locator('#xp-progress-h').locator('..').locator('.xp-legend li');
  const out: Record<string, number> = {};
  for (const li of await items.all()) out[(await li.getAttribute('data-count'))!] = Number((await li.locator('.xp-count').textContent())!.replace(/,/g, ''));
  return out;
}

const counts = (c: Partial<Record<string, number>>) => ({ completed: 0, failed: 0, timeout: 0, running: 0, pending: 0, cancelled: 0, not_created: 0, ...c });

/** Each cell's text of the rows of a results table, keyed by the row's key. */
async function tableRows(page: Page, headingId: string, section: 'tbody' | 'tfoot' = 'tbody'): Promise<string[][]> {
  return page.locator(`#${headingId}`).locator('..').locator(`table.xp-results ${section} tr`).evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll('th, td')].map((c) => (c.textContent ?? '').replace(/\s+/g, ' ').trim())));
}

/**
 * Loads `hash` at laptop and phone width and captures it in light and dark, after checking the
 * background follows the scheme, nothing overflows sideways and nothing went wrong in the page.
 */
async function shoot(hash: string, name: string, ready?: (page: Page) => Promise<void>): Promise<void> {
  for (const viewport of ['laptop', 'phone'] as const) {
    const { page, context, errors } = await openPage(browser, base, { viewport });
    try {
      await load(page, hash);
      await ready?.(page);
      for (const colorScheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme });
        const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
        expect(bg, `${name} background`).toBe(colorScheme === 'dark' ? 'rgb(15, 17, 21)' : 'rgb(246, 247, 249)');
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        expect(overflow, `${name} at ${viewport} has no horizontal overflow`).toBeLessThanOrEqual(0);
        await screenshot(page, `${name}-${viewport}-${colorScheme}`);
      }
      expect(errors, `${name} at ${viewport}`).toEqual([]);
    } finally {
      await context.close();
    }
  }
}

describe('experiments in the dashboard', () => {
  let main: DashboardPage;
  let experimentId = '';

  beforeAll(async () => { main = await openPage(browser, base, { viewport: 'laptop' }); });
  afterAll(async () => { await main?.context.close(); });

  it('creates an experiment from the form, showing the server\'s validation errors at their fields', async () => {
    const { page, errors } = main;
    await load(page, '#/experiments');
    expect(await page.locator('main .empty').textContent()).toContain('No experiment yet');
    await page.getByRole('link', { name: 'New experiment' }).first().click();
    await page.locator('main[data-route="experiments/new"] h1').waitFor();
    await poll(() => page.locator('#x-apps .chip').count()).toBeGreaterThan(3);

    await page.getByLabel('Name', { exact: true }).fill(NAME);
    await page.getByLabel('Description (optional)').fill('Two models on the target-port problems');
    await page.getByLabel('Problem ids').fill(`${D1}\nk8s_target_port-misconfig-detecton-2\n${L1}`);
    await page.getByLabel('Id patterns').fill('k8s_target_port-misconfg-*');
    // The preview flags both before the server does.
    expect(await page.locator('#x-problem_ids-hint').textContent()).toContain('Not in the catalog: k8s_target_port-misconfig-detecton-2');
    expect(await page.locator('#x-patterns-hint').textContent()).toContain('Matches nothing: k8s_target_port-misconfg-*');
    await page.getByLabel('Model 1', { exact: true }).fill(A);
    await page.getByRole('button', { name: 'Add model' }).click();
    await poll(() => page.evaluate(() => document.activeElement?.id)).toBe('x-models-1');
    await page.getByLabel('Model 2', { exact: true }).fill('anthropic/claude-3-haku');
    await page.getByLabel('Repeats').fill('2');
    await page.getByLabel('Max steps').fill('10');
    await page.getByRole('button', { name: 'Create experiment' }).click();

    // Both selector problems come back in one answer, each at its field; focus goes to the first.
    const idsError = page.locator('#x-problem_ids-error');
    await poll(() => idsError.textContent()).toContain('"k8s_target_port-misconfig-detecton-2" is not in the AIOpsLab catalog');
    expect(await page.locator('#x-patterns-error').textContent()).toContain('"k8s_target_port-misconfg-*" matches no problem id');
    expect(await page.getByLabel('Problem ids').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('Problem ids').getAttribute('aria-describedby')).toContain('x-problem_ids-error');
    await poll(() => page.evaluate(() => document.activeElement?.id)).toBe('x-problem_ids');
    await screenshot(page, 'experiments-new-errors-laptop-light');

    await idsError.getByRole('button', { name: D2 }).click();
    expect(await page.getByLabel('Problem ids').inputValue()).toBe(`${D1}\n${D2}\n${L1}`);
    expect(await idsError.count()).toBe(0);
    await page.getByLabel('Id patterns').fill('');
    expect(await page.locator('[data-preview="problems"]').textContent()).toBe('3 problems');
    expect(await page.locator('[data-preview="combinations"]').textContent()).toBe('3 problems × 2 models × 2 repeats = 12 tasks');
    await page.getByRole('button', { name: 'Create experiment' }).click();

    // The unknown model is the second entry of `models`: its error is at the second row.
    const modelError = page.locator('#x-models-1-error');
    await poll(() => modelError.textContent()).toContain('Unknown model');
    expect(await page.locator('#x-models-0-error').count()).toBe(0);
    await poll(() => page.evaluate(() => document.activeElement?.id)).toBe('x-models-1');
    await modelError.getByRole('button', { name: B }).click();
    expect(await page.getByLabel('Model 2', { exact: true }).inputValue()).toBe(B);

    await page.getByRole('button', { name: 'Create experiment' }).click();
    await page.waitForURL(new RegExp(`#/experiments/${NAME}$`));
    await poll(() => page.locator('.notice-info').textContent()).toContain('Created: 12 tasks queued.');
    const row = (await db.pool.query('SELECT * FROM experiments WHERE name = $1', [NAME])).rows[0];
    experimentId = row.id;
    expect(row).toMatchObject({ problem_ids: [D1, D2, L1], models: [A, B], repeats: 2, description: 'Two models on the target-port problems', status: 'active' });
    expect(row.parameters.max_steps).toBe(10);
    await poll(() => legendCounts(page)).toEqual(counts({ pending: 12 }));
    await poll(() => page.locator('.page-header [data-status]').getAttribute('data-status')).toBe('queued');
    expect(errors).toEqual([]);
  }, BROWSER_TEST_MS);

  it('follows the progress live as tasks run, by status and by model', async () => {
    const { page, errors } = main;
    await page.evaluate(() => { (window as unknown as { __same: boolean }).__same = true; });
    await page.locator('.live-open').waitFor();
    // Repeat 1 of every combination first (claims go repeat-major), then one of repeat 2 starts.
    for (let i = 0; i < 6; i++) await runNext('w-1', FIRST);
    const running = await claimNext(db.pool, 'w-2');
    expect(comboOf(running!)).toBe(`${D1}|${A}|2`);
    await poll(() => legendCounts(page), { timeout: 10_000 }).toEqual(counts({ completed: 6, running: 1, pending: 5 }));
    expect(await page.locator('.page-header [data-status]').getAttribute('data-status')).toBe('running');
    // 0.01 + 0.03 + 0.015 (alpha) + 0.002 + 0.002 + 0.05 (beta); remaining: alpha 3 × 0.055/3, beta 3 × 0.054/3.
    await poll(() => page.locator('[data-fact="spend"]').textContent()).toBe('$0.1090');
    expect(await page.locator('[data-fact="remaining"]').textContent()).toBe('$0.1090');
    expect(await page.locator('[data-fact="finished"]').textContent()).toBe('6 of 12');
    const alpha = page.locator(`tr[data-model="${A}"]`);
    expect(await alpha.locator('[data-col="done"]').textContent()).toBe('3 / 6');
    expect(await alpha.locator('[data-col="running"]').textContent()).toBe('1');
    expect(await alpha.locator('[data-col="spend"]').textContent()).toBe('$0.0550');
    expect(await page.locator(`tr[data-model="${B}"] [data-col="cost_per_task"]`).textContent()).toBe('$0.0180');

    await shoot(`#/experiments/${NAME}`, 'experiments-detail', async (p) => { await p.locator('.xp-legend').waitFor(); });

    await finishWith(db.pool, running!, 'w-2', FIRST[comboOf(running!)]!);
    for (let i = 0; i < 5; i++) await runNext('w-1', FIRST);
    await poll(() => legendCounts(page), { timeout: 10_000 }).toEqual(counts({ completed: 9, failed: 2, timeout: 1 }));
    await poll(() => page.locator('.page-header [data-status]').getAttribute('data-status')).toBe('completed');
    expect(await page.evaluate(() => (window as unknown as { __same?: boolean }).__same)).toBe(true);
    expect(errors).toEqual([]);
  }, BROWSER_TEST_MS);

  it('resumes with retry of the failed combinations, and cancels after a confirmation', async () => {
    const { page, errors } = main;
    expect(await page.locator('.xp-resume label').textContent()).toContain('retry failed (3)');
    await page.getByLabel(/retry failed/).check();
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await poll(() => page.locator('.notice-info').textContent()).toContain('Resumed: 3 tasks created.');
    await poll(() => legendCounts(page)).toEqual(counts({ completed: 9, pending: 3 }));

    // All three start; beta's finishes with success, alpha's two are still running at the cancel.
    const claimed = await Promise.all(['w-1', 'w-2', 'w-3'].map(async (w) => ({ w, t: (await claimNext(db.pool, w))! })));
    const beta = claimed.find((c) => comboOf(c.t) === `${L1}|${B}|2`)!;
    await finishWith(db.pool, beta.t, beta.w, RETRY);
    await poll(() => legendCounts(page), { timeout: 10_000 }).toEqual(counts({ completed: 10, running: 2 }));

    // Keyboard: the confirmation takes focus on its safe choice.
    await page.getByRole('button', { name: 'Cancel experiment' }).focus();
    await page.keyboard.press('Enter');
    const confirm = page.getByRole('group', { name: 'Confirm cancellation' });
    expect(await confirm.textContent()).toContain('Cancel 2 running tasks? Running ones are stopped by their workers.');
    await poll(() => page.evaluate(() => document.activeElement?.textContent)).toBe('Keep it');
    await screenshot(page, 'experiments-cancel-confirm-laptop-light');
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Yes, cancel experiment');
    await page.keyboard.press('Enter');
    await poll(() => page.locator('.notice-info').textContent()).toContain('Cancelled: 2 tasks stopped.');
    await poll(() => page.locator('.page-header [data-status]').getAttribute('data-status')).toBe('cancelled');
    await poll(() => legendCounts(page)).toEqual(counts({ completed: 10, cancelled: 2 }));
    expect(await page.locator('[data-fact="spend"]').textContent()).toBe('$0.1980');
    expect((await db.pool.query('SELECT status FROM experiments WHERE id = $1', [experimentId])).rows[0].status).toBe('cancelled');
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM tasks WHERE experiment_id = $1 AND status IN ('pending', 'running')`, [experimentId])).rows[0].n).toBe(0);
    // A cancelled experiment can be resumed, not cancelled again.
    expect(await page.getByRole('button', { name: 'Cancel experiment' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Resume', exact: true }).count()).toBe(1);
    expect(errors).toEqual([]);
  }, BROWSER_TEST_MS);

  it('shows the results tables with the expected numbers, the charts and the downloads', async () => {
    const { page, errors } = main;
    await page.getByRole('link', { name: 'Results' }).click();
    await page.locator('#xp-summary-h').waitFor();

    // Alpha's retried failure and timeout were cancelled, so those combinations drop out.
    expect(await tableRows(page, 'xp-summary-h')).toEqual([
      [A, 'detection', '3', '66.7% 2/3', '20.8–93.9%', 'TTD 20 s', '20 s', '6', '6', '2,000', '200', '$0.02', '$0.06'],
      [A, 'localization', '1', '100.0% 1/1', '20.7–100.0%', 'TTL 12.5 s', '12.5 s', '3', '3', '1,500', '150', '$0.015', '$0.015'],
      [B, 'detection', '4', '100.0% 4/4', '51.0–100.0%', 'TTD 8 s', '8 s', '3.5', '3.5', '800', '80', '$0.002', '$0.008'],
      [B, 'localization', '2', '50.0% 1/2', '9.5–90.6%', 'TTL 30 s', '30 s', '7.5', '7.5', '3,000', '300', '$0.03', '$0.06'],
    ]);
    expect(await tableRows(page, 'xp-bymodel-h')).toEqual([
      [A, '4', '75.0% 3/4', '30.1–95.4%', '5.25', '5', '1,875', '187.5', '$0.01875', '$0.075'],
      [B, '6', '83.3% 5/6', '43.7–97.0%', '4.83', '4.5', '1,533.3', '153.3', '$0.01133', '$0.068'],
    ]);
    expect(await tableRows(page, 'xp-bymodel-h', 'tfoot')).toEqual([['All models', '10', '80.0% 8/10', '', '', '', '', '', '$0.0143', '$0.143']]);
    expect(await tableRows(page, 'xp-detail-h')).toEqual([
      [D1, A, '2', '100.0% 2/2', '34.2–100.0%', 'TTD 15 s', '5', '$0.015', '$0.03'],
      [D1, B, '2', '100.0% 2/2', '34.2–100.0%', 'TTD 6 s', '2.5', '$0.002', '$0.004'],
      [D2, A, '1', '0.0% 0/1', '0.0–79.4%', 'TTD 30 s', '8', '$0.03', '$0.03'],
      [D2, B, '2', '100.0% 2/2', '34.2–100.0%', 'TTD 10 s', '4.5', '$0.002', '$0.004'],
      [L1, A, '1', '100.0% 1/1', '20.7–100.0%', 'TTL 12.5 s', '3', '$0.015', '$0.015'],
      [L1, B, '2', '50.0% 1/2', '9.5–90.6%', 'TTL 30 s', '7.5', '$0.03', '$0.06'],
    ]);

    // Success rate: a bar and an error bar per model in each task type and over all types.
    const rate = page.locator('#xp-rate-h').locator('..');
    await rate.locator('svg').waitFor();
    expect(await rate.locator('[data-category]').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-category')))).toEqual(['detection', 'localization', 'all types']);
    expect(await rate.locator('rect.xp-bar-rect').count()).toBe(6);
    expect(await rate.locator('.xp-ci').count()).toBe(6);
    expect(await rate.locator(`[data-category="localization"] [data-series="${B}"] title`).textContent()).toBe(`localization · ${B}: 50% (1/2), 95 % CI 9.5%–90.6%`);
    const cost = page.locator('#xp-cost-h').locator('..');
    expect(await cost.locator('rect.xp-bar-rect').count()).toBe(6);
    expect(await cost.locator(`[data-category="all types"] [data-series="${A}"] title`).textContent()).toBe(`all types · ${A}: $0.01875 (4 tasks, $0.075 in total)`);
    // The bars' heights follow the values: beta's detection rate (1) is twice its localization rate (0.5).
    const h = async (cat: string, s: string) => Number(await rate.locator(`[data-category="${cat}"] [data-series="${s}"] rect`).getAttribute('height'));
    expect(await h('detection', B)).toBeCloseTo(2 * (await h('localization', B)), 5);

    // Downloads: one CSV per table and the JSON with everything, named after the experiment.
    const links = page.locator('.xp-downloads a');
    expect(await links.evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.getAttribute('download')]))).toEqual([
      [`/api/v1/experiments/${experimentId}/results?format=csv&table=summary`, `${NAME}-summary.csv`],
      [`/api/v1/experiments/${experimentId}/results?format=csv&table=by_model`, `${NAME}-by_model.csv`],
      [`/api/v1/experiments/${experimentId}/results?format=csv&table=detail`, `${NAME}-detail.csv`],
      [`/api/v1/experiments/${experimentId}/results?format=csv&table=tasks`, `${NAME}-tasks.csv`],
      [`/api/v1/experiments/${experimentId}/results?download=true`, `${NAME}-results.json`],
    ]);
    const download = page.waitForEvent('download');
    await page.locator('[data-download="summary"]').click();
    const file = await download;
    expect(file.suggestedFilename()).toBe(`${NAME}-summary.csv`);
    const csv = await (await fetch(`${base}/api/v1/experiments/${experimentId}/results?format=csv&table=summary`)).text();
    expect(csv.split('\r\n')[1]).toBe(`${A},detection,3,3,0,2,0.6667,0.2077,0.9385,TTD,20,20,6,6,2000,200,6000,600,0.02,0.06`);
    const json = await (await fetch(`${base}/api/v1/experiments/${experimentId}/results?download=true`)).json() as { tasks: unknown[] };
    expect(json.tasks).toHaveLength(10);

    await shoot(`#/experiments/${NAME}?tab=results`, 'experiments-results', async (p) => { await p.locator('.xp-chart svg').first().waitFor(); });

    // The tasks tab lists every task of the experiment (retries included), filtered in the URL.
    await page.locator('nav.tabs a', { hasText: 'Tasks' }).click();
    await poll(() => page.locator('tr[data-task-id]').count()).toBe(15);
    await page.getByLabel('cancelled', { exact: true }).check();
    await poll(() => page.url()).toContain('status=cancelled');
    await poll(() => page.locator('tr[data-task-id]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-status')))).toEqual(['cancelled', 'cancelled']);
    expect(page.url()).toContain('tab=tasks');
    expect(errors).toEqual([]);
  }, BROWSER_TEST_MS);

  it('lists the experiments with progress, spend and caps, following new ones live', async () => {
    const { page, errors } = main;
    await load(page, '#/experiments');
    await page.locator(`tr[data-experiment="${NAME}"]`).waitFor();
    // A new experiment made elsewhere (here: the API) appears without a reload.
    const r = await fetch(`${base}/api/v1/experiments`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'capped-detection', description: 'Detection problems of the target-port family under a spend cap', patterns: ['k8s_target_port-misconfig-*'], task_types: ['detection'], models: [A, 'openai/gpt-4o'], spend_cap_usd: 0.5, model_max_running: { 'openai/gpt-4o': 1 } }),
    });
    expect(r.status).toBe(201);
    const capped = await r.json() as { combinations: number };
    const row = page.locator('tr[data-experiment="capped-detection"]');
    await row.waitFor({ timeout: 10_000 });
    expect(await page.locator('tr[data-experiment]').evaluateAll((rs) => rs.map((x) => [x.getAttribute('data-experiment'), x.getAttribute('data-status')]))).toEqual([
      ['capped-detection', 'queued'], [NAME, 'cancelled'],
    ]);
    expect(await row.locator('[data-col="spend"]').textContent()).toBe('$0 of $0.50');
    expect(await row.locator('[data-col="remaining"]').textContent()).toBe('unknown yet');
    expect(await row.locator('.xp-progress-text').textContent()).toBe(`0 of ${capped.combinations} finished (0%)`);
    const done = page.locator(`tr[data-experiment="${NAME}"]`);
    expect(await done.locator('.xp-progress-text').textContent()).toBe('10 of 12 finished (83.3%)');
    expect(await done.locator('[data-col="spend"]').textContent()).toBe('$0.1980');

    await page.getByRole('button', { name: 'Cancelled' }).click();
    await poll(() => page.locator('tr[data-experiment]').count()).toBe(1);
    expect(page.url()).toContain('status=cancelled');
    await page.getByRole('button', { name: 'All', exact: true }).click();
    await poll(() => page.locator('tr[data-experiment]').count()).toBe(2);

    // The capped one's page shows its cap and per-model limit, and the per-model cap can be changed.
    await row.getByRole('link').click();
    await page.locator('main[data-route="experiments/capped-detection"] #xp-limits-h').waitFor();
    expect(await page.locator('[data-fact="cap"]').textContent()).toBe('$0.50');
    expect(await page.locator('tr[data-model="openai/gpt-4o"] [data-col="max_running"]').textContent()).toBe('1');
    await page.getByLabel('Running: openai/gpt-4o', { exact: true }).fill('0');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await poll(() => page.locator('#l-cap-1-error').textContent()).toContain('Must be >= 1');
    await page.getByLabel('Running: openai/gpt-4o', { exact: true }).fill('2');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await poll(() => page.locator('tr[data-model="openai/gpt-4o"] [data-col="max_running"]').textContent()).toBe('2');
    expect(await page.locator('.notice-info').textContent()).toContain('Limits saved');
    expect((await db.pool.query(`SELECT model_max_running FROM experiments WHERE name = 'capped-detection'`)).rows[0].model_max_running).toEqual({ 'openai/gpt-4o': 2 });

    await shoot('#/experiments', 'experiments-list', async (p) => { await p.locator('tr[data-experiment]').nth(1).waitFor(); });
    await shoot('#/experiments/new', 'experiments-new', async (p) => { await p.locator('#x-apps .chip').nth(3).waitFor(); });
    expect(errors).toEqual([]);
  }, BROWSER_TEST_MS);

  it('refuses to resume under a changed definition, naming the field that differs', async () => {
    const { page, errors } = main;
    await load(page, '#/experiments/new');
    await page.getByLabel('Name', { exact: true }).fill(NAME);
    await poll(() => page.locator('#x-name-hint').textContent()).toContain('submitting resumes it');
    await page.getByLabel('Repeats').fill('3');
    await page.getByRole('button', { name: 'Resume experiment' }).click();
    await poll(() => page.locator('#x-repeats-error').textContent()).toContain('Stored: 2, given: 3');
    expect(await page.locator('.notice-error').textContent()).toContain('exists with a different repeats');
    // The name alone resumes it; alpha's two cancelled combinations failed before, so they need the retry.
    await page.getByLabel('Repeats').fill('');
    await page.getByLabel(/also retry failed/).check();
    await page.getByRole('button', { name: 'Resume experiment' }).click();
    await page.waitForURL(new RegExp(`#/experiments/${NAME}$`));
    await poll(() => page.locator('.notice-info').textContent()).toContain('Resumed: 2 tasks created.');
    await poll(() => legendCounts(page)).toEqual(counts({ completed: 10, pending: 2 }));
    await poll(() => page.locator('.page-header [data-status]').getAttribute('data-status')).toBe('running');
    expect(errors).toEqual([]);
  }, BROWSER_TEST_MS);

  it('is reachable from the main navigation by keyboard', async () => {
    const { page } = main;
    await load(page, '#/');
    await page.locator('.brand').focus();
    for (let i = 0; i < 4; i++) await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Experiments');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/experiments$/);
    await poll(() => page.evaluate(() => `${document.activeElement?.tagName}:${document.activeElement?.textContent}`)).toBe('H1:Experiments');
    expect(await page.locator('.mainnav a[aria-current="page"]').textContent()).toBe('Experiments');
  }, BROWSER_TEST_MS);
});
