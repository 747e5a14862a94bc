/**
 * A real browser for the dashboard tests: Debian's chromium driven by playwright-core (which
 * downloads no browser of its own). Also builds the dashboard when web/dist is missing, and
 * collects page errors so a test fails on a JavaScript exception it did not look for.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PACKAGE_ROOT, WEB_DIST_DIR } from '../../src/packagePaths.js';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOT_DIR = path.join(PACKAGE_ROOT, 'test-artifacts', 'screenshots');
const MAX_SCREENSHOT_HEIGHT = 2400;

export const VIEWPORTS = {
  laptop: { width: 1280, height: 860 },
  phone: { width: 390, height: 844 },
} as const;
export type ViewportName = keyof typeof VIEWPORTS;

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

function newestMtime(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(p).map((f) => newestMtime(path.join(p, f))));
}

/**
 * Builds web/dist when it is missing or older than the dashboard's sources (CI builds it in
 * `npm run build`; a developer who edited web/src must not test yesterday's bundle).
 */
export function ensureDashboardBuilt(): void {
  const index = path.join(WEB_DIST_DIR, 'index.html');
  const web = path.join(PACKAGE_ROOT, 'web');
  const sources = ['src', 'public', 'index.html', 'vite.config.ts'].map((f) => path.join(web, f)).filter((f) => existsSync(f));
  if (existsSync(index) && statSync(index).mtimeMs >= Math.max(...sources.map(newestMtime))) return;
  execFileSync(process.execPath, [path.join(PACKAGE_ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], {
    cwd: PACKAGE_ROOT, stdio: 'inherit',
  });
}

export interface DashboardPage {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors seen so far. */
  errors: string[];
}

/**
 * A page in its own context. `colorScheme` drives prefers-color-scheme; requests that leave the
 * server under test are recorded as errors, since the dashboard must work offline.
 */
export async function openPage(browser: Browser, baseUrl: string, opts: { viewport?: ViewportName; colorScheme?: 'light' | 'dark' } = {}): Promise<DashboardPage> {
  const context = await browser.newContext({
    baseURL: baseUrl,
    viewport: VIEWPORTS[opts.viewport ?? 'laptop'],
    colorScheme: opts.colorScheme ?? 'light',
    deviceScaleFactor: 1,
    // Fixed, so "today" and day boundaries in charts match what the tests compute in UTC.
    timezoneId: 'UTC',
    locale: 'en-US',
    isMobile: opts.viewport === 'phone',
    hasTouch: opts.viewport === 'phone',
  });
  const page = await context.newPage();
  const errors: string[] = [];
  const origin = new URL(baseUrl).origin;
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // A failed request is reported by the `requestfailed`/`response` handlers instead; the
    // browser's own "Failed to load resource" line for an expected 4xx is not a fault.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) errors.push(`external request: ${u}`);
  });
  return { context, page, errors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  // From the top, without the focus ring a route change leaves on the heading.
  await page.evaluate(() => { window.scrollTo(0, 0); (document.activeElement as HTMLElement | null)?.blur(); });
  // Whole page, but capped: a 90-row list on a phone is 18,000 px and costs seconds to encode.
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  const width = page.viewportSize()?.width ?? 1280;
  await page.screenshot({ path: file, fullPage: true, clip: { x: 0, y: 0, width, height: Math.min(height, MAX_SCREENSHOT_HEIGHT) } });
  return file;
}
