/**
 * The API server of benchmarks 5 and 6 in its own process, as a deployment runs it, so the load
 * generator and the measurements do not share its event loop. Started by `startApiProcess` with
 * the database URL in BENCH_DATABASE_URL; answers over IPC:
 *   → {type:'ready', url}                      once listening
 *   ← {type:'rss-start'} / {type:'rss-stop'}   sample its resident memory every 10 ms
 *   → {type:'rss', baseline, peak, samples}
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createPool } from '../src/store/pool.js';
import { startApi } from './apiUnderTest.js';

export interface RssReport { baseline: number; peak: number; samples: Array<[number, number]> }

export interface ApiProcess {
  url: string;
  pid: number;
  sampleRss<T>(fn: () => Promise<T>): Promise<{ value: T; rss: RssReport }>;
  close(): Promise<void>;
}

/** Starts this module as a child process serving the API over `databaseUrl`. */
export async function startApiProcess(databaseUrl: string): Promise<ApiProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, BENCH_DATABASE_URL: databaseUrl },
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`API process exited (${code}) before listening`)));
    child.once('message', (m: { type: string; url: string }) => { if (m.type === 'ready') resolve(m.url); });
  });
  return {
    url,
    pid: child.pid!,
    async sampleRss(fn) {
      child.send({ type: 'rss-start' });
      await new Promise((r) => setTimeout(r, 50));
      const value = await fn();
      const rss = await new Promise<RssReport>((resolve) => {
        const on = (m: { type: string } & RssReport) => { if (m.type === 'rss') { child.off('message', on); resolve(m); } };
        child.on('message', on);
        child.send({ type: 'rss-stop' });
      });
      return { value, rss };
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'close' });
      await exited;
    },
  };
}

/** The same interface in this process (the bench tests run TypeScript sources, which a child cannot). */
export async function startApiInProcess(db: { url: string; pool: import('../src/store/pool.js').Pool }): Promise<ApiProcess> {
  const api = await startApi(db);
  return {
    url: api.url,
    pid: process.pid,
    async sampleRss(fn) {
      const baseline = process.memoryUsage.rss();
      const samples: Array<[number, number]> = [];
      const timer = setInterval(() => samples.push([Math.round(performance.now()), process.memoryUsage.rss()]), 10);
      try {
        const value = await fn();
        samples.push([Math.round(performance.now()), process.memoryUsage.rss()]);
        return { value, rss: { baseline, peak: samples.reduce((a, [, v]) => Math.max(a, v), baseline), samples } };
      } finally {
        clearInterval(timer);
      }
    },
    close: () => api.close(),
  };
}

async function serveInThisProcess(databaseUrl: string): Promise<void> {
  const pool = createPool(databaseUrl, 20);
  const api = await startApi({ url: databaseUrl, pool });
  let timer: NodeJS.Timeout | null = null;
  let samples: Array<[number, number]> = [];
  let baseline = 0;
  const t0 = performance.now();
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'rss-start') {
      (globalThis as { gc?: () => void }).gc?.();
      baseline = process.memoryUsage.rss();
      samples = [];
      timer = setInterval(() => samples.push([Math.round(performance.now() - t0), process.memoryUsage.rss()]), 10);
    } else if (m.type === 'rss-stop') {
      if (timer) clearInterval(timer);
      samples.push([Math.round(performance.now() - t0), process.memoryUsage.rss()]);
      const peak = samples.reduce((a, [, v]) => Math.max(a, v), baseline);
      process.send!({ type: 'rss', baseline, peak, samples });
    } else if (m.type === 'close') {
      await api.close();
      await pool.end();
      process.exit(0);
    }
  });
  process.send!({ type: 'ready', url: api.url });
}

if (process.env.BENCH_DATABASE_URL && process.send) {
  serveInThisProcess(process.env.BENCH_DATABASE_URL).catch((e) => {
    process.stderr.write(`bench API process: ${(e as Error).stack}\n`);
    process.exit(1);
  });
}
