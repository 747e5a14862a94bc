/**
 * `npm run bench [-- --quick] [-- --only=id,id] [-- --out=file.json]`: runs the benchmarks of
 * issue 8 against a real PostgreSQL (DATABASE_URL, else an embedded one), each in fresh databases
 * it creates and drops, and writes JSON plus a readable summary on stdout.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/packagePaths.js';
import { openBenchServer } from './benchDatabase.js';
import type { BenchOptions, BenchResult } from './benchResult.js';
import { formatSummary } from './summary.js';
import { BENCHMARKS, type BenchmarkId } from './suite.js';

interface Args { quick: boolean; only: BenchmarkId[] | null; out: string }

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: null, out: path.join(PACKAGE_ROOT, 'bench', 'results', 'latest.json') };
  for (const a of argv) {
    if (a === '--quick') args.quick = true;
    else if (a.startsWith('--only=')) {
      const ids = a.slice(7).split(',').filter(Boolean);
      const unknown = ids.filter((id) => !BENCHMARKS.some((bm) => bm.id === id));
      if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; known: ${BENCHMARKS.map((bm) => bm.id).join(', ')}`);
      args.only = ids as BenchmarkId[];
    } else if (a.startsWith('--out=')) args.out = path.resolve(a.slice(6));
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: npm run bench -- [--quick] [--only=${BENCHMARKS.map((bm) => bm.id).join(',')}] [--out=file.json]\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const opts: BenchOptions = { quick: args.quick, log };
  const started = Date.now();
  const server = await openBenchServer({ log });
  // Interrupted: drop this run's databases (and stop an embedded server) before leaving.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: dropping this run's databases`);
      void server.close().finally(() => process.exit(130));
    });
  }
  const results: BenchResult[] = [];
  const failures: Array<{ id: string; error: string }> = [];
  try {
    for (const bm of BENCHMARKS) {
      if (args.only && !args.only.includes(bm.id)) continue;
      const t0 = performance.now();
      log(`▶ ${bm.id}${args.quick ? ' (quick)' : ''}`);
      try {
        results.push(await bm.run(server, opts));
      } catch (e) {
        failures.push({ id: bm.id, error: (e as Error).stack ?? String(e) });
        log(`✖ ${bm.id} failed: ${(e as Error).message}`);
      }
      log(`  ${bm.id} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await server.close();
  }
  const report = {
    generated_at: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    duration_s: Math.round((Date.now() - started) / 100) / 10,
    machine: {
      nproc: os.availableParallelism(),
      cpu: os.cpus()[0]?.model ?? null,
      memory_gb: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
      load_average_at_end: os.loadavg().map((v) => Math.round(v * 100) / 100),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      postgres: server.version,
      postgres_server: server.embedded ? 'embedded' : 'DATABASE_URL',
    },
    results,
    failures,
  };
  await mkdir(path.dirname(args.out), { recursive: true });
  await writeFile(args.out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(formatSummary(report));
  process.stdout.write(`\nJSON: ${path.relative(process.cwd(), args.out)}\n`);
  if (failures.length) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
