/**
 * The CLI against the whole service (`start`: API + internal workers), with the stand-ins for
 * kind/kubectl, the fixture AIOpsLab and the LLM server: `submit --wait` runs a real task to the
 * end through the bridge and the agent, then `show` and `transcript` read what was recorded.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startServiceHarness, type ServiceHarness } from './helpers/serviceHarness.js';

// A real run (cluster stand-ins, bridge, LLM stand-in) plus CLI processes on a possibly loaded machine.
vi.setConfig({ testTimeout: 180_000 });

const CLI = process.env.AIOPSLAB_CLI ?? fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  for (const k of ['API_URL', 'API_TOKEN', 'NO_COLOR', 'FORCE_COLOR']) delete env[k];
  // Asynchronous: the service runs in this process and must keep answering.
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => { stdout += c; });
  child.stderr.on('data', (c) => { stderr += c; });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

let h: ServiceHarness;
beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: build first with \`npx tsc -p tsconfig.json\``);
  h = await startServiceHarness({ workers: 1 });
});
afterAll(async () => { await h?.close(); });

describe('CLI against the running service', () => {
  it('submit --wait runs a task to completion (exit 0); show and transcript read its result and conversation', async () => {
    const r = await cli(['submit', 'k8s_target_port-misconfig-detection-1', '--max-steps', '5', '--model', 'openai/gpt-4o-mini', '--wait', '--api-url', h.url]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const id = /^Submitted ([0-9a-f-]{36}) /m.exec(r.stdout)![1]!;
    expect(r.stdout).toMatch(/running on \S+/);
    expect(r.stdout).toMatch(/completed — outcome submitted · success true · reward 1 · \d+ step\(s\) · [\d,]+ tokens · \$/);
    expect(r.stdout).toContain('1 of 1 task(s) completed.');

    const task = (await h.api(`/api/v1/tasks/${id}`)).body;
    expect(task.status).toBe('completed');

    const show = await cli(['show', id, '--api-url', h.url]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^Success: +yes$/m);
    expect(show.stdout).toMatch(/^Reward: +1$/m);
    expect(show.stdout).toMatch(new RegExp(`^Conversation: +${task.result.conversation_id}$`, 'm'));

    const t = await cli(['transcript', id, '--api-url', h.url]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain(`Conversation ${task.result.conversation_id} · attempt 1`);
    expect(t.stdout).toMatch(/── SYSTEM · #1 /);
    expect(t.stdout).toMatch(/── ASSISTANT · step 1 · #\d+ /);
    // Every assistant turn carries its real usage and cost as the LLM server reported them.
    const assistantTurns = t.stdout.match(/── ASSISTANT /g)!.length;
    expect(t.stdout.match(/ {2}↳ [\d,]+ tokens \([\d,]+ in, [\d,]+ out\) · \$[\d.]+ · /g)).toHaveLength(assistantTurns);
    const raw = JSON.parse((await cli(['transcript', id, '--json', '--api-url', h.url])).stdout);
    expect(raw[0].messages.filter((m: { role: string }) => m.role === 'assistant')).toHaveLength(assistantTurns);
  });

  it('workers lists the internal worker with its cluster and the task it completed', async () => {
    const r = await cli(['workers', '--json', '--api-url', h.url]);
    expect(r.code).toBe(0);
    const workers = JSON.parse(r.stdout).workers as Array<{ status: string; tasks_completed: number }>;
    expect(workers.some((w) => w.status !== 'offline' && w.tasks_completed >= 1)).toBe(true);
    const table = await cli(['workers', '--api-url', h.url]);
    expect(table.stdout).toMatch(/^ID +STATUS +BACKEND +CLUSTER +HEARTBEAT +TASK +DONE +FAILED$/m);
  });
});
