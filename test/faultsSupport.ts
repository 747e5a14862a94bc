/** Child processes of the built CLI for the fault tests (a worker host, a whole service) and process-tree helpers. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

export function requireBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${path.relative(process.cwd(), CLI)} is missing: run \`npm run build\` before these tests`);
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  output(): string;
  /** Resolves with the API URL a `start`/`serve` child prints. */
  url(timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to the child alone, as `kill -9 <pid>` would. */
  kill9(): void;
  /** Kills everything left of its process group (orphaned bridges), for cleanup. */
  killGroup(): void;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv): Child {
  requireBuild();
  // Its own process group, so cleanup can reach the grandchildren the SIGKILL orphans.
  const proc = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const chunks: string[] = [];
  proc.stdout!.on('data', (c) => chunks.push(c.toString()));
  proc.stderr!.on('data', (c) => chunks.push(c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc, pid: proc.pid!, exited,
    output: () => chunks.join(''),
    async url(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const m = chunks.join('').match(/API:\s+(http:\/\/\S+?)\/api\/v1/);
        if (m) return m[1]!;
        if (proc.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`child did not print its URL; output:\n${chunks.join('').slice(-3000)}`);
    },
    kill9: () => { try { process.kill(proc.pid!, 'SIGKILL'); } catch { /* gone */ } },
    killGroup: () => { try { process.kill(-proc.pid!, 'SIGKILL'); } catch { /* gone */ } },
  };
}

/** Live processes of a process group whose command line contains `needle`. */
export function groupProcesses(pgid: number, needle: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/)).filter((m): m is RegExpMatchArray => !!m)
    .filter((m) => Number(m[2]) === pgid && !m[3]!.startsWith('Z') && m[4]!.includes(needle)).map((m) => Number(m[1]));
}

export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}
