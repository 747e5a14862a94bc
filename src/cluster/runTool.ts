/**
 * Runs kind/kubectl as child processes without blocking the event loop: output is collected
 * asynchronously, every run has a deadline, and a run past its deadline is killed with its whole
 * process group (kind starts docker, which must not outlive it).
 */
import { spawn } from 'node:child_process';

export interface ToolResult {
  command: string;
  args: string[];
  /** Exit code, or null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  /** Set when the process could not be started at all (e.g. ENOENT: not installed). */
  spawnError: string | null;
}

export interface RunToolOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  cwd?: string;
  /** Grace between SIGTERM and SIGKILL after the deadline. */
  killGraceMs?: number;
}

const MAX_CAPTURE = 4 * 1024 * 1024;

export function runTool(command: string, args: string[], opts: RunToolOptions): Promise<ToolResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const finish = (r: Pick<ToolResult, 'code' | 'signal' | 'spawnError'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(killTimer);
      resolve({ command, args, ...r, stdout, stderr, durationMs: Date.now() - started, timedOut });
    };
    // detached: the child leads its own process group, so a timeout can kill everything it started.
    const child = spawn(command, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const deadline = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), opts.killGraceMs ?? 3000);
    }, opts.timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_CAPTURE) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_CAPTURE) stderr += d;
    });
    child.on('error', (err) => finish({ code: null, signal: null, spawnError: err.message }));
    child.on('close', (code, signal) => finish({ code, signal, spawnError: null }));
  });
}

/** The last lines of a tool's output, without colour codes, short enough for an error message. */
export function outputTail(text: string, maxLines = 15, maxChars = 2000): string {
  const clean = text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').trimEnd();
  const tail = clean.split('\n').slice(-maxLines).join('\n');
  return tail.length > maxChars ? `…${tail.slice(-maxChars)}` : tail;
}

/** "`kind create cluster …` failed (exit 1): <stderr tail>" — what a user needs to see why. */
export function describeFailure(r: ToolResult): string {
  const cmd = [r.command, ...r.args].join(' ');
  let how: string;
  if (r.spawnError) how = `could not start (${r.spawnError}); is ${r.command} installed and on PATH?`;
  else if (r.timedOut) how = `timed out after ${Math.round(r.durationMs / 1000)}s and was killed`;
  else if (r.signal) how = `was killed by ${r.signal}`;
  else how = `failed (exit ${r.code})`;
  const tail = outputTail(r.stderr) || outputTail(r.stdout);
  return tail ? `\`${cmd}\` ${how}: ${tail}` : `\`${cmd}\` ${how}`;
}

/** Structured facts about a failed run, for an AppError's details. */
export function failureDetails(r: ToolResult): Record<string, unknown> {
  return { command: [r.command, ...r.args].join(' '), exitCode: r.code, signal: r.signal, timedOut: r.timedOut, durationMs: r.durationMs, stderr: outputTail(r.stderr) };
}
