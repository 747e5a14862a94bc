/**
 * The dashboard end to end, in a real browser, against the whole service (`start`: API,
 * dashboard, internal workers) with the fixture AIOpsLab, the kind/kubectl stand-ins and the LLM
 * stand-in: a task submitted from the form goes pending → running → completed on its page
 * without a reload, its transcript and results show what the run recorded, a running task is
 * cancelled from its page, a bad problem id is refused at the field, and the internal pool is
 * scaled from the workers page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ensureDashboardBuilt, launchBrowser, openPage, screenshot } from './helpers/browser.js';
import { startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';

let h: ServiceHarness;
let browser: Browser;
/** Browser tests share a busy machine with the rest of the suite (and CI runs files in parallel). */
const BROWSER_TEST_MS = 240_000;
const poll = <T>(fn: () => Promise<T> | T) => expect.poll(fn, { timeout: 20_000, interval: 100 });

beforeAll(async () => {
  ensureDashboardBuilt();
  h = await startServiceHarness({ workers: 1 });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

/** Records every status the task page's header shows, from now on, in the page itself. */
async function recordStatuses(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __statuses: string[]; __sameDocument: boolean };
    w.__statuses = [];
    w.__sameDocument = true;
    const note = () => {
      const s = document.querySelector('.page-header [data-status]')?.getAttribute('data-status');
      if (s && w.__statuses.at(-1) !== s) w.__statuses.push(s);
    };
    note();
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

const statuses = (page: Page) => page.evaluate(() => (window as unknown as { __statuses: string[] }).__statuses);

async function scaleFromWorkersPage(page: Page, n: number): Promise<void> {
  await page.goto('/#/workers');
  const input = page.getByLabel('Internal workers');
  await input.fill(String(n));
  await page.getByRole('button', { name: 'Scale' }).click();
  await page.getByText(new RegExp(`to ${n} workers`)).waitFor({ timeout: 30_000 });
}

describe('dashboard against the running service', () => {
  it('submits from the form and follows the task pending → running → completed live, then shows its transcript and results', async () => {
    const { page, context, errors } = await openPage(browser, h.url);
    const workersTab = await context.newPage();
    try {
      // No worker, so the task visibly waits; the pool is scaled back up from the workers page.
      await scaleFromWorkersPage(workersTab, 0);
      await poll(async () => (await h.api('/api/v1/workers/internal/status')).body.num_workers).toBe(0);

      await page.goto('/#/submit');
      await page.getByLabel('Application').selectOption('social_network');
      await page.getByLabel('Task type').selectOption('detection');
      await page.getByLabel(/^Catalog/).selectOption('k8s_target_port-misconfig-detection-1');
      await page.getByLabel('Model', { exact: true }).fill('openai/gpt-4o-mini');
      await page.getByLabel('Max steps').fill('6');
      await page.getByRole('button', { name: 'Submit task' }).click();
      await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
      const id = page.url().split('/').at(-1)!;
      await page.locator('.page-header [data-status="pending"]').waitFor({ timeout: 30_000 });
      await recordStatuses(page);
      await screenshot(page, 'e2e-task-pending-laptop-light');

      // The model answers slowly, so the run stays visibly running for a while.
      h.llm.enqueue({ kind: 'slow', delayMs: 1500 });
      await scaleFromWorkersPage(workersTab, 1);
      await page.locator('.page-header [data-status="running"]').waitFor({ timeout: 60_000 });
      await page.locator('.page-header [data-status="completed"]').waitFor({ timeout: 120_000 });
      expect(await statuses(page)).toEqual(['pending', 'running', 'completed']);
      expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);

      // Results and reward, as AIOpsLab scored them.
      const task = (await h.api(`/api/v1/tasks/${id}`)).body;
      expect(task.result.success).toBe(true);
      await poll(() => page.locator('.reward strong').textContent()).toBe('1.00');
      expect(await page.locator('dl[aria-label="AIOpsLab results"]').textContent()).toContain('Correct');
      // The timeline follows its own (debounced) stream of log events: wait for it to catch up.
      for (const ph of ['preflight', 'cluster', 'init', 'step', 'run_finished']) await expect.poll(() => page.locator(`.tl-row[data-phase="${ph}"]`).count(), { timeout: 10_000, interval: 100, message: ph }).toBeGreaterThan(0);
      await screenshot(page, 'e2e-task-completed-laptop-light');

      // The transcript: each agent turn with its parsed action, tokens, cost and latency.
      await page.getByRole('link', { name: 'Transcript' }).click();
      await page.locator('.turn').first().waitFor();
      const conv = (await h.api(`/api/v1/llm-conversations/${task.result.conversation_id}`)).body;
      const replies = conv.messages.filter((m: { role: string }) => m.role === 'assistant');
      expect(await page.locator('.turn').count()).toBe(replies.length);
      expect(await page.locator('.turn .action').first().textContent()).toBe('exec_shell("kubectl get pods -A")');
      expect(await page.locator('.turn .action').last().textContent()).toBe('submit("Yes")');
      const firstUsage = replies[0].metadata.usage;
      expect(await page.locator('.turn').first().locator('.metrics').textContent()).toContain(firstUsage.prompt_tokens.toLocaleString('en-US'));
      const response = page.locator('.turn').first().locator('details.env-response');
      await response.locator('summary').click();
      expect((await response.locator('pre').textContent())!.length).toBeGreaterThan(0);
      await screenshot(page, 'e2e-task-transcript-laptop-light');

      await page.getByRole('link', { name: /AIOpsLab output/ }).click();
      await page.locator('.terminal').waitFor();
      expect(await page.locator('.terminal span').count()).toBeGreaterThan(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, BROWSER_TEST_MS);

  it('cancels a running task from its page', async () => {
    const { page, context, errors } = await openPage(browser, h.url, { viewport: 'phone' });
    try {
      // The model never answers, so the run waits in its first agent step until cancelled.
      h.llm.enqueue({ kind: 'hang' });
      const task = await h.submit({ problem_id: 'scale_pod_zero_social_net-detection-1', parameters: { max_steps: 5 } });
      await page.goto(`/#/tasks/${task.id}`);
      await page.locator('.page-header [data-status="running"]').waitFor({ timeout: 30_000 });
      await recordStatuses(page);
      await page.getByRole('button', { name: 'Cancel task' }).click();
      await screenshot(page, 'e2e-cancel-confirm-phone-light');
      await page.getByRole('button', { name: 'Yes, cancel' }).click();
      await page.locator('.page-header [data-status="cancelled"]').waitFor({ timeout: 30_000 });
      expect(await statuses(page)).toEqual(['running', 'cancelled']);
      expect((await h.waitForTask(task.id, ['cancelled'])).status).toBe('cancelled');
      expect(await page.getByRole('button', { name: 'Cancel task' }).count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, BROWSER_TEST_MS);

  it('refuses a bad problem id at the field, with the closest ids to pick from', async () => {
    const { page, context, errors } = await openPage(browser, h.url);
    try {
      const before = (await h.api('/api/v1/tasks')).body.total;
      await page.goto('/#/submit');
      const problem = page.getByLabel('Problem id', { exact: true });
      await problem.fill('k8s_target_port-misconfig-detecton-1');
      await page.getByRole('button', { name: 'Submit task' }).click();
      const error = page.locator('#f-problem_id-error');
      await poll(() => error.textContent()).toMatch(/not in the AIOpsLab catalog/i);
      expect(await problem.getAttribute('aria-invalid')).toBe('true');
      expect(await error.getByRole('button', { name: 'k8s_target_port-misconfig-detection-1' }).count()).toBe(1);
      expect(page.url()).toMatch(/#\/submit$/);
      expect((await h.api('/api/v1/tasks')).body.total).toBe(before);
      await screenshot(page, 'e2e-submit-bad-problem-laptop-light');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, BROWSER_TEST_MS);

  it('shows the internal workers with their clusters, heartbeats and counts', async () => {
    const { page, context, errors } = await openPage(browser, h.url, { colorScheme: 'dark' });
    try {
      await page.goto('/#/workers');
      const rows = page.locator('tr[data-worker-id]');
      await rows.first().waitFor();
      const workers = (await h.api('/api/v1/workers')).body.workers as Array<{ id: string; status: string; metadata: { kind_cluster?: string }; tasks_completed: number }>;
      const live = workers.find((w) => w.status !== 'offline' && w.tasks_completed > 0)!;
      const row = page.locator(`tr[data-worker-id="${live.id}"]`);
      expect(await row.locator('td[data-label="Cluster"]').textContent()).toContain(live.metadata.kind_cluster!);
      expect(await row.locator('td[data-label="Completed"]').textContent()).toBe(String(live.tasks_completed));
      expect(await row.locator('td[data-label="Heartbeat"]').textContent()).toMatch(/just now|\d+ s ago/);
      await screenshot(page, 'e2e-workers-laptop-dark');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, BROWSER_TEST_MS);
});
