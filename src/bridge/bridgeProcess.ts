/**
 * One spawned bridge process: fd 3 carries the protocol, fd 1/2 are AIOpsLab's output (logged line
 * by line, never parsed). The process leads its own process group so that a forced stop also ends
 * whatever AIOpsLab started (kubectl port-forwards, helm, shells) and nothing outlives the task.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { BRIDGE_SCRIPT } from '../packagePaths.js';
import { LineSplitter } from './outputLines.js';
import { encodeWorkerMessage, parseBridgeEvent, type BridgeEvent, type WorkerMessage } from './protocol.js';

const STDERR_TAIL_LINES = 40;
/** After the process exits, how long its pipes may take to deliver what is still buffered. */
const DRAIN_MS = 1_500;

export interface BridgeExit {
  code: number | null;
  signal: string | null;
  /** Set when the interpreter could not be started at all (e.g. ENOENT). */
  spawnError: Error | null;
}

export interface BridgeProcessOptions {
  python: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  onEvent(event: BridgeEvent): void;
  onProtocolError(error: Error): void;
  onOutput(line: string, stream: 'stdout' | 'stderr'): void;
}

export class BridgeProcess {
  readonly exited: Promise<BridgeExit>;
  private readonly child: ChildProcess;
  private readonly channel: Socket | null;
  private done = false;
  private readonly tail: string[] = [];

  constructor(opts: BridgeProcessOptions) {
    // -u: unbuffered, so AIOpsLab's prints reach the logs as they happen.
    this.child = spawn(opts.python, ['-u', BRIDGE_SCRIPT], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.channel = (this.child.stdio[3] as Socket | null) ?? null;

    const output = (stream: 'stdout' | 'stderr') => (line: string) => {
      if (stream === 'stderr') {
        this.tail.push(line);
        if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
      }
      try {
        opts.onOutput(line, stream);
      } catch {
        // A failing log sink must not break the run.
      }
    };
    const stdout = new LineSplitter(output('stdout'));
    const stderr = new LineSplitter(output('stderr'));
    // Protocol lines are never cut (results can be large); the decoder keeps UTF-8 split across chunks intact.
    const protocolDecoder = new StringDecoder('utf8');
    let protocolBuffer = '';
    this.child.stdout?.on('data', (c: Buffer) => stdout.push(c));
    this.child.stderr?.on('data', (c: Buffer) => stderr.push(c));
    this.channel?.on('data', (c: Buffer) => {
      protocolBuffer += protocolDecoder.write(c);
      let nl: number;
      while ((nl = protocolBuffer.indexOf('\n')) !== -1) {
        const line = protocolBuffer.slice(0, nl);
        protocolBuffer = protocolBuffer.slice(nl + 1);
        if (line.trim() === '') continue;
        let event: BridgeEvent;
        try {
          event = parseBridgeEvent(line);
        } catch (e) {
          opts.onProtocolError(e as Error);
          continue;
        }
        opts.onEvent(event);
      }
    });
    // Writes after the bridge died must not crash the worker.
    this.channel?.on('error', () => {});
    this.child.stdout?.on('error', () => {});
    this.child.stderr?.on('error', () => {});

    this.exited = new Promise<BridgeExit>((resolve) => {
      let spawnError: Error | null = null;
      this.child.once('error', (e) => {
        spawnError = e;
        if (this.child.pid === undefined) finish(null, null);
      });
      this.child.once('exit', (code, signal) => finish(code, signal));
      const finish = (code: number | null, signal: string | null) => {
        if (this.done) return;
        this.done = true;
        // Whatever AIOpsLab left running dies with the bridge; then its pipes close promptly.
        this.killGroup();
        void this.drain().then(() => {
          stdout.end();
          stderr.end();
          protocolBuffer += protocolDecoder.end();
          if (protocolBuffer.trim()) {
            try {
              opts.onEvent(parseBridgeEvent(protocolBuffer));
            } catch (e) {
              opts.onProtocolError(e as Error);
            }
          }
          resolve({ code, signal, spawnError });
        });
      };
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  isExited(): boolean {
    return this.done;
  }

  send(msg: WorkerMessage): void {
    if (this.done || !this.channel || this.channel.destroyed) return;
    this.channel.write(encodeWorkerMessage(msg));
  }

  /** SIGTERM goes to the bridge alone (AIOpsLab's children must keep working during its recovery); SIGKILL to the whole group. */
  signal(sig: 'SIGTERM' | 'SIGKILL'): void {
    if (this.done || this.child.pid === undefined) return;
    try {
      if (sig === 'SIGKILL') process.kill(-this.child.pid, 'SIGKILL');
      else this.child.kill('SIGTERM');
    } catch {
      try {
        this.child.kill(sig);
      } catch {
        // Already gone.
      }
    }
  }

  /** Resolves true if the process exited within `ms`. */
  async waitExit(ms: number): Promise<boolean> {
    if (this.done) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
    const exited = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return exited;
  }

  stderrTail(): string {
    return this.tail.join('\n');
  }

  private drain(): Promise<void> {
    const streams = [this.child.stdout, this.child.stderr, this.channel].filter((s): s is NonNullable<typeof s> => Boolean(s));
    const closed = streams.map((s) => (s.readableEnded || s.destroyed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r()))));
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([Promise.all(closed).then(() => {}), new Promise<void>((r) => (timer = setTimeout(r, DRAIN_MS)))]).then(() => {
      clearTimeout(timer);
      // A grandchild holding our pipes open must not keep the worker waiting.
      for (const s of streams) s.destroy();
    });
  }

  /** Whatever AIOpsLab left running in the bridge's process group dies with the task. */
  private killGroup(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // No process left in the group.
    }
  }
}
