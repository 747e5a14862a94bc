/**
 * The whole service as `aiopslab-executor start` runs it (runService: API, internal workers,
 * maintenance), in this process, on a benchmark database, with the three outer systems replaced
 * by the test stand-ins exactly as test/helpers/serviceHarness.ts does: the kind/kubectl/helm/docker
 * executables of test/fixtures/bin first on PATH, the fixture AIOpsLab checkout, and the local
 * chat-completions server answering at once.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { PACKAGE_ROOT } from '../src/packagePaths.js';
import { runService, type RunningService } from '../src/service/runService.js';
import { startLlmServer, type LlmServer } from '../test/fixtures/llmServer.js';

export const FIXTURE_BIN_DIR = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'bin');
export const FIXTURE_AIOPSLAB_DIR = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'aiopslab');

export interface ServiceUnderTest {
  url: string;
  service: RunningService;
  llm: LlmServer;
  close(): Promise<void>;
}

/**
 * The interpreter behind `python3` on PATH. A version manager's shim (pyenv) is a shell script
 * that costs hundreds of milliseconds per start; deployments point AIOPSLAB_PYTHON at a real
 * interpreter (AIOpsLab's .venv/bin/python), so the benchmark does too.
 */
export function realPython(): string {
  return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
}

const discard = () => new Writable({ write(_c, _e, cb) { cb(); } });

export async function startServiceUnderTest(db: { url: string }, opts: { workers: number }): Promise<ServiceUnderTest> {
  for (const tool of ['kind', 'kubectl', 'helm', 'docker']) chmodSync(path.join(FIXTURE_BIN_DIR, tool), 0o755);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-bench-service-'));
  const standinState = path.join(scratch, 'standins');
  const hostHome = path.join(scratch, 'host-home');
  mkdirSync(standinState, { recursive: true });
  mkdirSync(hostHome, { recursive: true });
  const llm = await startLlmServer();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${FIXTURE_BIN_DIR}${path.delimiter}${process.env.PATH ?? ''}`,
    STANDIN_STATE_DIR: standinState,
    HOME: hostHome,
    DATABASE_URL: db.url,
    HOST: '127.0.0.1',
    PORT: '0',
    NUM_INTERNAL_WORKERS: String(opts.workers),
    AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR,
    AIOPSLAB_PYTHON: realPython(),
    // A recognisable fake key for the stand-in; it never leaves this machine.
    OPENROUTER_API_KEY: 'sk-or-v1-bench-0000000000000000',
    OPENROUTER_BASE_URL: llm.baseUrl,
    EXECUTOR_STATE_DIR: path.join(scratch, 'state'),
    LOG_LEVEL: 'info',
  };
  for (const k of ['KUBECONFIG', 'AIOPSLAB_CLUSTER', 'STANDIN_NODE_CLUSTER']) delete env[k];
  // runService prints its banner on stderr; keep the benchmark's output readable.
  const stderrWrite = process.stderr.write.bind(process.stderr);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  let service: RunningService;
  try {
    service = await runService('start', { logDestination: discard() }, env);
  } finally {
    process.stderr.write = stderrWrite;
  }
  return {
    url: service.url ?? '',
    service,
    llm,
    async close() {
      await service.close();
      await llm.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
