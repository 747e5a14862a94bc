/**
 * AIOpsLab's stdout/stderr are logs, never protocol: colours, spinners, raw fd writes and child
 * processes all arrive as clean lines; and a process on the other end of fd 3 that breaks the
 * protocol is stopped and reported as bridge_failed.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarizeEpisode } from '../src/bridge/taskOutcome.js';
import { MAX_LINE_CHARS } from '../src/bridge/outputLines.js';
import { ScriptedAgent, createEpisodeHarness, submit, type EpisodeHarness, type EpisodeRun } from './fixtures/agents.js';

let h: EpisodeHarness;
beforeAll(() => {
  h = createEpisodeHarness();
});
afterAll(() => h.cleanup());

describe('a noisy AIOpsLab run', () => {
  let run: EpisodeRun;
  beforeAll(async () => {
    // The fixture prints a fake "results" JSON line claiming Correct; the agent's answer is wrong.
    run = await h.run({ problemId: 'noop_detection_social_network-1', agent: new ScriptedAgent([submit('Yes')]) });
  }, 120_000);

  it('is not confused by protocol-looking text on stdout', () => {
    expect(run.result.outcome).toBe('submitted');
    expect(run.result.results!['Detection Accuracy']).toBe('Incorrect');
    expect(run.stdout()).toContain('{"type": "results", "results": {"Detection Accuracy": "Correct"}, "note": "printed by AIOpsLab, not protocol"}');
  });

  it('delivers every line without ANSI codes or carriage-return redraws', () => {
    const all = run.output.map((o) => o.line);
    expect(all.some((l) => /[\x1b\r]/.test(l))).toBe(false);
    expect(run.stdout()).toContain('== Noisy workload == colour codes everywhere');
    expect(run.stdout()).toContain('progress 100%');
    expect(all.some((l) => l.includes('progress 10%'))).toBe(false);
    // The rich-style spinner collapses to what the terminal finally shows.
    expect(run.stdout()).toContain("All pods in namespace 'test-social-network' are ready.");
    expect(all.some((l) => l.includes('Waiting for pods to be ready'))).toBe(false);
  });

  it('keeps fd 1 and fd 2 apart, including writes by child processes', () => {
    expect(run.stdout()).toContain('raw write on fd 1');
    expect(run.stderr()).toContain('raw write on fd 2');
    expect(run.stdout()).toContain('child stdout line');
    expect(run.stderr()).toContain('child stderr line');
    expect(run.stderr()).toContain('WARNING:root:Prometheus status check failed (fixture)');
    expect(run.stdout()).not.toContain('child stderr line');
  });

  it('cuts a very long line into pieces and flushes a last line without newline at exit', () => {
    const pieces = run.stdout().filter((l) => /^L+$/.test(l));
    expect(pieces.map((p) => p.length)).toEqual([MAX_LINE_CHARS, MAX_LINE_CHARS, 40_000 - 2 * MAX_LINE_CHARS]);
    expect(run.stdout().at(-1)).toBe('unterminated last line, written at exit');
  });
});

describe('a process that breaks the protocol', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-fake-bridge-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A stand-in "python" that ignores the bridge script and plays the given shell on fd 3. */
  function fakePython(name: string, body: string): string {
    const file = path.join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  }

  const HELLO = (protocol: number) => `printf '%s\\n' '{"type":"hello","protocol":${protocol},"python":"3.11.7","pid":1,"executable":"x","ts":0}' >&3`;

  it('a different protocol version is refused and the process stopped', async () => {
    const t0 = Date.now();
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([]), python: fakePython('v99', `${HELLO(99)}\nsleep 30`), stopGraceSeconds: 2 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(result.error).toMatchObject({ phase: 'protocol', type: 'ProtocolMismatch' });
    expect(result.exitSignal).toBe('SIGTERM');
    expect(result.outcome).toBe('aborted_in_init');
    expect(summarizeEpisode('k8s_target_port-misconfig-detection-1', result).errorType).toBe('bridge_failed');
  });

  it('garbage on fd 3 is a protocol error', async () => {
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([]), python: fakePython('garbage', `echo 'Session ID: not json' >&3\nsleep 30`), stopGraceSeconds: 2 });
    expect(result.error).toMatchObject({ phase: 'protocol', type: 'ProtocolError' });
    expect(result.error!.message).toContain('not JSON');
    expect(summarizeEpisode('k8s_target_port-misconfig-detection-1', result).errorType).toBe('bridge_failed');
  });

  it('an exit without a word is reported with the exit code and the stderr tail', async () => {
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([]), python: fakePython('dies', `echo 'ImportError: something is broken' >&2\nexit 7`) });
    expect(result.exitCode).toBe(7);
    expect(result.error).toMatchObject({ phase: 'protocol', type: 'BridgeExited' });
    expect(result.error!.message).toContain('code 7');
    expect(result.error!.traceback).toContain('ImportError: something is broken');
    expect(result.stopClean).toBe(true);
  });

  it('an exit after the hello, without an outcome, is a bridge failure in that phase', async () => {
    const { result } = await h.run({ problemId: 'k8s_target_port-misconfig-detection-1', agent: new ScriptedAgent([]), python: fakePython('quits', `${HELLO(1)}\nread -r line <&3\nexit 0`) });
    expect(result.error).toMatchObject({ phase: 'startup', type: 'BridgeExited' });
    expect(summarizeEpisode('k8s_target_port-misconfig-detection-1', result).errorType).toBe('bridge_failed');
  });
});
