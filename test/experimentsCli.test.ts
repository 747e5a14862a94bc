/** `aiopslab-executor experiment run|status|results|cancel` against a listening API server. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { experimentBody, registerExperimentCommands } from '../src/cli/experimentCommands.js';
import { addWorker, claimNext, finishWith, startExperimentsApi, type ExperimentsApi } from './experimentsSupport.js';

let h: ExperimentsApi;
let url = '';
let dir = '';
beforeAll(async () => {
  h = await startExperimentsApi();
  url = await h.app.listen({ host: '127.0.0.1', port: 0 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'experiments-cli-'));
});
afterAll(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const program = new Command().exitOverride();
  const exit = (code: number): never => { throw Object.assign(new Error(`exit ${code}`), { exitCode: code }); };
  // Commander's own messages (bad flags) too; subcommands inherit this when created.
  program.configureOutput({ writeOut: (s) => { out += s; }, writeErr: (s) => { err += s; } });
  registerExperimentCommands(program, { out: (s) => { out += s; }, err: (s) => { err += s; }, env: { API_URL: url }, style: { color: false, spinner: false, width: 200 }, exit });
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'aiopslab-executor', 'experiment', ...args]);
    return { code: Number(process.exitCode ?? 0), out, err };
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    if (code === undefined) throw e;
    return { code, out, err };
  } finally {
    process.exitCode = before;
  }
}

describe('experiment commands', () => {
  it('builds the body: globs become patterns, the rest ids; flags become shared parameters and limits', () => {
    expect(experimentBody({
      name: 'n', problems: ['a-detection-1', 'k8s_*'], models: ['m1'], repeats: 2, maxSteps: 9, temperature: 0, spendCap: 3,
      modelMaxRunning: { m1: 2 }, interval: 10,
    })).toEqual({
      name: 'n', problem_ids: ['a-detection-1'], patterns: ['k8s_*'], models: ['m1'], repeats: 2,
      parameters: { max_steps: 9, agent_config: { temperature: 0 } }, spend_cap_usd: 3, model_max_running: { m1: 2 },
    });
    expect(experimentBody({ name: 'only', interval: 10 })).toEqual({ name: 'only' });
  });

  it('runs, resumes, shows status and prints the results as a table, CSV and JSON', async () => {
    const run = await cli('run', '--name', 'cli-exp', '--problems', 'k8s_target_port-misconfig-detection-1,k8s_target_port-misconfig-localization-*',
      '--models', 'stand-in/alpha,stand-in/beta', '--max-steps', '7', '--spend-cap', '1.5', '--model-max-running', 'stand-in/beta=1');
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/^Created experiment cli-exp \([0-9a-f-]{36}\): 8 tasks = 4 problems × 2 models × 1 repeats\n/);
    expect(run.out).toContain('cli-exp: queued — 0/8 finished');

    await addWorker(h.db.pool, 'w-cli');
    const t = (await claimNext(h.db.pool, 'w-cli'))!;
    await finishWith(h.db.pool, t, 'w-cli', { status: 'completed', success: true, ttx: 42, steps: 3, prompt: 1200, completion: 300, cost: 0.0125 });

    const again = await cli('run', '--name', 'cli-exp');
    expect(again.out).toMatch(/^Resumed experiment cli-exp .*: 0 new task\(s\)/);
    expect(again.out).toContain('1/8 finished (1 completed, 0 failed, 0 timeout), 0 running, 7 pending; spent $0.0125 of $1.5000');

    const status = await cli('status', 'cli-exp');
    expect(status.code).toBe(0);
    expect(status.out).toContain('4 problems × 2 models × 1 repeats = 8');
    expect(status.out).toMatch(/stand-in\/alpha\s+3\s+0\s+1\s+0\s+0\s+0\s+0\s+\$0\.0125\s+\$0\.0125\s+\$0\.0375\s+observed/);
    const listed = await cli('status');
    expect(listed.out).toMatch(/cli-exp\s+running\s+1\/8/);

    const table = await cli('results', 'cli-exp');
    expect(table.out.split('\n')[0]).toMatch(/^MODEL\s+TASK TYPE\s+N\s+ERR\s+SUCCESS\s+95% CI\s+TTX/);
    expect(table.out).toMatch(/stand-in\/alpha\s+detection\s+1\s+0\s+100\.0%\s+20\.65%–100\.00%\s+TTD\s+42\.0\s+42\.0\s+3\.0\s+1,200\s+300\s+\$0\.0125\s+\$0\.0125/);

    const file = path.join(dir, 'detail.csv');
    const csv = await cli('results', 'cli-exp', '--format', 'csv', '--table', 'detail', '--output', file);
    expect(csv.code).toBe(0);
    expect(readFileSync(file, 'utf8').split('\r\n')[1]).toBe('k8s_target_port-misconfig-detection-1,detection,stand-in/alpha,1,1,0,1,1,0.2065,1,TTD,42,42,3,3,1200,300,1200,300,0.0125,0.0125');
    const json = JSON.parse((await cli('results', 'cli-exp', '--format', 'json')).out);
    expect(json.tasks).toHaveLength(1);

    const cancel = await cli('cancel', 'cli-exp');
    expect(cancel.out).toBe('Cancelled experiment cli-exp: 7 task(s) cancelled\n');
  });

  it('reports API errors with their code and exit status', async () => {
    const missing = await cli('status', 'no-such');
    expect(missing.code).toBe(4);
    expect(missing.err).toContain('error: experiment_not_found');
    const bad = await cli('run', '--name', 'cli-bad', '--problems', 'nope-*', '--models', 'stand-in/alpha');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('problems.patterns: "nope-*" matches no problem id');
    const flag = await cli('run', '--name', 'cli-bad', '--repeats', 'many');
    expect(flag.code).toBe(2);
    expect(flag.err).toContain('--repeats must be an integer');
    const conflict = await cli('run', '--name', 'cli-exp', '--models', 'stand-in/alpha');
    expect(conflict.code).toBe(5);
    expect(conflict.err).toContain('error: experiment_conflict');
  });
});
